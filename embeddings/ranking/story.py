"""A story: the articles of an article's story, oldest first, the first report marked, reprints collapsed.

The candidates are the finder's (precomputed neighbours or FAISS, filters, `listed`, the article's own
copies set aside), in every language, ranked by the scorer's relatedness alone: no freshness or
diversity term. Those at or above the threshold are the story; reprints collapse as in a related list,
and each group of reprints is shown by its original (ranking/originals.py), the others in its
`copies`. The article's editorial blocks hold; its pins lead its list, not its story.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embeddings.errors import InvalidQueryError
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle
from embeddings.ranking.finder import RelatedFinder
from embeddings.ranking.listing import RelatedQuery
from embeddings.ranking.originals import original
from embeddings.ranking.policy import ListPolicy, reader_languages
from embeddings.ranking.scorer import across_languages
from embeddings.vectors import LEX

DEFAULT_LENGTH = 20  # entries of a story when `k` is not given
MAX_LENGTH = 100
# The finder is asked for this many, whatever `k`, so that a capped story still finds its first report;
# it ranks them from the 116 nearest by the main cosine. Depth adds no recall (benchmarks/story_corpus.py:
# among 20,522 articles, 0.722 of 1,854 same-story queries found their pair from a related list's 66
# nearest, from 116 and from 216; 0.711 reach the threshold at all).
STORY_DEPTH = MAX_LENGTH


@dataclass(frozen=True)
class StoryQuery:
    """What a caller asks of a story."""

    threshold: float
    k: int = DEFAULT_LENGTH
    filters: Filters = field(default_factory=Filters)
    exclude: tuple[str, ...] = ()
    window_days: float | None = 365.0
    depth: int = STORY_DEPTH  # nearest articles ranked (see STORY_DEPTH)

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_LENGTH:
            raise InvalidQueryError(f"k must be between 1 and {MAX_LENGTH}")


@dataclass(frozen=True)
class StoryEntry:
    """One report of the story, its relatedness to the article, and the reprints collapsed into it."""

    article: StoredArticle
    relatedness: float
    first_report: bool = False
    copies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Story:
    """The article, the threshold used, and the story's entries in date order (undated ones last)."""

    article: StoredArticle
    threshold: float
    entries: list[StoryEntry]


@dataclass
class _Group:
    """An entry in the making: a report and its reprints, with each member's relatedness."""

    members: list[StoredArticle]
    relatedness: dict[str, float]
    langs: tuple[str, ...]  # the reader's (see policy.reader_languages)

    def lead(self) -> StoredArticle:
        """The group's original (see ranking/originals.py)."""
        return self.members[original(self.members, self.langs)]

    def entry(self, first_report: bool) -> StoryEntry:
        """The group as an entry: its lead, and the others as its copies, oldest first."""
        lead = self.lead()
        rest = [m for m in self.members if m.id != lead.id]
        return StoryEntry(lead, self.relatedness[lead.id], first_report, tuple(m.id for m in _in_order(rest)))


def _timestamp(article: StoredArticle) -> float:
    return article.published_at.timestamp() if article.published_at is not None else math.inf


def _order(article: StoredArticle, relatedness: float) -> tuple[float, float, str]:
    """Oldest first, undated last; on a tie, the more related first."""
    return _timestamp(article), -relatedness, article.id


def _in_order(articles: Sequence[StoredArticle]) -> list[StoredArticle]:
    return sorted(articles, key=lambda a: (_timestamp(a), a.id))


def story_of(finder: RelatedFinder, article_id: str, query: StoryQuery) -> Story:
    """The story of the article with `article_id`: it, and the articles related to it at the threshold."""
    policy = ListPolicy(
        lang_policy="any",
        diversity=0.0,
        window_days=query.window_days,
        past_only=False,
        freshness_weight=0.0,
        min_score=query.threshold,
    )
    related = RelatedQuery(
        k=max(query.k, query.depth), filters=query.filters, exclude=query.exclude, policy=policy
    )
    article, listing = finder.listing(article_id, related)
    copy_ids = [*listing.copies, *(c for hit in listing.hits for c in hit.copies)]
    records = _records(finder, copy_ids)
    own = [article, *(records[c] for c in listing.copies if c in records)]
    langs = reader_languages(query.filters, article.lang)
    groups = [_Group(own, {article.id: 1.0}, langs)]
    for hit in listing.hits:  # an editor's pins first (not ranked, no relatedness), then most related first
        members = [hit.article, *(records[c] for c in hit.copies if c in records)]
        known = {hit.article.id: hit.parts["relatedness"]} if "relatedness" in hit.parts else {}
        groups.append(_Group(members, known, langs))
    _score_members(finder, article, groups)
    # A pin does not lead a story: a pinned article is in it only if it is of it, in its place.
    rest = sorted(groups[1:], key=lambda g: -g.relatedness[g.members[0].id])
    groups = [groups[0], *(g for g in rest if g.relatedness[g.members[0].id] >= query.threshold)]
    dated = [g for g in groups if g.lead().published_at is not None]
    first = min(dated, key=lambda g: _order(g.lead(), g.relatedness[g.lead().id]), default=None)
    # A long story keeps the article, its first report, and the most related others.
    kept = [groups[0], *([first] if first is not None and first is not groups[0] else [])]
    kept += [g for g in groups[1:] if g is not first][: max(query.k - len(kept), 0)]
    kept = kept[: query.k]
    entries = [g.entry(g is first) for g in kept]
    entries.sort(key=lambda e: _order(e.article, e.relatedness))
    return Story(article, query.threshold, entries)


def _records(finder: RelatedFinder, ids: Sequence[str]) -> dict[str, StoredArticle]:
    """The stored records of the given ids (a record deleted meanwhile is left out)."""
    if not ids:
        return {}
    found = finder.corpus.get_many(finder.corpus.rowids_for(list(ids)))
    return {a.id: a for a in found.values()}


def _score_members(finder: RelatedFinder, article: StoredArticle, groups: Sequence[_Group]) -> None:
    """Fill in the relatedness of the members the finder did not score (reprints), with its scorer."""
    missing = [m for g in groups for m in g.members if m.id not in g.relatedness]
    if not missing:
        return
    corpus, scorer = finder.corpus, finder.scorer
    origin, rows = np.array([article.rowid]), np.array([m.rowid for m in missing])
    cosines = {
        name: np.asarray(corpus.vectors(name, rows) @ corpus.vectors(name, origin)[0], dtype=np.float64)
        for name in scorer.dense
    }
    if LEX in scorer.signals:
        cosines[LEX] = corpus.lexical_cosines(rows, corpus.lexical_rows(origin))
    across = across_languages(article.lang, np.array([m.lang or "" for m in missing], dtype=object))
    values = dict(zip((m.id for m in missing), scorer.combine(cosines, across), strict=True))
    for group in groups:
        for member in group.members:
            if member.id not in group.relatedness:
                group.relatedness[member.id] = round(float(values[member.id]), 6)
