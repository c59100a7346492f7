"""Related lists: FAISS retrieves candidates, the scorer ranks them, the list policies shape the list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from embeddings.errors import ArticleNotFoundError, BundleMismatchError
from embeddings.index.columns import NO_KEY, Columns
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle
from embeddings.ranking.corpus import Corpus
from embeddings.ranking.listing import Hit, Listing, Origin, RelatedQuery
from embeddings.ranking.originals import original
from embeddings.ranking.pins import with_pins
from embeddings.ranking.policy import reader_languages
from embeddings.ranking.pool import Identities, Pool
from embeddings.ranking.reprints import PERMUTATIONS, containment
from embeddings.ranking.scorer import Scorer, across_languages
from embeddings.settings import Settings
from embeddings.vectors import LEX, MAIN

SEARCH_MARGIN = 16  # extra candidates fetched for the ones filtering will drop
LEXICAL_DEPTH = 16  # lexical nearest neighbours added to the dense candidates


class RelatedFinder:
    """Finds related articles in one corpus: a bundle, or a bundle with live writes over it."""

    def __init__(
        self,
        corpus: Corpus,
        scorer: Scorer,
        duplicate_threshold: float,
        depth: int = 50,
        reprint_containment: float | None = 0.85,
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
        self.reprint_containment = 2.0 if reprint_containment is None else reprint_containment
        self.lexical_depth = LEXICAL_DEPTH if depth and LEX in scorer.signals else 0
        self._dated = corpus.date_range()
        self._languages = corpus.languages()

    @classmethod
    def from_settings(
        cls, corpus: Corpus, scorer: Scorer, settings: Settings, plain: bool = False
    ) -> RelatedFinder:
        """A finder with the configured thresholds and depth.

        `plain` is the baseline: the nearest neighbours only (no deeper candidate pool to rerank),
        reprints recognized by text hash, title and cosine but not by shared text.
        """
        if plain:
            return cls(corpus, scorer, settings.duplicate_threshold, 0, None)
        return cls(
            corpus,
            scorer,
            settings.duplicate_threshold,
            settings.rerank_depth,
            settings.reprint_containment,
        )

    def for_article(self, article_id: str, query: RelatedQuery) -> tuple[StoredArticle, list[Hit]]:
        """The article with `article_id` and its related list."""
        article, listing = self.listing(article_id, query)
        return article, listing.hits

    def listing(self, article_id: str, query: RelatedQuery) -> tuple[StoredArticle, Listing]:
        """The article with `article_id`, its related list and its own copies."""
        article = self.corpus.get(article_id)
        if article is None:
            raise ArticleNotFoundError(article_id)
        rules = self.corpus.rules_for(article_id)
        if rules:  # the pinned ones lead the list: not again among the ranked
            query = replace(query, exclude=(*query.exclude, *rules.block, *rules.pin))
        rowids = np.array([article.rowid])
        vectors: dict[str, Any] = {name: self.corpus.vectors(name, rowids)[0] for name in self.scorer.dense}
        if LEX in self.scorer.signals:
            vectors[LEX] = self.corpus.lexical_rows(rowids)
        origin = Origin(
            article.rowid,
            article.content_hash,
            article.title,
            article.lang,
            article.published_at,
            self.corpus.signatures(rowids)[0],
        )
        listing = self._related(vectors, query, origin)
        if rules and rules.pin:
            listing = with_pins(listing, self._pinned(rules.pin, article, vectors[MAIN]), query.k)
        return article, listing

    def _pinned(self, pins: Sequence[str], article: StoredArticle, main: np.ndarray) -> list[Hit]:
        """Hits of the pinned articles still there and listed; scored by their main cosine."""
        found = [self.corpus.get(i) for i in pins]
        kept = [a for a in found if a is not None and a.listed and a.id != article.id]
        if not kept:
            return []
        cosines = self.corpus.vectors(MAIN, np.array([a.rowid for a in kept])) @ main
        return [
            Hit(a, float(c), {"pinned": float(i + 1)})
            for i, (a, c) in enumerate(zip(kept, cosines, strict=True))
        ]

    def for_vectors(self, vectors: Mapping[str, Any], query: RelatedQuery, origin: Origin) -> Listing:
        """The related list of an article that is not in the bundle, given its signal vectors.

        The lexical signal's vector (LEX) is a one-row sparse matrix made with the corpus's IDF.
        """
        return self._related(vectors, query, origin)

    def _related(self, vectors: Mapping[str, Any], query: RelatedQuery, origin: Origin) -> Listing:
        excluded = set(self.corpus.rowids_for(list(query.exclude)))
        if origin.rowid is not None:
            excluded.add(origin.rowid)
        passes = query.policy.passes(query.filters, origin.published_at, origin.lang, self._dated)
        if len(passes) > 1 and self._languages <= set(passes[0].langs):
            # Every article is in the reader's languages: the restriction restricts nothing (a search
            # under it, and a second pass that would find nothing, cost a store query each: 30 ms of
            # the p99 at 15,623 articles).
            passes = (replace(passes[0], langs=()),)
        listing, pool = self._pass(vectors, query, origin, excluded, passes[0], None)
        listing = replace(listing, langs=passes[0].langs or None)
        if len(passes) == 1 or len(listing.hits) >= query.k:
            return listing
        # Fewer than k in the reader's languages pass the floor: other languages fill the list, ranked
        # after them in one pool (their reprints collapse into them, MMR weighs them against them).
        filled, _ = self._pass(vectors, query, origin, excluded, passes[1], pool)
        copies = tuple(dict.fromkeys((*listing.copies, *filled.copies)))
        return replace(filled, copies=copies, langs=None)

    def _pass(
        self,
        vectors: Mapping[str, Any],
        query: RelatedQuery,
        origin: Origin,
        excluded: set[int],
        filters: Filters,
        prior: Pool | None,
    ) -> tuple[Listing, Pool]:
        """The list of the candidates that pass `filters`, ranked after those of `prior` (an earlier
        pass's pool, in the reader's languages), and the pool it was ranked from."""
        corpus = self.corpus
        if origin.rowid is not None:
            found = self._looked_up(vectors, query, excluded, origin, filters, prior)
            if found is not None:
                return found
        allowed: np.ndarray | None = None
        if filters.active():
            allowed = corpus.eligible(filters)
            if excluded:
                allowed = allowed[~np.isin(allowed, list(excluded))]
            if len(allowed) == 0:
                listing, pool, _ = self._ranked(vectors, Pool.empty(), prior, (), query, origin)
                return listing, pool
        size = self._pool_size(query)
        want = size + len(excluded)
        limit: int | None = size  # the first pass ranks a pool of `size`; wider ones, all they find
        lexical = self._lexical(vectors, excluded, allowed)
        everyone = len(corpus) if allowed is None else len(allowed)
        while True:
            scores, ids = corpus.search(vectors[MAIN], want, allowed)
            complete = len(ids) >= everyone or want >= everyone
            candidates, admitted, copies = self._candidates(
                scores, ids, excluded, origin, None, limit, lexical, vectors[MAIN], complete
            )
            listing, pool, floored = self._ranked(vectors, candidates, prior, copies, query, origin)
            # Stop once every candidate has been seen, or the pool is full and so is the list, or the
            # relatedness floor cut it (an approximate search under a filter may come back short: it
            # is asked again, wider; farther candidates would fall below the floor too).
            full = len(listing.hits) >= query.k or floored
            if complete or (admitted >= size and full):
                return listing, pool
            want *= 4
            limit = None

    def _ranked(
        self,
        vectors: Mapping[str, Any],
        candidates: Pool,
        prior: Pool | None,
        copies: tuple[str, ...],
        query: RelatedQuery,
        origin: Origin,
    ) -> tuple[Listing, Pool, bool]:
        """The list of `candidates`, after `prior`'s if given; the pool it was ranked from; and whether
        the relatedness floor left out one of the dense `candidates`.

        Only a dense candidate below the floor says that farther dense ones would be below it too.
        """
        pool = candidates if prior is None else prior.then(candidates)
        hits, below = self._rank(vectors, pool, query, origin)
        fresh = below[len(pool) - len(candidates) :] & ~candidates.lexical
        return Listing(hits, copies, pool.seen, pool.reach), pool, bool(fresh.any())

    def _pool_size(self, query: RelatedQuery) -> int:
        """How many candidates the scorer ranks: the nearest `max(k, depth)` and a margin."""
        return max(query.k, self.depth) + SEARCH_MARGIN

    def _lexical(
        self, vectors: Mapping[str, Any], excluded: set[int], allowed: np.ndarray | None
    ) -> np.ndarray:
        """Row ids of the `lexical_depth` lexically nearest candidates but `excluded` (the query too)."""
        if not self.lexical_depth or LEX not in vectors:
            return np.zeros(0, dtype=np.int64)
        _, ids = self.corpus.lexical_search(vectors[LEX], self.lexical_depth + len(excluded), allowed)
        if excluded:
            ids = ids[~np.isin(ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))]
        return ids[: self.lexical_depth]

    def _looked_up(
        self,
        vectors: Mapping[str, Any],
        query: RelatedQuery,
        excluded: set[int],
        origin: Origin,
        filters: Filters,
        prior: Pool | None,
    ) -> tuple[Listing, Pool] | None:
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
        lexical = self._lexical(vectors, excluded, None)
        candidates, admitted, copies = self._candidates(
            scores, ids, excluded, origin, filters, size, lexical, vectors[MAIN], exhaustive
        )
        if admitted < size and not exhaustive:
            return None
        listing, pool, floored = self._ranked(vectors, candidates, prior, copies, query, origin)
        done = len(listing.hits) >= query.k or floored or exhaustive
        return (listing, pool) if done else None

    def _candidates(
        self,
        scores: np.ndarray,
        ids: np.ndarray,
        excluded: set[int],
        origin: Origin,
        filters: Filters | None,
        size: int | None,
        lexical: np.ndarray,
        query_main: np.ndarray,
        complete: bool = False,
    ) -> tuple[Pool, int, tuple[str, ...]]:
        """The `size` nearest results left after the exclusions and `filters`, with the `lexical`
        candidates that pass them too, less the query's reprints.

        Also returns how many nearest results that is (reprints of the query included), and the ids
        of the query's reprints.
        """
        order = np.argsort(-np.asarray(scores), kind="stable")
        ids = np.asarray(ids, dtype=np.int64)[order]
        cosines = np.asarray(scores, dtype=np.float64)[order]
        keep = ids > 0  # an approximate search pads a short result with -1
        # `complete`: these are every article; else any nearer than the last of them would be here.
        reach = -np.inf if complete or not keep.any() else float(cosines[keep][-1])
        if excluded:
            keep &= ~np.isin(ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))
        ids, cosines = ids[keep], cosines[keep]
        columns = self.corpus.row_columns(ids)
        passed = columns.admits(filters) if filters is not None and filters.active() else columns.listed
        if not passed.all():
            ids, cosines, columns = ids[passed], cosines[passed], columns.take(passed)
        if size is not None:
            if len(ids) > size and not complete:  # cut: an article enters only above the last kept
                reach = float(cosines[size - 1])
            ids, cosines, columns = ids[:size], cosines[:size], columns.take(slice(0, size))
        admitted = len(ids)
        extra = lexical[~np.isin(lexical, ids)]
        if len(extra):
            extra_columns = self.corpus.row_columns(extra)
            passed = (
                extra_columns.admits(filters)
                if filters is not None and filters.active()
                else extra_columns.listed
            )
            extra, extra_columns = extra[passed], extra_columns.take(passed)
            extra_cosines = self.corpus.vectors(MAIN, extra) @ np.asarray(query_main, dtype=np.float32)
            ids = np.concatenate([ids, extra])
            cosines = np.concatenate([cosines, extra_cosines.astype(np.float64)])
            columns = Columns.concat([columns, extra_columns])
        flags = np.arange(len(ids)) >= admitted
        pool = Pool(ids, columns, self.corpus.signatures(ids), flags, ids.copy(), reach)
        if not len(pool):
            return pool, 0, ()
        copies = self._reprints(Identities.of_origin(origin), pool.identities(), cosines[None, :])[0]
        copy_ids: tuple[str, ...] = ()
        if copies.any():
            records = self.corpus.get_many([int(r) for r in pool.rowids[copies]])
            copy_ids = tuple(records[int(r)].id for r in pool.rowids[copies] if int(r) in records)
        return pool.take(~copies), admitted, copy_ids

    def _reprints(self, rows: Identities, columns: Identities, cosines: np.ndarray) -> np.ndarray:
        """Which articles of `rows` are reprints (republished copies) of which of `columns`.

        A reprint has the same text, or nearly all of the shorter text in the other (the reprint
        containment of shingles), or the same title words and nearly the same body (a main cosine at
        or above the duplicate threshold). Texts too short for shingles (headlines) are copies with
        the same title words or at the duplicate threshold. Follow-ups written on one template share
        words and sentences but not their facts, and stay apart.
        """
        same_title = (rows.titles[:, None] == columns.titles[None, :]) & (rows.titles[:, None] != NO_KEY)
        same_text = (rows.contents[:, None] == columns.contents[None, :]) & (rows.contents[:, None] != NO_KEY)
        short = (rows.signatures[:, PERMUTATIONS] == 0)[:, None] | (columns.signatures[:, PERMUTATIONS] == 0)[
            None, :
        ]
        near = cosines >= self.duplicate_threshold
        return np.asarray(
            same_text
            | (containment(rows.signatures, columns.signatures) >= self.reprint_containment)
            | (same_title & (near | short))
            | (short & near)
        )

    def _rank(
        self,
        vectors: Mapping[str, Any],
        pool: Pool,
        query: RelatedQuery,
        origin: Origin,
    ) -> tuple[list[Hit], np.ndarray]:
        """Score the pool, pick the list by MMR, and read the listed articles' records.

        Also says which candidates the relatedness floor left out. Each entry is shown by the
        original of its group of copies, with the score of the group's best.
        """
        if not len(pool):
            return [], np.zeros(0, dtype=bool)
        signals = self.scorer.signals
        main = self.corpus.vectors(MAIN, pool.rowids)
        cosines = {
            name: np.asarray(
                (main if name == MAIN else self.corpus.vectors(name, pool.rowids)) @ vectors[name],
                dtype=np.float64,
            )
            for name in self.scorer.dense
        }
        if LEX in signals:
            cosines[LEX] = self.corpus.lexical_cosines(pool.rowids, vectors[LEX])
        relatedness = self.scorer.combine(cosines, across_languages(origin.lang, pool.columns.lang))
        policy = query.policy
        freshness = policy.freshness(origin.published_at, pool.columns.ts)
        # Below the relatedness floor an article is not listed, whatever the policies add.
        below = np.asarray(relatedness < policy.min_score)
        total = np.where(below, -np.inf, relatedness + freshness)
        fills = pool.fills()
        chosen, copies, redundancy = self._select(pool, total, main, query.k, policy.diversity, fills)
        listed = chosen + [j for group in copies for j in group]
        records = self.corpus.get_many([int(pool.rowids[i]) for i in listed])
        readers = reader_languages(query.filters, origin.lang)
        hits = []
        for i, group in zip(chosen, copies, strict=True):
            if int(pool.rowids[i]) not in records:
                continue  # searches skip deleted rows: a record missing here was deleted just now
            members = [j for j in (i, *group) if int(pool.rowids[j]) in records]
            shown = members[original([records[int(pool.rowids[j])] for j in members], readers)]
            parts = {name: round(float(cosines[name][i]), 6) for name in signals}
            parts.update(
                relatedness=round(float(relatedness[i]), 6),
                freshness=round(float(freshness[i]), 6),
                redundancy=round(float(redundancy[i]), 6),
            )
            copy_ids = tuple(records[int(pool.rowids[j])].id for j in members if j != shown)
            article = records[int(pool.rowids[shown])]
            hits.append(Hit(article, round(float(total[i]), 6), parts, copy_ids, bool(fills[shown])))
        return hits, below

    def _select(
        self, pool: Pool, scores: np.ndarray, main: np.ndarray, k: int, diversity: float, fills: np.ndarray
    ) -> tuple[list[int], list[list[int]], np.ndarray]:
        """Greedy MMR over the pool; reprints of a chosen article collapse into it; the `fills`
        (candidates from other languages) are picked only once no other one is left.

        Returns the chosen positions, each one's reprints (positions) and each position's redundancy
        when it was picked. Reprints are tested against the chosen articles alone, as they are chosen
        (the test is symmetric).
        """
        similarity = main @ main.T
        identities = pool.identities()
        redundancy, at_pick = np.zeros(len(pool)), np.zeros(len(pool))
        alive = np.ones(len(pool), dtype=bool)
        placed = np.zeros(len(pool), dtype=bool)  # chosen, or collapsed into a chosen one
        chosen: list[int] = []
        copies: list[list[int]] = []
        reprint_of: list[np.ndarray] = []  # per chosen article: which positions are its reprints
        alive &= np.isfinite(scores)  # below the floor
        scores = np.where(alive, scores, 0.0)  # never picked; and 0 * -inf (diversity 1) is no NaN
        while len(chosen) < k and alive.any():
            pickable = alive & ~fills if fills.any() and (alive & ~fills).any() else alive
            value = np.where(pickable, (1.0 - diversity) * scores - diversity * redundancy, -np.inf)
            best = int(np.argmax(value))
            alive[best] = False
            placed[best] = True
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
        if chosen:  # name every reprint of a listed article, picked or not, below the floor or not
            matrix = np.stack(reprint_of, axis=1)
            for i in np.flatnonzero(~placed & matrix.any(axis=1)):
                copies[int(np.argmax(matrix[i]))].append(int(i))
        return chosen, copies, at_pick


__all__ = ["Hit", "Listing", "Origin", "RelatedFinder", "RelatedQuery"]
