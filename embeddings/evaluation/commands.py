"""The evaluation commands' shared work: the retrieval bundle of a pairs file, and the ranking fit."""

from __future__ import annotations

import contextlib
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.articles.article import Article
from embeddings.errors import InputError
from embeddings.evaluation.pairs import ScoredPair, correlations, fold_of
from embeddings.evaluation.ranking_fit import (
    candidate_pools,
    cross_validate_ranking,
    fit_ranking,
    list_ranks,
    mrr,
    used,
)
from embeddings.evaluation.retrieval import (
    RetrievalQuery,
    build_corpus_bundle,
    bundle_pair_cosines,
    retrieval_corpus,
)
from embeddings.index.publish import load_current
from embeddings.model.signals import load_signal_encoders
from embeddings.ranking.scorer import Scorer, ScorerConfig
from embeddings.settings import Settings
from embeddings.vectors import LEX


@contextlib.contextmanager
def retrieval_bundle(
    settings: Settings,
    pairs: Sequence[ScoredPair],
    distractors: Sequence[Article],
    signals: Sequence[str],
    source: Path,
) -> Iterator[tuple[Path, list[RetrievalQuery]]]:
    """A temporary bundle of every pair text and the distractors, and the same-story queries."""
    articles, queries = retrieval_corpus(pairs, distractors)
    if not queries:
        raise InputError(f"{source}: no pair scored <= 1.5 (same story) to use as a query")
    dense = [s for s in signals if s != LEX]
    with tempfile.TemporaryDirectory(prefix="related-articles-eval-") as workdir:
        bundles = build_corpus_bundle(
            articles, settings, lambda: load_signal_encoders(settings, dense), Path(workdir)
        )
        yield bundles, queries


def _list_figures(ranks: np.ndarray, queries: Sequence[RetrievalQuery]) -> dict[str, Any]:
    def figures(r: np.ndarray) -> dict[str, Any]:
        return {"queries": len(r), "recall@1": round(float(np.mean(r == 1)), 4), "mrr@10": round(mrr(r), 4)}

    by_lang: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        by_lang[q.lang].append(i)
    out = figures(ranks)
    out["by_lang"] = {lang: figures(ranks[idx]) for lang, idx in sorted(by_lang.items())}
    return out


def fit_ranking_scorer(
    bundles: Path,
    pairs: Sequence[ScoredPair],
    queries: Sequence[RetrievalQuery],
    signals: Sequence[str],
    settings: Settings,
    name: str,
    source: str,
    folds: int = 5,
) -> tuple[ScorerConfig, dict[str, Any]]:
    """The ranking scorer fitted on all the pairs and queries, and its cross-validated figures."""
    bundle = load_current(bundles)
    try:
        cosines = bundle_pair_cosines(bundle, pairs, signals)
        pools = candidate_pools(
            bundle,
            [(q.query_id, q.relevant, q.own_versions) for q in queries],
            signals,
            settings.rerank_depth,
        )
    finally:
        bundle.close()
    query_folds = np.array([fold_of(q.group, folds) for q in queries])
    pair_folds = np.array([fold_of(p.group, folds) for p in pairs])
    ranks, scores, weights = cross_validate_ranking(pairs, cosines, pools, query_folds, pair_folds, folds)
    config = used(fit_ranking(pairs, cosines, pools, name, source))
    figures: dict[str, Any] = {
        "cross_validated": {
            "lists": _list_figures(ranks, queries),
            "pairs": correlations(pairs, scores),
            "weights": weights,
        },
        "baselines": {
            name_: {"lists": _list_figures(list_ranks(pools, pools.cosines[name_]), queries)}
            for name_ in signals
        },
        "fitted": {"pairs": correlations(pairs, Scorer(config).combine(cosines))},
        "candidates_per_query": round(len(pools.query) / max(pools.queries, 1), 1),
        "queries_with_target_in_pool": len(np.unique(pools.query[pools.relevant])),
    }
    return config, figures
