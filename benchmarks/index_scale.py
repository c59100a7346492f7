"""Search latency and recall of the exact and the HNSW index, at the real bundle's size and beyond.

    python -m benchmarks.index_scale --bundles DIR [--sizes 100000,1000000] [--kinds flat,hnsw]
        [--queries 300] [--json out.json]

The real bundle's main vectors are searched as they are. Larger corpora are synthetic: real vectors
drawn at random, each moved by Gaussian noise and normalized again, so that they keep the real data's
neighbourhoods (every article has close relatives) instead of the structureless spread of random
vectors. For each size and kind: build seconds, then single-query search latency (k = 50, what the
service asks FAISS for; one thread) as p50/p99 and queries per second, and recall@10 against exact
search.
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


def measure(vectors: np.ndarray, kinds: list[str], queries: int, seed: int) -> dict[str, Any]:
    """Build each kind over `vectors` and time single-query searches; recall@10 against flat."""
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), size=queries, replace=False)
    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    exact: list[set[int]] = []
    out: dict[str, Any] = {"articles": len(vectors)}
    for kind in ["flat", *[k for k in kinds if k != "flat"]]:
        faiss.omp_set_num_threads(2)  # building may use both cores
        started = time.perf_counter()
        index = VectorIndex.build(vectors, ids, kind)  # type: ignore[arg-type]
        built = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        samples, found = [], []
        for q in picks:
            t0 = time.perf_counter()
            _, hits = index.search(vectors[q], 50)
            samples.append((time.perf_counter() - t0) * 1000)
            found.append(set(hits[:10].tolist()))
        if kind == "flat":
            exact = found
        recall = float(np.mean([len(f & e) / 10 for f, e in zip(found, exact, strict=True)]))
        arr = np.asarray(samples)
        if kind in kinds:
            out[kind] = {
                "build_s": round(built, 1),
                "p50_ms": round(float(np.percentile(arr, 50)), 3),
                "p99_ms": round(float(np.percentile(arr, 99)), 3),
                "queries_per_s": round(1000 / float(arr.mean()), 1),
                "recall_at_10": round(recall, 4),
            }
            print(f"{len(vectors):>9} {kind:5s} {json.dumps(out[kind])}", flush=True)
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
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.35, help="Gaussian noise of synthetic vectors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    kinds: list[IndexKind] = args.kinds.split(",")
    bundle = load_current(args.bundles)
    base = np.ascontiguousarray(bundle.signals[MAIN])
    bundle.close()
    results: dict[str, Any] = {
        "bundle": str(args.bundles),
        "real": measure(base, kinds, args.queries, args.seed),
    }
    for size in (int(s) for s in args.sizes.split(",") if s):
        vectors = synthetic(base, size, args.noise, args.seed)
        results[str(size)] = measure(vectors, kinds, args.queries, args.seed)
        del vectors
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
