"""Stories over a real corpus: recall of same-story pairs among distractors, story lengths, by pool depth.

    python -m benchmarks.story_corpus --pairs PAIRS.jsonl --distractors ARCHIVE [--field-map ...]
        [--depths 50,100,200] [--queries 1000] [--json F]

The corpus is every pair text and the distractor archive, built into a temporary bundle with the
real build (vectors from the evaluation cache), as `related-articles evaluate retrieval` builds it.
Each side of a same-story pair (Overall <= 2) asks for its story (the default `k`, the shipped
threshold; the query's own translations excluded): found if the other side, or a version of it, is in it. The
bound is the share whose pair reaches the threshold at all (the pair's own relatedness), whatever the
pool. Then `--queries` distractors, sampled with a seed, ask for theirs at the longest `k`: how long a
story is, and how long it takes (in-process).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.articles.readers import parse_field_map
from embeddings.cli import evaluation_cache
from embeddings.evaluation.commands import retrieval_bundle
from embeddings.evaluation.pairs import read_pairs
from embeddings.evaluation.retrieval import _side_id, bundle_pair_cosines, read_distractors
from embeddings.evaluation.story_threshold import SAME_STORY
from embeddings.index.publish import load_current
from embeddings.ranking.finder import RelatedFinder
from embeddings.ranking.scorer import load_scorer
from embeddings.ranking.story import DEFAULT_LENGTH, MAX_LENGTH, StoryQuery, story_of
from embeddings.settings import load_settings


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(
    pairs_path: Path, distractors_path: Path, field_map: str | None, depths: list[int], sample: int
) -> dict[str, Any]:
    """The figures, for each pool depth."""
    settings = load_settings()
    settings = settings.model_copy(update={"embedding_cache": evaluation_cache(settings)})
    scorer = load_scorer(settings.scorer)
    threshold = scorer.config.story_threshold
    assert threshold is not None, f"scorer {scorer.name} has no story threshold"
    pairs = read_pairs(pairs_path)
    # The retrieval corpus's queries are its pairs scored at most 1.5: the same-story ones here.
    same = [dataclasses.replace(p, overall=1.0) if p.overall <= SAME_STORY else p for p in pairs]
    distractors = read_distractors(distractors_path, parse_field_map(field_map), None)
    signals = list(scorer.signals)
    with retrieval_bundle(settings, same, distractors, signals, pairs_path) as (bundles, queries):
        bundle = load_current(bundles)
        try:
            finder = RelatedFinder.from_settings(bundle, scorer, settings)
            reaching = scorer.combine(bundle_pair_cosines(bundle, pairs, signals)) >= threshold
            reached = {
                frozenset({_side_id(p.side1), _side_id(p.side2)})
                for p, r in zip(pairs, reaching, strict=True)
                if r
            }
            bound = [any(frozenset({q.query_id, r}) in reached for r in q.relevant) for q in queries]
            ids = [i for i in bundle.store.all_ids() if i.startswith("distractor-")]
            asked = random.Random(0).sample(ids, min(sample, len(ids)))
            result: dict[str, Any] = {
                "corpus": len(bundle.store),
                "threshold": threshold,
                "queries": len(queries),
                "bound": round(float(np.mean(bound)), 4),
                "depths": {},
            }
            for depth in depths:
                result["depths"][depth] = _at_depth(finder, queries, asked, threshold, depth)
        finally:
            bundle.close()
    return result


def _at_depth(
    finder: RelatedFinder, queries: list[Any], asked: list[str], threshold: float, depth: int
) -> dict[str, Any]:
    found = []
    for q in queries:
        query = StoryQuery(threshold, DEFAULT_LENGTH, exclude=tuple(sorted(q.own_versions)), depth=depth)
        story = story_of(finder, q.query_id, query)
        ids = {e.article.id for e in story.entries} | {c for e in story.entries for c in e.copies}
        found.append(bool(q.relevant & ids))
    lengths, articles, took = [], [], []
    for article_id in asked:
        start = time.perf_counter()
        story = story_of(finder, article_id, StoryQuery(threshold, MAX_LENGTH, depth=depth))
        took.append((time.perf_counter() - start) * 1000)
        lengths.append(len(story.entries))
        articles.append(len(story.entries) + sum(len(e.copies) for e in story.entries))
    return {
        "recall": round(float(np.mean(found)), 4),
        "entries_median": statistics.median(lengths),
        "entries_p90": _percentile(lengths, 0.9),
        "entries_p99": _percentile(lengths, 0.99),
        "entries_max": max(lengths),
        "at_the_cap": round(float(np.mean([n >= MAX_LENGTH for n in lengths])), 4),
        "articles_p99": _percentile(articles, 0.99),
        "ms_p50": round(statistics.median(took), 2),
        "ms_p99": round(_percentile(took, 0.99), 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and write the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True, help="JSONL of scored pairs")
    parser.add_argument("--distractors", type=Path, required=True, help="an archive (file or directory)")
    parser.add_argument("--field-map", help="column mapping of the distractor archive")
    parser.add_argument("--depths", default="50,100,200", help="pool depths to compare")
    parser.add_argument("--queries", type=int, default=1000, help="distractors asking for their story")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    result = measure(args.pairs, args.distractors, args.field_map, depths, args.queries)
    print(
        f"corpus {result['corpus']}, threshold {result['threshold']}, "
        f"{result['queries']} same-story queries; their pair reaches the threshold for {result['bound']:.3f}"
    )
    for depth, fig in result["depths"].items():
        print(
            f"  depth {depth:4d}: recall {fig['recall']:.3f}; entries median {fig['entries_median']}, "
            f"p90 {fig['entries_p90']}, p99 {fig['entries_p99']}, max {fig['entries_max']}, "
            f"at the cap {fig['at_the_cap']:.3f}; articles p99 {fig['articles_p99']}; "
            f"{fig['ms_p50']} ms p50, {fig['ms_p99']} ms p99"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
