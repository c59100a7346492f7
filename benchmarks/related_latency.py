"""Latency of the related endpoint on a published bundle: in-process and over HTTP from other processes.

    python -m benchmarks.related_latency --bundles var/bundles [--requests 2000] [--clients 4]
        [--cache] [--json out.json]

Two rankers are timed: the baseline (plain cosine, no list policy) and the service as configured
(the scorer and the default policies). In-process, their requests alternate, so that a noisy machine
weighs on both alike. Over HTTP each runs in its own server, one after the other: first one client
on one keep-alive connection (latency), then `--clients` client processes at once (throughput).
Prints median, 99th percentile and mean in milliseconds, requests per second, what the scorer adds
and the service's p50 over the baseline's.

Over HTTP, the lists are made anew by default: the server's response cache is off
(RELATED_RESPONSE_CACHE=0) and the ids are drawn without replacement (each article once per pass over
the corpus, each pass in a new order). With `--cache`, both rankers are served again with the cache on
(RELATED_RESPONSE_CACHE as set, 10,000 by default) and ids drawn with replacement, as repeat readers
ask. Each HTTP figure says whether the cache was on and its hit ratio over the timed requests, read
from the server's /metrics (related_list_cache_hits and _misses). The server is `related-articles
serve` with one worker (the cache and its counters are one process's).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serving import serving
from embeddings.index.bundle import Bundle
from embeddings.index.publish import load_current
from embeddings.ranking.finder import RelatedFinder, RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings


def summarize(samples_ms: list[float], seconds: float) -> dict[str, float]:
    """Median, p99, mean (ms) and throughput of a run."""
    arr = np.asarray(samples_ms)
    return {
        "requests": float(len(arr)),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
        "mean_ms": round(float(arr.mean()), 3),
        "requests_per_s": round(len(arr) / seconds, 1),
    }


def pick_ids(bundle: Bundle, n: int, seed: int, replace: bool = True) -> list[str]:
    """`n` article ids drawn at random from the bundle: with replacement, or each once per pass over it."""
    rng = np.random.default_rng(seed)
    pool = bundle.index.ids()
    if replace:
        rowids = rng.choice(pool, size=n)
    else:
        rowids = np.concatenate([rng.permutation(pool) for _ in range(math.ceil(n / len(pool)))])[:n]
    by_rowid = bundle.store.get_many([int(r) for r in set(rowids.tolist())])
    return [by_rowid[int(r)].id for r in rowids]


BASELINE_ENV = {
    "RELATED_SCORER": "cosine",
    "RELATED_REPRINT_CONTAINMENT": "1",
    "RELATED_MIN_SCORE": "-1",
    "RELATED_RERANK_DEPTH": "1",
    "RELATED_WINDOW_DAYS": "none",
    "RELATED_DIVERSITY": "0",
    "RELATED_LANG_POLICY": "any",
    "RELATED_FRESHNESS_WEIGHT": "0",
}


def in_process(
    bundle: Bundle, ids: list[str], k: int, settings: Settings, versus: str | None = None
) -> dict[str, Any]:
    """Time RelatedFinder.for_article directly (what a route does, minus HTTP), the rankers alternating.

    `versus`: another scorer (a JSON file), timed with the service's policies as a third ranker.
    """
    import faiss
    import threadpoolctl

    faiss.omp_set_num_threads(1)
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")  # as the service does
    rankers = {
        "baseline": (
            RelatedFinder.from_settings(bundle, load_scorer("cosine"), settings, plain=True),
            ListPolicy.off(),
        ),
        "service": (
            RelatedFinder.from_settings(bundle, load_scorer(settings.scorer), settings),
            ListPolicy.from_settings(settings),
        ),
    }
    if versus:
        scorer = load_scorer(versus)
        rankers["versus"] = (
            RelatedFinder.from_settings(bundle, scorer, settings),
            ListPolicy.from_settings(settings),
        )
    samples: dict[str, list[float]] = {name: [] for name in rankers}
    spent = dict.fromkeys(rankers, 0.0)
    for ident in ids[:50]:
        for finder, policy in rankers.values():
            finder.for_article(ident, RelatedQuery(k=k, policy=policy))
    for ident in ids:
        for name, (finder, policy) in rankers.items():
            t0 = time.perf_counter()
            finder.for_article(ident, RelatedQuery(k=k, policy=policy))
            elapsed = time.perf_counter() - t0
            samples[name].append(elapsed * 1000)
            spent[name] += elapsed
    out: dict[str, Any] = {name: summarize(samples[name], spent[name]) for name in rankers}
    out["added_p50_ms"] = round(out["service"]["p50_ms"] - out["baseline"]["p50_ms"], 3)
    out["added_p99_ms"] = round(out["service"]["p99_ms"] - out["baseline"]["p99_ms"], 3)
    out["service_over_baseline_p50"] = round(out["service"]["p50_ms"] / out["baseline"]["p50_ms"], 2)
    if versus:
        out["added_over_versus_p50_ms"] = round(out["service"]["p50_ms"] - out["versus"]["p50_ms"], 3)
        out["added_over_versus_p99_ms"] = round(out["service"]["p99_ms"] - out["versus"]["p99_ms"], 3)
    return out


def _get_all(base: str, paths: list[str]) -> tuple[list[float], int]:
    """GET each path in turn on one keep-alive connection: (milliseconds each, errors)."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=30)
    samples, errors = [], 0
    try:
        for path in paths:
            t0 = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            samples.append((time.perf_counter() - t0) * 1000)
            errors += response.status != 200
    finally:
        connection.close()
    return samples, errors


