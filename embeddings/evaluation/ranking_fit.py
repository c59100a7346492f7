"""A scorer fitted for ranking: signal weights chosen by the lists they make, then calibrated.

Each same-story query's candidate pool is built as the service builds it (its precomputed dense
neighbours and its lexical nearest), every candidate's cosines are read once, and the weights of the
z-scored signals are searched on a grid for the best MRR@10 of the lists, once per language relation:
for the lists of queries in one language among the candidates in that language (what a list shows by
default), and for the lists of queries whose other side is in another language among the candidates in
other languages (a cross-lingual list). An increasing output curve per relation then maps each weighted
sum onto the human scale, fitted on the scored pairs of that relation (for Pearson, the relatedness floor
and the comparison of candidates of both relations; within a relation it changes no ranking).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.errors import InputError
from embeddings.evaluation.pairs import ScoredPair, across_mask, isotonic_curve, relatedness_target
from embeddings.index.bundle import Bundle
from embeddings.index.lexical_index import cosines as lexical_cosines
from embeddings.ranking.finder import LEXICAL_DEPTH, SEARCH_MARGIN
from embeddings.ranking.scorer import Across, Scorer, ScorerConfig, SignalTerm, across_languages
from embeddings.vectors import LEX, MAIN

RANKING = "ranking"  # the kind stamped in a scorer fitted here
GRID_STEP = 0.05  # weights on a grid of this step over the simplex
LIST_DEPTH = 10
MIN_RELATION_PAIRS = 30  # scored pairs a relation needs for weights and an output curve of its own


@dataclass(frozen=True)
class Pools:
    """Every query's candidates as one array: the query each belongs to, its cosines, relevance, and
    whether it is in another language than the query."""

    query: np.ndarray  # int [candidates]: index of the query
    cosines: dict[str, np.ndarray]  # float64 [candidates] per signal
    relevant: np.ndarray  # bool [candidates]
    queries: int
    across: np.ndarray  # bool [candidates]

    def take(self, chosen: np.ndarray, candidates: np.ndarray | None = None) -> Pools:
        """The pools of the queries whose indices are in `chosen` (renumbered in order), and of them
        only the `candidates` (a mask over all candidates) when given."""
        mask = np.isin(self.query, chosen)
        if candidates is not None:
            mask &= candidates
        renumber = np.full(self.queries, -1)
        renumber[np.sort(chosen)] = np.arange(len(chosen))
        return Pools(
            renumber[self.query[mask]],
            {n: c[mask] for n, c in self.cosines.items()},
            self.relevant[mask],
            len(chosen),
            self.across[mask],
        )

    def relation(self, chosen: np.ndarray, across: bool) -> Pools:
        """The pools of `chosen` queries with their candidates of one language relation only."""
        return self.take(chosen, self.across if across else ~self.across)

    def listed(self, chosen: np.ndarray, across: bool) -> Pools:
        """The pools of `chosen` queries as their lists rank them: a query in one language among the
        candidates in its language (the default list), a cross-lingual one among every candidate."""
        return self.take(chosen) if across else self.relation(chosen, False)


def candidate_pools(
    bundle: Bundle,
    queries: Sequence[tuple[str, frozenset[str], frozenset[str]]],
    signals: Sequence[str],
    depth: int,
) -> Pools:
    """The pools of `queries` (query id, relevant ids, ids left out) as the service builds them."""
    owners, relevance, parts, languages = [], [], [], []
    for number, (query_id, relevant, left_out) in enumerate(queries):
        article = bundle.store.get(query_id)
        if article is None:
            raise InputError(f"the evaluation bundle lacks the query {query_id}")
        rowid = np.array([article.rowid])
        skip = np.array([*bundle.rowids_for(sorted(left_out)), article.rowid], dtype=np.int64)
        found = bundle.nearest(article.rowid)
        dense = found[0] if found is not None else np.zeros(0, dtype=np.int64)
        dense = dense[~np.isin(dense, skip)][: depth + SEARCH_MARGIN]  # as the finder: left out, then cut
        lexical = np.zeros(0, dtype=np.int64)
        if LEX in signals:
            _, lexical = bundle.lexical_search(bundle.lexical_rows(rowid), LEXICAL_DEPTH + len(skip))
            lexical = lexical[~np.isin(lexical, skip)][:LEXICAL_DEPTH]
        ids = np.unique(np.concatenate([dense, lexical]))
        wanted = set(bundle.rowids_for(sorted(relevant)))
        owners.append(np.full(len(ids), number))
        relevance.append(np.isin(ids, list(wanted)))
        languages.append(across_languages(article.lang, bundle.row_columns(ids).lang))
        part = {}
        for name in signals:
            if name == LEX:
                part[name] = lexical_cosines(bundle.lexical_rows(ids), bundle.lexical_rows(rowid))
            else:
                part[name] = (bundle.vectors(name, ids) @ bundle.vectors(name, rowid)[0]).astype(np.float64)
        parts.append(part)
    return Pools(
        np.concatenate(owners),
        {n: np.concatenate([p[n] for p in parts]) for n in signals},
        np.concatenate(relevance),
        len(queries),
        np.concatenate(languages) if languages else np.zeros(0, dtype=bool),
    )


def scores_of(scorer: Scorer, pools: Pools) -> np.ndarray:
    """The scorer's relatedness of every candidate of the pools."""
    return scorer.combine(pools.cosines, pools.across)


