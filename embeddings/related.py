"""Related lists: FAISS retrieves candidates, the scorer ranks them, the list policies shape the list."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from embeddings.corpus import Corpus
from embeddings.errors import ArticleNotFoundError, BundleMismatchError, InvalidQueryError
from embeddings.policy import ListPolicy
from embeddings.reprints import NO_SIGNATURE, overlap
from embeddings.scorer import Scorer
from embeddings.settings import Settings
from embeddings.signals import MAIN
from embeddings.store import Filters, StoredArticle

SEARCH_MARGIN = 16  # extra candidates fetched for the ones filtering will drop
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class RelatedQuery:
    """What a caller asks of a related list."""

    k: int = 4
    filters: Filters = field(default_factory=Filters)
    exclude: tuple[str, ...] = ()
    policy: ListPolicy = field(default_factory=ListPolicy)

    def __post_init__(self) -> None:
        if self.filters.since and self.filters.until and self.filters.since > self.filters.until:
            raise InvalidQueryError("since is after until")


@dataclass(frozen=True)
class Hit:
    """One related article, its score, the parts of that score and the reprints collapsed into it."""

    article: StoredArticle
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    copies: tuple[str, ...] = ()


def title_key(title: str) -> str:
    """A title reduced to its words, for spotting reprints with different punctuation or case."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


@dataclass(frozen=True)
class Origin:
    """The query article: its identity (kept out of its own list, with its copies), date and language."""

    rowid: int | None = None
    content_hash: str | None = None
    title_key: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    signature: np.ndarray | None = None  # reprint signature of its words


@dataclass
class _Candidate:
    article: StoredArticle
    title_key: str
    signature: np.ndarray  # reprint signature of its words
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    copies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Identities:
    """What the reprint test compares, for a group of articles."""

    hashes: np.ndarray
    title_keys: np.ndarray
    signatures: np.ndarray

    @classmethod
    def of(cls, candidates: list[_Candidate]) -> _Identities:
        """The candidates' identities."""
        return cls(
            np.array([c.article.content_hash for c in candidates]),
            np.array([c.title_key for c in candidates]),
            np.stack([c.signature for c in candidates]),
        )

    @classmethod
    def of_origin(cls, origin: Origin) -> _Identities:
        """The query's identity (what it lacks never matches)."""
        signature = NO_SIGNATURE if origin.signature is None else origin.signature
        return cls(
            np.array([origin.content_hash or ""]), np.array([origin.title_key or ""]), signature[None, :]
        )


