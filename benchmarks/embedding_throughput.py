"""Embedding throughput: texts per second for headlines and for whole articles, per backend.

    python -m benchmarks.embedding_throughput --input ARCHIVE [--field-map ...] [--headlines 512]
        [--articles 128] [--backends torch,onnx-int8] [--repeats 3] [--json out.json]

The same texts go through each backend's main encoder (the model at RELATED_MAX_SEQ_LENGTH tokens,
256 by default) in batches of 32. Each figure is the median of `--repeats` timed runs after a warm-up
batch; backends alternate between runs, so that a noisy machine weighs on them alike. Also prints each
backend's speed-up over the first and the cosine of its vectors to the first backend's.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from embeddings.articles.readers import parse_field_map, read_articles
from embeddings.articles.text import article_text
from embeddings.model.encoders import Encoder, load_encoder
from embeddings.settings import Settings


def timed(encoder: Encoder, texts: list[str]) -> tuple[float, np.ndarray]:
    """Seconds to embed `texts`, and the vectors."""
    started = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=32)
    return time.perf_counter() - started, vectors


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, required=True, help="an archive the build can read")
    parser.add_argument("--field-map", help="as for `related-articles build`")
    parser.add_argument("--headlines", type=int, default=512)
    parser.add_argument("--articles", type=int, default=128)
    parser.add_argument("--backends", default="torch,onnx-int8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    read = read_articles(args.input, parse_field_map(args.field_map))
    rng = random.Random(args.seed)
    pool = [a for a in read.articles if a.body]
    headlines = [a.title for a in rng.sample(read.articles, min(args.headlines, len(read.articles)))]
    articles = [article_text(a.title, a.body) for a in rng.sample(pool, min(args.articles, len(pool)))]
    backends = args.backends.split(",")
    encoders = {name: load_encoder(Settings(backend=name)) for name in backends}
    kinds = {"headlines": headlines, "articles": articles}
    seconds: dict[str, dict[str, list[float]]] = {b: {k: [] for k in kinds} for b in backends}
    vectors: dict[str, dict[str, np.ndarray]] = {b: {} for b in backends}
    for encoder in encoders.values():
        encoder.encode(articles[:32], batch_size=32)  # warm-up
    for _ in range(args.repeats):
        for kind, texts in kinds.items():
            for name, encoder in encoders.items():
                took, vectors[name][kind] = timed(encoder, texts)
                seconds[name][kind].append(took)

    first = backends[0]
    result: dict[str, Any] = {
        "input": args.input.name,
        "texts": {k: len(v) for k, v in kinds.items()},
        "max_seq_length": encoders[first].spec.max_seq_length,
        "backends": {},
    }
    for name in backends:
        figures: dict[str, Any] = {}
        for kind, texts in kinds.items():
            rate = len(texts) / median(seconds[name][kind])
            base = len(texts) / median(seconds[first][kind])
            cosine = (vectors[name][kind] * vectors[first][kind]).sum(axis=1)
            figures[kind] = {
                "texts_per_s": round(rate, 1),
                "speedup": round(rate / base, 2),
                "cosine_to_first_min": round(float(cosine.min()), 5),
                "cosine_to_first_median": round(float(np.median(cosine)), 5),
            }
            print(f"{name:10s} {kind:9s} {json.dumps(figures[kind])}")
        result["backends"][name] = figures
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