def _counters(base: str) -> tuple[int, int, int]:
    """The server's list cache, from its /metrics: (capacity, hits, misses)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", timeout=10.0).text
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    return (
        int(values["related_list_cache_capacity"]),
        int(values["related_list_cache_hits_total"]),
        int(values["related_list_cache_misses_total"]),
    )


def _cache_figures(before: tuple[int, int, int], after: tuple[int, int, int]) -> dict[str, Any]:
    """Whether the server's cache was on, and its hits, misses and hit ratio between two readings."""
    hits, misses = after[1] - before[1], after[2] - before[2]
    return {
        "cache": f"on ({after[0]} lists)" if after[0] else "off",
        "cache_hits": hits,
        "cache_misses": misses,
        "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
    }


def over_http(
    bundles: Path, ids: list[str], k: int, env: dict[str, str], clients: int, cache: bool
) -> dict[str, Any]:
    """Serve in a child process; time sequential keep-alive requests, then `clients` concurrent clients.

    The clients are processes of their own on http.client (lighter than httpx, so the figures are the
    server's more than the client's); on a 2-core machine they share the cores with the server.
    """
    from concurrent.futures import ProcessPoolExecutor
    from urllib.parse import quote

    env = env if cache else {**env, "RELATED_RESPONSE_CACHE": "0"}
    paths = [f"/v1/articles/{quote(ident, safe='')}/related?k={k}" for ident in ids]
    # One worker: the cache and its counters are one process's.
    with serving(bundles, {**env, "RELATED_WORKERS": "1"}) as base:
        counters = partial(_counters, base)
        _get_all(base, paths[:50])
        before = counters()
        started = time.perf_counter()
        samples, errors = _get_all(base, paths)
        result: dict[str, Any] = summarize(samples, time.perf_counter() - started)
        result["errors"] = float(errors)
        result.update(_cache_figures(before, counters()))
        if clients > 1:
            shares = [paths[i::clients] for i in range(clients)]
            with ProcessPoolExecutor(clients) as pool:
                list(pool.map(_get_all, [base] * clients, [share[:20] for share in shares]))  # warm
                before = counters()
                started = time.perf_counter()
                runs = list(pool.map(_get_all, [base] * clients, shares))
                seconds = time.perf_counter() - started
            together = [ms for run, _ in runs for ms in run]
            result["concurrent"] = {
                "clients": clients,
                **summarize(together, seconds),
                "errors": float(sum(e for _, e in runs)),
                **_cache_figures(before, counters()),
            }
        return result


def main() -> None:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-http", action="store_true", help="in-process only")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (1: none)")
    parser.add_argument(
        "--cache", action="store_true", help="over HTTP, also with the response cache on (repeat readers)"
    )
    parser.add_argument("--versus", help="in-process, also time this scorer file (e.g. a previous scorer)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    bundle = load_current(args.bundles)
    ids = pick_ids(bundle, args.requests, args.seed, replace=False)
    repeated = pick_ids(bundle, args.requests, args.seed, replace=True) if args.cache else []
    settings = Settings(bundles=args.bundles)
    results: dict[str, Any] = {"bundle": bundle.version, "articles": len(bundle.store), "k": args.k}
    results["distinct_ids"] = len(set(ids))
    results["in_process"] = in_process(bundle, ids, args.k, settings, args.versus)
    bundle.close()
    del bundle  # its arrays go before the servers load their own copy (7.8 GB at 1M articles)
    for name in ("baseline", "service", *(["versus"] if args.versus else [])):
        print(f"in-process {name:8s} {json.dumps(results['in_process'][name])}")
    if args.versus:
        print(
            f"in-process: the service adds {results['in_process']['added_over_versus_p50_ms']} ms at p50, "
            f"{results['in_process']['added_over_versus_p99_ms']} ms at p99 over {args.versus}"
        )
    print(
        f"in-process: the scorer and policies add {results['in_process']['added_p50_ms']} ms at p50, "
        f"{results['in_process']['added_p99_ms']} ms at p99; service / baseline at p50: "
        f"{results['in_process']['service_over_baseline_p50']}"
    )
    if not args.no_http:
        runs = [("cache_off", ids, False)] + ([("cache_on", repeated, True)] if args.cache else [])
        results["http"] = {}
        for label, drawn, cache in runs:
            mode = "on" if cache else "off"
            figures: dict[str, Any] = {
                name: over_http(args.bundles, drawn, args.k, env, args.clients, cache)
                for name, env in (("baseline", BASELINE_ENV), ("service", {}))
            }
            ratio = round(figures["service"]["p50_ms"] / figures["baseline"]["p50_ms"], 2)
            figures["service_over_baseline_p50"] = ratio
            results["http"][label] = figures
            draw = "with replacement" if cache else "without replacement"
            for name in ("baseline", "service"):
                print(f"over HTTP, cache {mode:3s} {name:8s} {json.dumps(figures[name])}")
            print(
                f"over HTTP, cache {mode} ({len(set(drawn))} distinct ids of "
                f"{len(drawn)}, drawn {draw}): service / baseline at p50: {ratio}"
            )
        if args.cache:
            on, off = results["http"]["cache_on"]["service"], results["http"]["cache_off"]["service"]
            print(
                f"over HTTP, service: cache on / cache off at p50: {round(on['p50_ms'] / off['p50_ms'], 2)}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
