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
from embeddings.evaluation.pairs import ScoredPair, across_mask, correlations, fold_of
from embeddings.evaluation.ranking_fit import (
    Pools,
    candidate_pools,
    cross_validate_ranking,
    fit_ranking,
    list_ranks,
    mrr,
    used,
)
from embeddings.evaluation.retrieval import (
    RELEVANT_OVERALL,
    RetrievalQuery,
    build_corpus_bundle,
    bundle_pair_cosines,
    retrieval_corpus,
)
from embeddings.evaluation.story_threshold import UNRELATED, cross_validate_threshold
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
    by_relation: dict[str, list[int]] = defaultdict(list)
    for i, q in enumerate(queries):
        by_lang[q.lang].append(i)
        by_relation["across languages" if q.across else "same language"].append(i)
    out = figures(ranks)
    out["by_relation"] = {name: figures(ranks[idx]) for name, idx in sorted(by_relation.items())}
    out["by_lang"] = {lang: figures(ranks[idx]) for lang, idx in sorted(by_lang.items())}
    return out


def floor_figures(pairs: Sequence[ScoredPair], scores: np.ndarray, floor: float) -> dict[str, Any]:
    """What the relatedness floor keeps out: the share of unrelated pairs (Overall >= 3.5) and of
    same-story ones (<= 1.5) scored below it."""
    overall = np.array([p.overall for p in pairs])
    below = np.asarray(scores) < floor
    unrelated, same = overall >= UNRELATED, overall <= RELEVANT_OVERALL
    return {
        "floor": floor,
        "unrelated_below": round(float(below[unrelated].mean()), 4) if unrelated.any() else None,
        "same_story_below": round(float(below[same].mean()), 4) if same.any() else None,
    }


def signal_ranks(pools: Pools, signal: str, query_across: np.ndarray) -> np.ndarray:
    """Each query's rank by one signal's cosine alone, among the candidates its list would rank."""
    ranks = np.zeros(pools.queries, dtype=np.int64)
    for across in (False, True):
        chosen = np.flatnonzero(query_across == across)
        if len(chosen):
            part = pools.listed(chosen, across)
            ranks[chosen] = list_ranks(part, part.cosines[signal])
    return ranks


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
    query_across = np.array([q.across for q in queries], dtype=bool)
    ranks, scores, weights = cross_validate_ranking(
        pairs, cosines, pools, query_across, query_folds, pair_folds, folds
    )
    config = used(fit_ranking(pairs, cosines, pools, query_across, name, source))
    story = cross_validate_threshold(pairs, scores, folds=folds)
    config.story_threshold = story["threshold"]
    pair_across = across_mask(pairs)
    figures: dict[str, Any] = {
        "cross_validated": {
            "lists": _list_figures(ranks, queries),
            "pairs": correlations(pairs, scores),
            "weights": weights,
            "story": {k: story[k] for k in ("threshold", "fold_thresholds", "cross_validated")},
            "floor": floor_figures(pairs, scores, settings.min_score),
        },
        "baselines": {
            name_: {"lists": _list_figures(signal_ranks(pools, name_, query_across), queries)}
            for name_ in signals
        },
        "fitted": {"pairs": correlations(pairs, Scorer(config).combine(cosines, pair_across))},
        "candidates_per_query": round(len(pools.query) / max(pools.queries, 1), 1),
        "queries_with_target_in_pool": len(np.unique(pools.query[pools.relevant])),
    }
    return config, figures
