"""A synthetic bundle of any size made from a real one, to measure the service at 100k or 1M articles.

    python -m benchmarks.synthetic_bundle --bundles REAL_DIR --size 100000 --out DIR [--noise 0.35]

Each synthetic article copies a random real one (its title, the start of its body, its language, date
and section) under a new id and a title made unique. Every signal vector is moved by Gaussian noise
and normalized again, as in `benchmarks/index_scale.py`, so that neighbourhoods look like the real
data's; the reprint signature keeps a quarter of its values and draws the rest anew, so that copies
are not taken for reprints of each other. The bundle is written, checked and published like a
build's (index kind by size, precomputed neighbours), without the lexical signal (its rows would take
about 8 KB an article, and the shipped scorer does not use them). Then serve it, or run
`benchmarks.related_latency` on it.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.index_scale import synthetic
from embeddings.articles.article import Article
from embeddings.build.bundle_writer import write_bundle
from embeddings.index.publish import build_lock, load_current, new_version
from embeddings.settings import Settings
from embeddings.vectors import LEX, ModelSpec


def main() -> None:
    """Make and publish the bundle."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, required=True, help="the real bundles directory")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="bundles directory to publish into")
    parser.add_argument("--noise", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--body-chars", type=int, default=300, help="bodies are cut here (lists never read them)"
    )
    args = parser.parse_args()
    # The bundle writer's steps (the neighbours' time) are logged: a 1M bundle takes minutes.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    real = load_current(args.bundles)
    rng = np.random.default_rng(args.seed)
    source = rng.integers(1, len(real) + 1, args.size)
    stored = real.store.get_many(sorted(set(source.tolist())))
    articles = [
        Article(
            id=f"syn-{i}",
            title=f"{stored[int(r)].title} {i}",
            body=stored[int(r)].body[: args.body_chars],
            lang=stored[int(r)].lang,
            published_at=stored[int(r)].published_at,
            section=stored[int(r)].section,
        )
        for i, r in enumerate(source)
    ]
    signals = {
        name: synthetic(vectors[source - 1], args.size, args.noise, args.seed + k, shuffle=False)
        for k, (name, vectors) in enumerate(real.signals.items())
    }
    reprints = real.reprints[source - 1].copy()
    redraw = rng.random(reprints.shape) < 0.75
    reprints[redraw] = rng.integers(0, 2**32 - 1, int(redraw.sum()), dtype=np.uint32)
    print(f"{args.size} articles and their vectors made ({time.perf_counter() - started:.0f} s)", flush=True)
    settings = Settings(bundles=args.out, index_kind="auto")
    with build_lock(args.out):
        final, count = write_bundle(
            settings,
            new_version(),
            articles,
            signals,
            reprints,
            ModelSpec(**real.manifest["model"]),
            {name: spec for name, spec in real.manifest["signals"].items() if name != LEX},
            {"synthetic": {"from": real.version, "noise": args.noise, "seed": args.seed}},
        )
    real.close()
    print(f"published {count} synthetic articles in {final} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
