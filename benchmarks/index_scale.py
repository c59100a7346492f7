"""Search latency and recall of the exact and the HNSW index, at the real bundle's size and beyond.

    python -m benchmarks.index_scale --bundles DIR [--sizes 100000,1000000] [--kinds flat,hnsw]
        [--queries 300] [--holdout 0.2] [--searches 300] [--json out.json]

Queries are held out: they are not in the index searched. From the real bundle's main vectors, a random
`--queries` of them (at most `--holdout` of the corpus, so that the demo's 147 articles hold out 29)
are set aside and the rest indexed. Larger corpora are synthetic: real vectors drawn at random, each
moved by Gaussian noise and normalized again, so that they keep the real data's neighbourhoods (every
article has close relatives) instead of the structureless spread of random vectors; the queries are
drawn the same way and left out of the index. For each size and kind: build seconds, then
single-query search latency (k = 50, what the service asks FAISS for; one thread) as p50/p99 over
`--searches` timed searches (cycling over the held-out queries) and queries per second, the p50
speed-up over exact search in the same run, and recall@10 of the held-out queries against exact search.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.index.publish import load_current
from embeddings.index.vector_index import IndexKind, VectorIndex
from embeddings.vectors import MAIN

K = 50  # what the service asks FAISS for
RECALL_AT = 10


def synthetic(base: np.ndarray, n: int, noise: float, seed: int, shuffle: bool = True) -> np.ndarray:
    """`n` unit vectors near randomly drawn rows of `base` (near its first `n` rows, in order, unshuffled)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        size = min(100_000, n - start)
        rows = base[rng.integers(0, len(base), size)] if shuffle else base[start : start + size]
        moved = rows + rng.normal(scale=noise / np.sqrt(base.shape[1]), size=rows.shape).astype(np.float32)
        out[start : start + len(rows)] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return out


def held_out(count: int, queries: int, holdout: float) -> int:
    """How many of `count` vectors to hold out as queries: `queries`, at most `holdout` of them."""
    n = min(queries, int(count * holdout))
    if n < 1 or count - n < RECALL_AT:
        raise SystemExit(
            f"{count} vectors are too few to hold out queries and keep {RECALL_AT} in the index "
            f"(--queries {queries}, --holdout {holdout})"
        )
    return n


def split(vectors: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indexed, queries): `n` random rows of `vectors` held out, the others to index."""
    order = np.random.default_rng(seed).permutation(len(vectors))
    return vectors[np.sort(order[n:])], vectors[order[:n]]


def measure(
    vectors: np.ndarray, queries: np.ndarray, kinds: list[IndexKind], searches: int
) -> dict[str, Any]:
    """Build each kind over `vectors`; time searches of `queries` (none indexed); recall@10 against flat."""
    import faiss

    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    exact: list[set[int]] = []
    flat_p50 = 0.0
    out: dict[str, Any] = {"indexed": len(vectors), "queries": len(queries), "searches": searches}
    order: list[IndexKind] = ["flat", *[k for k in kinds if k != "flat"]]
    for kind in order:
        faiss.omp_set_num_threads(2)  # building may use both cores
        started = time.perf_counter()
        index = VectorIndex.build(vectors, ids, kind)
        built = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        found = [set(index.search(q, K)[1][:RECALL_AT].tolist()) for q in queries]
        samples = []
        for i in range(searches):
            query = queries[i % len(queries)]
            t0 = time.perf_counter()
            index.search(query, K)
            samples.append((time.perf_counter() - t0) * 1000)
        arr = np.asarray(samples)
        p50 = float(np.percentile(arr, 50))
        if kind == "flat":
            exact, flat_p50 = found, p50
        recall = float(np.mean([len(f & e) / RECALL_AT for f, e in zip(found, exact, strict=True)]))
        if kind in kinds:
            out[kind] = {
                "build_s": round(built, 2),
                "p50_ms": round(p50, 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "queries_per_s": round(1000 / float(arr.mean()), 1),
                "speedup_p50_vs_flat": round(flat_p50 / p50, 2),
                f"recall_at_{RECALL_AT}": round(recall, 4),
            }
            print(
                f"{len(vectors):>9} indexed, {len(queries)} held-out queries, {kind:5s} "
                f"{json.dumps(out[kind])}",
                flush=True,
            )
        del index
    return out


def main() -> None:
    """Measure every size and print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--kinds", default="flat,hnsw")
    parser.add_argument("--queries", type=int, default=300, help="held-out query vectors")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="the largest share of a corpus held out as queries"
    )
    parser.add_argument("--searches", type=int, default=300, help="timed searches per size and kind")
    parser.add_argument("--noise", type=float, default=0.35, help="Gaussian noise of synthetic vectors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds: list[IndexKind] = args.kinds.split(",")
    bundle = load_current(args.bundles)
    base = np.ascontiguousarray(bundle.signals[MAIN])
    bundle.close()
    indexed, queries = split(base, held_out(len(base), args.queries, args.holdout), args.seed)
    results: dict[str, Any] = {
        "bundle": str(args.bundles),
        "real": measure(indexed, queries, kinds, args.searches),
    }
    for size in (int(s) for s in args.sizes.split(",") if s):
        n = held_out(size, args.queries, args.holdout)
        # Every synthetic row is drawn independently: the last `n` are as random a choice as any.
        vectors = synthetic(base, size + n, args.noise, args.seed)
        results[str(size)] = measure(vectors[:size], vectors[size:], kinds, args.searches)
        del vectors
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
