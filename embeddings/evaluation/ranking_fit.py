"""A scorer fitted for ranking: signal weights chosen by the lists they make, then calibrated.

Each same-story query's candidate pool is built as the service builds it (its precomputed dense
neighbours and its lexical nearest), every candidate's cosines are read once, and the weights of the
z-scored signals are searched on a grid for the best MRR@10 of the lists. An increasing output curve
then maps the weighted sum onto the human scale, fitted on the scored pairs (for Pearson and the
relatedness floor; it changes no ranking).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.errors import InputError
from embeddings.evaluation.pairs import ScoredPair, isotonic_curve, relatedness_target
from embeddings.index.bundle import Bundle
from embeddings.index.lexical_index import cosines as lexical_cosines
from embeddings.ranking.finder import LEXICAL_DEPTH, SEARCH_MARGIN
from embeddings.ranking.scorer import Scorer, ScorerConfig, SignalTerm
from embeddings.vectors import LEX, MAIN

RANKING = "ranking"  # the kind stamped in a scorer fitted here
GRID_STEP = 0.05  # weights on a grid of this step over the simplex
LIST_DEPTH = 10


@dataclass(frozen=True)
class Pools:
    """Every query's candidates as one array: the query each belongs to, its cosines, relevance."""

    query: np.ndarray  # int [candidates]: index of the query
    cosines: dict[str, np.ndarray]  # float64 [candidates] per signal
    relevant: np.ndarray  # bool [candidates]
    queries: int

    def take(self, chosen: np.ndarray) -> Pools:
        """The pools of the queries whose indices are in `chosen` (renumbered in order)."""
        mask = np.isin(self.query, chosen)
        renumber = np.full(self.queries, -1)
        renumber[np.sort(chosen)] = np.arange(len(chosen))
        return Pools(
            renumber[self.query[mask]],
            {n: c[mask] for n, c in self.cosines.items()},
            self.relevant[mask],
            len(chosen),
        )


def candidate_pools(
    bundle: Bundle,
    queries: Sequence[tuple[str, frozenset[str], frozenset[str]]],
    signals: Sequence[str],
    depth: int,
) -> Pools:
    """The pools of `queries` (query id, relevant ids, ids left out) as the service builds them."""
    owners, relevance, parts = [], [], []
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
    )


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
    name: str,
    source: str = "",
) -> ScorerConfig:
    """Weights chosen on `pools` by the lists' MRR@10, and an output curve fitted on the pairs."""
    terms = spreads(pairs, cosines)
    weights = best_weights(pools, terms)
    signals = {
        n: t.model_copy(update={"weight": float(w)}) for (n, t), w in zip(terms.items(), weights, strict=True)
    }
    if MAIN not in signals or not any(s.weight > 0 for s in signals.values()):
        raise InputError("no weights rank the lists better than none")
    raw = sum(s.weight * (cosines[n] - s.mean) / s.std for n, s in signals.items())
    output = isotonic_curve(np.asarray(raw), relatedness_target(pairs))
    fitted_on: dict[str, Any] = {
        "file": source,
        "pairs": len(pairs),
        "queries": pools.queries,
        "kind": RANKING,
        "objective": "mrr@10 of the lists, then recall@1",
        "grid_step": GRID_STEP,
    }
    return ScorerConfig(name=name, signals=signals, output=output, fitted_on=fitted_on)


def used(config: ScorerConfig) -> ScorerConfig:
    """The scorer without the signals its fit gave no weight (main stays: it retrieves)."""
    signals = {n: s for n, s in config.signals.items() if s.weight > 0 or n == MAIN}
    return config.model_copy(update={"signals": signals})


def cross_validate_ranking(
    pairs: Sequence[ScoredPair],
    cosines: dict[str, np.ndarray],
    pools: Pools,
    query_folds: np.ndarray,
    pair_folds: np.ndarray,
    folds: int,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]]]:
    """Out-of-fold list ranks of the queries and scores of the pairs, and each fold's weights."""
    ranks = np.zeros(pools.queries, dtype=np.int64)
    scores = np.zeros(len(pairs))
    weights = []
    for f in range(folds):
        train_q, test_q = np.flatnonzero(query_folds != f), np.flatnonzero(query_folds == f)
        train_p = pair_folds != f
        if not len(test_q) or not len(train_q) or not train_p.any():
            continue
        kept = [p for p, t in zip(pairs, train_p, strict=True) if t]
        config = fit_ranking(
            kept, {n: c[train_p] for n, c in cosines.items()}, pools.take(train_q), f"cv-{f}"
        )
        scorer = Scorer(config)
        held_out = pools.take(test_q)
        ranks[test_q] = list_ranks(held_out, scorer.combine(held_out.cosines))
        scores[~train_p] = scorer.combine({n: c[~train_p] for n, c in cosines.items()})
        weights.append({n: round(s.weight, 3) for n, s in config.signals.items()})
    return ranks, scores, weights
