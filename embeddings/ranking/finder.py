"""Related lists: FAISS retrieves candidates, the scorer ranks them, the list policies shape the list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from embeddings.errors import ArticleNotFoundError, BundleMismatchError, InvalidQueryError
from embeddings.index.columns import NO_KEY, Columns, content_key, title_hash
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle
from embeddings.ranking.corpus import Corpus
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.reprints import NO_SIGNATURE, overlap
from embeddings.ranking.scorer import Scorer
from embeddings.settings import Settings
from embeddings.vectors import MAIN

SEARCH_MARGIN = 16  # extra candidates fetched for the ones filtering will drop


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


@dataclass(frozen=True)
class Origin:
    """The query article: its identity (kept out of its own list, with its copies), date and language."""

    rowid: int | None = None
    content_hash: str | None = None
    title: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    signature: np.ndarray | None = None  # reprint signature of its words


@dataclass(frozen=True)
class _Identities:
    """What the reprint test compares, for a group of articles: content and title keys, signatures."""

    contents: np.ndarray
    titles: np.ndarray
    signatures: np.ndarray

    def take(self, positions: list[int]) -> _Identities:
        """The identities at `positions`."""
        return _Identities(self.contents[positions], self.titles[positions], self.signatures[positions])

    @classmethod
    def of_origin(cls, origin: Origin) -> _Identities:
        """The query's identity (what it lacks never matches)."""
        signature = NO_SIGNATURE if origin.signature is None else origin.signature
        return cls(
            np.array([content_key(origin.content_hash or "")]),
            np.array([title_hash(origin.title or "")]),
            signature[None, :],
        )


@dataclass(frozen=True)
class _Pool:
    """Candidates as arrays, nearest first: row ids, ranking columns, reprint signatures."""

    rowids: np.ndarray
    columns: Columns
    signatures: np.ndarray

    def __len__(self) -> int:
        return len(self.rowids)

    def take(self, positions: np.ndarray | slice) -> _Pool:
        """The candidates at `positions`."""
        return _Pool(self.rowids[positions], self.columns.take(positions), self.signatures[positions])

    def identities(self) -> _Identities:
        """The candidates' identities."""
        return _Identities(self.columns.content, self.columns.title, self.signatures)


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
            article.title,
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
    ) -> tuple[_Pool, int]:
        """The `size` nearest results left after the exclusions and `filters`, less the query's reprints.

        Also returns how many that is (reprints of the query included).
        """
        order = np.argsort(-np.asarray(scores), kind="stable")
        ids = np.asarray(ids, dtype=np.int64)[order]
        cosines = np.asarray(scores, dtype=np.float64)[order]
        keep = ids > 0  # an approximate search pads a short result with -1
        if excluded:
            keep &= ~np.isin(ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))
        ids, cosines = ids[keep], cosines[keep]
        columns = self.corpus.row_columns(ids)
        if filters is not None and filters.active():
            passed = columns.admits(filters)
            ids, cosines, columns = ids[passed], cosines[passed], columns.take(passed)
        if size is not None:
            ids, cosines, columns = ids[:size], cosines[:size], columns.take(slice(0, size))
        pool = _Pool(ids, columns, self.corpus.signatures(ids))
        if not len(pool):
            return pool, 0
        copies = self._reprints(_Identities.of_origin(origin), pool.identities(), cosines[None, :])[0]
        return pool.take(~copies), len(pool)

    def _reprints(self, rows: _Identities, columns: _Identities, cosines: np.ndarray) -> np.ndarray:
        """Which articles of `rows` are reprints of which of `columns` (main cosines given).

        A reprint has the same text, the same title words, a main cosine at or above the duplicate
        threshold, or at least the reprint share of its words in common.
        """
        same_title = (rows.titles[:, None] == columns.titles[None, :]) & (rows.titles[:, None] != NO_KEY)
        same_text = (rows.contents[:, None] == columns.contents[None, :]) & (rows.contents[:, None] != NO_KEY)
        return np.asarray(
            (cosines >= self.duplicate_threshold)
            | same_text
            | same_title
            | (overlap(rows.signatures, columns.signatures) >= self.reprint_overlap)
        )

    def _rank(
        self,
        vectors: Mapping[str, np.ndarray],
        pool: _Pool,
        query: RelatedQuery,
        origin: Origin,
    ) -> list[Hit]:
        """Score the pool, pick the list by MMR, and read the listed articles' records."""
        if not len(pool):
            return []
        signals = self.scorer.signals
        cand_vectors = {name: self.corpus.vectors(name, pool.rowids) for name in signals}
        relatedness, cosines = self.scorer.score(vectors, cand_vectors)
        policy = query.policy
        freshness = policy.freshness(origin.published_at, pool.columns.ts)
        language = policy.language(origin.lang, pool.columns.lang)
        total = relatedness + freshness + language
        chosen, copies, redundancy = self._select(pool, total, cand_vectors[MAIN], query.k, policy.diversity)
        listed = chosen + [j for group in copies for j in group]
        records = self.corpus.get_many([int(pool.rowids[i]) for i in listed])
        hits = []
        for i, group in zip(chosen, copies, strict=True):
            article = records.get(int(pool.rowids[i]))
            if article is None:  # searches skip deleted rows: a record missing here was deleted just now
                continue
            parts = {name: round(float(cosines[name][i]), 6) for name in signals}
            parts.update(
                relatedness=round(float(relatedness[i]), 6),
                freshness=round(float(freshness[i]), 6),
                language=round(float(language[i]), 6),
                redundancy=round(float(redundancy[i]), 6),
            )
            copy_ids = tuple(records[r].id for r in (int(pool.rowids[j]) for j in group) if r in records)
            hits.append(Hit(article, round(float(total[i]), 6), parts, copy_ids))
        return hits

    def _select(
        self, pool: _Pool, scores: np.ndarray, main: np.ndarray, k: int, diversity: float
    ) -> tuple[list[int], list[list[int]], np.ndarray]:
        """Greedy MMR over the pool; reprints of a chosen article collapse into it.

        Returns the chosen positions, each one's reprints (positions) and each position's redundancy
        when it was picked. Reprints are tested against the chosen articles alone, as they are chosen
        (the test is symmetric).
        """
        similarity = main @ main.T
        identities = pool.identities()
        redundancy = np.zeros(len(pool))
        at_pick = np.zeros(len(pool))
        alive = np.ones(len(pool), dtype=bool)
        chosen: list[int] = []
        copies: list[list[int]] = []
        reprint_of: list[np.ndarray] = []  # per chosen article: which positions are its reprints
        while len(chosen) < k and alive.any():
            value = np.where(alive, (1.0 - diversity) * scores - diversity * redundancy, -np.inf)
            best = int(np.argmax(value))
            alive[best] = False
            earlier = [n for n, reprints in enumerate(reprint_of) if reprints[best]]
            if earlier:
                copies[earlier[0]].append(best)
                continue
            at_pick[best] = redundancy[best]
            chosen.append(best)
            copies.append([])
            column = self._reprints(identities, identities.take([best]), similarity[:, best : best + 1])
            reprint_of.append(column[:, 0])
            redundancy = np.maximum(redundancy, similarity[best])
        if chosen:  # name every reprint of a listed article, picked or not
            matrix = np.stack(reprint_of, axis=1)
            for i in np.flatnonzero(alive & matrix.any(axis=1)):
                copies[int(np.argmax(matrix[i]))].append(int(i))
        return chosen, copies, at_pick