def list_ranks(pools: Pools, scores: np.ndarray) -> np.ndarray:
    """Each query's rank of its best-scored relevant candidate (0: none in its pool)."""
    best = np.full(pools.queries, -np.inf)
    np.maximum.at(best, pools.query[pools.relevant], scores[pools.relevant])
    above = np.zeros(pools.queries, dtype=np.int64)
    np.add.at(above, pools.query, scores > best[pools.query])
    return np.where(np.isfinite(best), above + 1, 0)


def mrr(ranks: np.ndarray) -> float:
    """MRR@10 of ranks (0: not found)."""
    found = (ranks > 0) & (ranks <= LIST_DEPTH)
    return float(np.where(found, 1.0 / np.maximum(ranks, 1), 0.0).mean()) if len(ranks) else 0.0


def _grid(count: int) -> np.ndarray:
    steps = round(1 / GRID_STEP)
    rows = [c for c in itertools.product(range(steps + 1), repeat=count) if sum(c) == steps]
    return np.array(rows, dtype=np.float64) / steps


def best_weights(pools: Pools, terms: dict[str, SignalTerm]) -> np.ndarray:
    """The grid's weights (in `terms` order) whose z-score mix gives the best MRR@10, then recall@1."""
    z = np.stack([(pools.cosines[n] - t.mean) / t.std for n, t in terms.items()], axis=1)
    best, best_key = None, (-1.0, -1.0)
    for weights in _grid(len(terms)):
        ranks = list_ranks(pools, z @ weights)
        key = (round(mrr(ranks), 6), float(np.mean(ranks == 1)))
        if key > best_key:
            best, best_key = weights, key
    assert best is not None
    return np.asarray(best)


def spreads(pairs: Sequence[ScoredPair], cosines: dict[str, np.ndarray]) -> dict[str, SignalTerm]:
    """Each signal's mean and spread over the scored pairs (weights left at 1)."""
    return {
        n: SignalTerm(mean=float(np.mean(c)), std=float(np.std(c)) or 1.0, weight=1.0)
        for n, c in cosines.items()
    }


