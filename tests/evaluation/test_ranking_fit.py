"""The ranking fit, as pure logic: weights chosen per language relation by the lists they make."""

from __future__ import annotations

import numpy as np

from embeddings.evaluation.pairs import ScoredPair
from embeddings.evaluation.ranking_fit import Pools, cross_validate_ranking, fit_ranking, list_ranks
from embeddings.ranking.scorer import Scorer


def _pools(queries: int, seed: int = 0) -> tuple[Pools, np.ndarray]:
    """Same-language queries whose target only the lexical signal tells apart, and cross-lingual ones
    whose target only the main signal tells apart (lexical overlap across languages is noise)."""
    rng = np.random.default_rng(seed)
    owners, main, lex, relevant, across = [], [], [], [], []
    query_across = np.arange(queries) % 2 == 1
    for q in range(queries):
        size = 12
        m, x = rng.normal(0.85, 0.03, size), rng.uniform(0.0, 0.3, size)
        if query_across[q]:
            m[0], x[0] = 0.97, 0.0  # the target: near in meaning, no shared letters
            x[1] = 0.9  # a same-script decoy
            flags = np.ones(size, dtype=bool)
        else:
            m[0], x[0] = 0.86, 0.8  # the target shares the story's names
            m[1], x[1] = 0.95, 0.1  # a near paraphrase of another story
            flags = np.zeros(size, dtype=bool)
        owners.append(np.full(size, q))
        main.append(m)
        lex.append(x)
        relevant.append(np.arange(size) == 0)
        across.append(flags)
    pools = Pools(
        np.concatenate(owners),
        {"main": np.concatenate(main), "lex": np.concatenate(lex)},
        np.concatenate(relevant),
        queries,
        np.concatenate(across),
    )
    return pools, query_across


def _pairs(count: int, seed: int = 0) -> tuple[list[ScoredPair], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs, main, lex = [], [], []
    for i in range(count):
        overall = float(rng.choice([1.0, 2.0, 3.0, 4.0]))
        lang = "de-en" if i % 2 else "en"
        pairs.append(ScoredPair((f"a{i}", ""), (f"b{i}", ""), lang, overall, f"g{i}"))
        main.append(0.95 - 0.04 * overall + rng.normal(0, 0.01))
        lex.append(
            max(0.0, 0.7 - 0.15 * overall + rng.normal(0, 0.05)) if i % 2 == 0 else rng.uniform(0, 0.2)
        )
    return pairs, {"main": np.array(main), "lex": np.array(lex)}


def test_each_language_relation_gets_the_weights_that_rank_its_lists() -> None:
    pools, query_across = _pools(40)
    pairs, cosines = _pairs(120)
    config = fit_ranking(pairs, cosines, pools, query_across, "t")
    assert config.signals["lex"].weight > config.signals["main"].weight  # one language: shared names
    assert config.across is not None and config.across.weights.get("main", 0) > config.across.weights.get(
        "lex", 0
    )
    scorer = Scorer(config)
    ranks = list_ranks(pools, scorer.combine(pools.cosines, pools.across))
    assert (ranks == 1).all()
    one_weighting = list_ranks(pools, scorer.combine(pools.cosines))  # same-language weights for all
    assert (one_weighting[query_across] != 1).any()


def test_cross_validated_ranks_rank_held_out_queries() -> None:
    pools, query_across = _pools(40, seed=1)
    pairs, cosines = _pairs(120, seed=1)
    folds = np.arange(40) % 4
    ranks, scores, weights = cross_validate_ranking(
        pairs, cosines, pools, query_across, folds, np.arange(120) % 4, 4
    )
    assert (ranks == 1).mean() == 1.0 and len(weights) == 4 and np.isfinite(scores).all()
    assert all(w["across"] is not None for w in weights)