class RelatedFinder:
    """Finds related articles in one corpus: a bundle, or a bundle with live writes over it."""

    def __init__(
        self,
        corpus: Corpus,
        scorer: Scorer,
        duplicate_threshold: float,
        depth: int = 50,
        reprint_overlap: float | None = 0.5,
    ) -> None:
        missing = set(scorer.signals) - corpus.signal_names
        if missing:
            raise BundleMismatchError(
                f"bundle {corpus.version} lacks the signals {sorted(missing)} that scorer {scorer.name!r} "
                "uses: rebuild it with this scorer"
            )
        self.corpus = corpus
        self.scorer = scorer
        self.duplicate_threshold = duplicate_threshold
        self.depth = depth  # candidates FAISS retrieves for the scorer
        # None: reprints are recognized by text hash, title and cosine only (the baseline's way).
        self.reprint_overlap = 2.0 if reprint_overlap is None else reprint_overlap
        self._dated = corpus.date_range()

    @classmethod
    def from_settings(
        cls, corpus: Corpus, scorer: Scorer, settings: Settings, plain: bool = False
    ) -> RelatedFinder:
        """A finder with the configured thresholds and depth.

        `plain` is the baseline: the nearest neighbours only (no deeper candidate pool to rerank),
        reprints recognized by text hash, title and cosine but not by shared words.
        """
        if plain:
            return cls(corpus, scorer, settings.duplicate_threshold, 0, None)
        return cls(
            corpus, scorer, settings.duplicate_threshold, settings.rerank_depth, settings.reprint_overlap
        )

    def for_article(self, article_id: str, query: RelatedQuery) -> tuple[StoredArticle, list[Hit]]:
        """The article with `article_id` and its related list."""
        article = self.corpus.get(article_id)
        if article is None:
            raise ArticleNotFoundError(article_id)
        rowids = np.array([article.rowid])
        vectors = {name: self.corpus.vectors(name, rowids)[0] for name in self.scorer.signals}
        origin = Origin(
            article.rowid,
            article.content_hash,
            title_key(article.title),
            article.lang,
            article.published_at,
            self.corpus.signatures(rowids)[0],
        )
        return article, self._related(vectors, query, origin)

    def for_vectors(
        self, vectors: Mapping[str, np.ndarray], query: RelatedQuery, origin: Origin
    ) -> list[Hit]:
        """The related list of an article that is not in the bundle, given its signal vectors."""
        return self._related(vectors, query, origin)

    def _related(self, vectors: Mapping[str, np.ndarray], query: RelatedQuery, origin: Origin) -> list[Hit]:
        corpus = self.corpus
        excluded = set(corpus.rowids_for(list(query.exclude)))
        if origin.rowid is not None:
            excluded.add(origin.rowid)
        allowed: np.ndarray | None = None
        filters = query.policy.restrict(query.filters, origin.published_at, origin.lang, self._dated)
        if origin.rowid is not None:
            hits = self._looked_up(vectors, query, excluded, origin, filters)
            if hits is not None:
                return hits
        if filters.active():
            allowed = corpus.eligible(filters)
            if excluded:
                allowed = allowed[~np.isin(allowed, list(excluded))]
            if len(allowed) == 0:
                return []
        pool = len(corpus) if allowed is None else len(allowed)
        size = self._pool_size(query)
        want = size + len(excluded)
        limit: int | None = size  # the first pass ranks a pool of `size`; wider ones, all they find
        while True:
            scores, ids = corpus.search(vectors[MAIN], want, allowed)
            candidates, admitted = self._candidates(scores, ids, excluded, origin, None, limit)
            hits = self._rank(vectors, candidates, query, origin)
            # Stop once every candidate has been seen, or the pool is full and so is the list (an
            # approximate search under a filter may come back short: it is asked again, wider).
            if len(ids) >= pool or want >= pool or (admitted >= size and len(hits) >= query.k):
                return hits
            want *= 4
            limit = None

    def _pool_size(self, query: RelatedQuery) -> int:
        """How many candidates the scorer ranks: the nearest `max(k, depth)` and a margin."""
        return max(query.k, self.depth) + SEARCH_MARGIN

    def _looked_up(
        self,
        vectors: Mapping[str, np.ndarray],
        query: RelatedQuery,
        excluded: set[int],
        origin: Origin,
        filters: Filters,
    ) -> list[Hit] | None:
        """The list from the article's precomputed neighbours, or None when they cannot make it.

        They make it when, less the excluded articles and those the filters drop, a full pool of them
        remains, or when they hold every article of a small corpus: then the scorer ranks the very
        pool a search would give it.
        """
        assert origin.rowid is not None
        nearest = self.corpus.nearest(origin.rowid, vectors[MAIN])
        if nearest is None:
            return None
        ids, exhaustive = nearest
        size = self._pool_size(query)
        if not exhaustive and len(ids) < size:
            return None
        scores = self.corpus.vectors(MAIN, ids) @ vectors[MAIN]
        candidates, admitted = self._candidates(scores, ids, excluded, origin, filters, size)
        if admitted < size and not exhaustive:
            return None
        hits = self._rank(vectors, candidates, query, origin)
        return hits if len(hits) >= query.k or exhaustive else None

    def _candidates(
        self,
        scores: np.ndarray,
        ids: np.ndarray,
        excluded: set[int],
        origin: Origin,
        filters: Filters | None,
        size: int | None,
    ) -> tuple[list[_Candidate], int]:
        """The `size` nearest results left after the exclusions and `filters`, less the query's reprints.

        Also returns how many that is (reprints of the query included).
        """
        order = np.argsort(-np.asarray(scores), kind="stable")
        kept = [(float(scores[j]), int(ids[j])) for j in order if int(ids[j]) not in excluded]
        articles = self.corpus.get_many([i for _, i in kept])
        kept = [
            (cosine, ident)
            for cosine, ident in kept
            if ident in articles and (filters is None or filters.admits(articles[ident]))
        ][:size]
        if not kept:
            return [], 0
        signatures = self.corpus.signatures(np.array([ident for _, ident in kept]))
        candidates = [
            _Candidate(articles[ident], title_key(articles[ident].title), signature)
            for (_, ident), signature in zip(kept, signatures, strict=True)
        ]
        cosines = np.array([[cosine for cosine, _ in kept]])
        copies = self._reprints(_Identities.of_origin(origin), _Identities.of(candidates), cosines)[0]
        return [c for c, copy in zip(candidates, copies, strict=True) if not copy], len(kept)

    def _reprints(self, rows: _Identities, columns: _Identities, cosines: np.ndarray) -> np.ndarray:
        """Which articles of `rows` are reprints of which of `columns` (main cosines given).

        A reprint has the same text, the same title words, a main cosine at or above the duplicate
        threshold, or at least the reprint share of its words in common.
        """
        same_title = (rows.title_keys[:, None] == columns.title_keys[None, :]) & (
            rows.title_keys[:, None] != ""
        )
        return np.asarray(
            (cosines >= self.duplicate_threshold)
            | (overlap(rows.signatures, columns.signatures) >= self.reprint_overlap)
            | (rows.hashes[:, None] == columns.hashes[None, :])
            | same_title
        )

    def _rank(
        self,
        vectors: Mapping[str, np.ndarray],
        candidates: list[_Candidate],
        query: RelatedQuery,
        origin: Origin,
    ) -> list[Hit]:
        if not candidates:
            return []
        rowids = np.array([c.article.rowid for c in candidates])
        cand_vectors = {name: self.corpus.vectors(name, rowids) for name in self.scorer.signals}
        relatedness, cosines = self.scorer.score(vectors, cand_vectors)
        policy = query.policy
        freshness = policy.freshness(origin.published_at, [c.article.published_at for c in candidates])
        language = policy.language(origin.lang, [c.article.lang for c in candidates])
        total = relatedness + freshness + language
        for i, cand in enumerate(candidates):
            cand.score = float(total[i])
            cand.parts = {name: round(float(cosines[name][i]), 6) for name in self.scorer.signals}
            cand.parts.update(
                relatedness=round(float(relatedness[i]), 6),
                freshness=round(float(freshness[i]), 6),
                language=round(float(language[i]), 6),
            )
        chosen = self._select(candidates, cand_vectors[MAIN], query.k, policy.diversity)
        return [Hit(c.article, round(c.score, 6), c.parts, tuple(c.copies)) for c in chosen]

    def _select(
        self, candidates: list[_Candidate], main: np.ndarray, k: int, diversity: float
    ) -> list[_Candidate]:
        """Greedy MMR over the candidates; reprints of a chosen article collapse into it."""
        scores = np.array([c.score for c in candidates])
        similarity = main @ main.T
        identities = _Identities.of(candidates)
        reprints = self._reprints(identities, identities, similarity)
        redundancy = np.zeros(len(candidates))
        alive = np.ones(len(candidates), dtype=bool)
        chosen: list[int] = []
        while len(chosen) < k and alive.any():
            value = np.where(alive, (1.0 - diversity) * scores - diversity * redundancy, -np.inf)
            best = int(np.argmax(value))
            alive[best] = False
            earlier = [j for j in chosen if reprints[best, j]]
            if earlier:
                candidates[earlier[0]].copies.append(candidates[best].article.id)
                continue
            candidates[best].parts["redundancy"] = round(float(redundancy[best]), 6)
            chosen.append(best)
            redundancy = np.maximum(redundancy, similarity[best])
        for i in np.flatnonzero(alive):  # name every reprint of a listed article, picked or not
            earlier = [j for j in chosen if reprints[i, j]]
            if earlier:
                candidates[earlier[0]].copies.append(candidates[i].article.id)
        return [candidates[i] for i in chosen]
