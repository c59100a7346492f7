"""A load run on loopback: mixed reads and writes against `related-articles serve` from a second process.

    python -m benchmarks.load_run --bundles var/bundles [--seconds 60] [--clients 8] [--write-share 0.1]

The published bundle is copied to a scratch directory first (the run writes into the copy's write log,
never into the bundles given). The server runs in a child process; this process is the client, with
`--clients` threads on keep-alive connections. Reads ask for the related list of a random article
(`k=4`, default policies), from the bundle or written during the run. Writes put an article of the
bundle under a new id (so it is embedded by every signal like a real publication), and one write in
five deletes an article written before. Prints throughput, latency percentiles per kind and the
error count (any status but 200, and connection failures).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.related_latency import pick_ids, summarize
from benchmarks.serving import serving
from embeddings.index.publish import VERSIONS, current_target, load_current, publish

KEY = "load-run-key"


def scratch_copy(bundles: Path, into: Path) -> Path:
    """A bundles directory holding only the published version of `bundles` (no write log, no cache)."""
    target = current_target(bundles)
    if target is None:
        raise SystemExit(f"no bundle published in {bundles}")
    copy = into / "bundles"
    shutil.copytree(target, copy / VERSIONS / target.name)
    publish(copy, copy / VERSIONS / target.name)
    return copy


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {"read": [], "write": [], "delete": []})
    errors: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: list[str] = field(default_factory=list)

    def record(self, kind: str, ms: float, outcome: str | None) -> None:
        """One request: its kind, time and, if it failed, why."""
        with self.lock:
            self.samples[kind].append(ms)
            if outcome is not None:
                self.errors[outcome] = self.errors.get(outcome, 0) + 1


def client_loop(
    base: str,
    ids: list[str],
    articles: list[dict[str, Any]],
    args: argparse.Namespace,
    seed: int,
    tally: Tally,
) -> None:
    """One client: random reads and writes until the time is up."""
    import httpx

    rng = random.Random(seed)
    auth = {"Authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + args.seconds
    n = 0
    with httpx.Client(base_url=base, timeout=60.0) as client:
        while time.monotonic() < deadline:
            n += 1
            if rng.random() >= args.write_share:
                kind = "read"
                pool = tally.written if tally.written and rng.random() < 0.2 else ids
                request = ("GET", f"/v1/articles/{rng.choice(pool)}/related", {"params": {"k": 4}})
            elif tally.written and rng.random() < 0.2:
                kind = "delete"
                with tally.lock:
                    victim = tally.written.pop(rng.randrange(len(tally.written)))
                request = ("DELETE", f"/v1/articles/{victim}", {"headers": auth})
            else:
                kind = "write"
                ident = f"load-{seed}-{n}"
                body = rng.choice(articles)
                request = ("PUT", f"/v1/articles/{ident}", {"headers": auth, "json": body})
            method, url, kwargs = request
            started = time.perf_counter()
            try:
                response = client.request(method, url, **kwargs)
                outcome = None if response.status_code == 200 else str(response.status_code)
            except httpx.TransportError as exc:
                outcome = type(exc).__name__
            tally.record(kind, (time.perf_counter() - started) * 1000, outcome)
            if kind == "write" and outcome is None:
                with tally.lock:
                    tally.written.append(ident)


def main() -> None:
    """Run the load and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--write-share", type=float, default=0.1, help="share of requests that write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    bundle = load_current(args.bundles)
    ids = pick_ids(bundle, 5000, args.seed)
    fields = ("title", "body", "lang", "published_at", "section", "source", "url")
    articles = []
    for article in bundle.store.get_many(list(range(1, min(len(bundle), 2000) + 1))).values():
        row = {f: getattr(article, f) for f in fields if getattr(article, f) is not None}
        row["published_at"] = article.published_at.isoformat() if article.published_at else None
        articles.append(row)
    bundle.close()

    with tempfile.TemporaryDirectory(prefix="load-run-") as scratch:
        copy = scratch_copy(args.bundles, Path(scratch))
        with serving(copy, {"RELATED_API_KEYS": KEY}) as base:
            tally = Tally()
            threads = [
                threading.Thread(target=client_loop, args=(base, ids, articles, args, args.seed + i, tally))
                for i in range(args.clients)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            import httpx

            index = httpx.get(f"{base}/v1/index", timeout=30).json()

    every = [ms for samples in tally.samples.values() for ms in samples]
    result: dict[str, Any] = {
        "bundle": index["version"],
        "articles_at_end": index["writes"]["articles"],
        "writes_pending_at_end": index["writes"]["pending"],
        "seconds": round(elapsed, 1),
        "clients": args.clients,
        "write_share": args.write_share,
        "all": summarize(every, elapsed),
        "errors": sum(tally.errors.values()),
        "errors_by_kind": tally.errors,
    }
    for kind, samples in tally.samples.items():
        if samples:
            result[kind] = summarize(samples, elapsed)
    for key in ("all", "read", "write", "delete"):
        if key in result:
            print(f"{key:7s} {json.dumps(result[key])}")
    print(
        f"{result['all']['requests']:.0f} requests in {elapsed:.1f} s from {args.clients} clients: "
        f"{result['all']['requests_per_s']} requests/s, p50 {np.round(result['all']['p50_ms'], 1)} ms, "
        f"p99 {np.round(result['all']['p99_ms'], 1)} ms, {result['errors']} errors; "
        f"{result['writes_pending_at_end']} writes pending at the end"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