def fit_ranking(
    pairs: Sequence[ScoredPair],
    cosines: dict[str, np.ndarray],
    pools: Pools,
    query_across: np.ndarray,
    name: str,
    source: str = "",
) -> ScorerConfig:
    """Weights chosen on `pools` by the lists' MRR@10 per language relation, and output curves fitted on
    the pairs of each relation.

    `query_across`: which queries' other side is in another language (their lists are cross-lingual).
    """
    terms = spreads(pairs, cosines)
    pair_across = across_mask(pairs)
    fitted = {}
    for across in (False, True):
        chosen = np.flatnonzero(query_across == across)
        pairs_here = pair_across == across
        if across and (not len(chosen) or pairs_here.sum() < MIN_RELATION_PAIRS):
            continue  # too few to fit: pairs across languages are scored as the others
        if not across and pairs_here.sum() < MIN_RELATION_PAIRS:
            pairs_here = np.ones(len(pairs), dtype=bool)
        if len(chosen):
            weights = best_weights(pools.relation(chosen, across), terms)
        else:  # no list of this relation to rank: the main signal alone
            weights = np.array([1.0 if n == MAIN else 0.0 for n in terms])
        raw = sum(
            w * (cosines[n][pairs_here] - t.mean) / t.std
            for (n, t), w in zip(terms.items(), weights, strict=True)
        )
        target = relatedness_target([p for p, here in zip(pairs, pairs_here, strict=True) if here])
        fitted[across] = (weights, isotonic_curve(np.asarray(raw), target))
    weights, output = fitted[False]
    signals = {
        n: t.model_copy(update={"weight": float(w)}) for (n, t), w in zip(terms.items(), weights, strict=True)
    }
    if MAIN not in signals or not any(s.weight > 0 for s in signals.values()):
        raise InputError("no weights rank the lists better than none")
    across_config = None
    if True in fitted:
        other, other_output = fitted[True]
        across_config = Across(
            weights={n: float(w) for n, w in zip(terms, other, strict=True) if w > 0}, output=other_output
        )
    fitted_on: dict[str, Any] = {
        "file": source,
        "pairs": len(pairs),
        "queries": pools.queries,
        "kind": RANKING,
        "objective": "mrr@10 of the lists, then recall@1, per language relation",
        "grid_step": GRID_STEP,
    }
    return ScorerConfig(name=name, signals=signals, output=output, across=across_config, fitted_on=fitted_on)


def used(config: ScorerConfig) -> ScorerConfig:
    """The scorer without the signals no relation's fit gave weight (main stays: it retrieves)."""
    across = config.across.weights if config.across is not None else {}
    signals = {n: s for n, s in config.signals.items() if s.weight > 0 or across.get(n) or n == MAIN}
    return config.model_copy(update={"signals": signals})


def cross_validate_ranking(
    pairs: Sequence[ScoredPair],
    cosines: dict[str, np.ndarray],
    pools: Pools,
    query_across: np.ndarray,
    query_folds: np.ndarray,
    pair_folds: np.ndarray,
    folds: int,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Out-of-fold list ranks of the queries and scores of the pairs, and each fold's weights.

    A query in one language is ranked among the candidates in its language (the default list), a query
    whose other side is in another language among every candidate (a cross-lingual list).
    """
    ranks = np.zeros(pools.queries, dtype=np.int64)
    scores = np.zeros(len(pairs))
    pair_across = across_mask(pairs)
    weights = []
    for f in range(folds):
        train_q, test_q = np.flatnonzero(query_folds != f), np.flatnonzero(query_folds == f)
        train_p = pair_folds != f
        if not len(test_q) or not len(train_q) or not train_p.any():
            continue
        kept = [p for p, t in zip(pairs, train_p, strict=True) if t]
        config = fit_ranking(
            kept,
            {n: c[train_p] for n, c in cosines.items()},
            pools.take(train_q),
            query_across[train_q],
            f"cv-{f}",
        )
        scorer = Scorer(config)
        for across in (False, True):
            chosen = test_q[query_across[test_q] == across]
            if len(chosen):
                held_out = pools.listed(chosen, across)
                ranks[chosen] = list_ranks(held_out, scores_of(scorer, held_out))
        scores[~train_p] = scorer.combine({n: c[~train_p] for n, c in cosines.items()}, pair_across[~train_p])
        weights.append(
            {
                "same": {n: round(s.weight, 3) for n, s in config.signals.items()},
                "across": dict(config.across.weights) if config.across is not None else None,
            }
        )
    return ranks, scores, weights
