"""How long after a write is acknowledged by one process another one serves it (p50, p99).

    python -m benchmarks.visibility_lag --bundles var/bundles [--writes 100] [--json F]

Two `related-articles serve` processes on one private copy of the bundles directory: each write goes
to one, and the other is asked for the article until it answers 200; the lag is from the write's
acknowledgment to that answer (a read takes about a millisecond, so that is the resolution). Measured
twice in one run: sharing the SQLite log (processes, or workers, of one machine), and sharing a
PostgreSQL log (replicas: a throwaway cluster, or `--write-log postgresql://...`), told by LISTEN/NOTIFY.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.faults.harness import AUTH, Lab
from tests.support.pg_cluster import unavailable


def lags(lab: Lab, writes: int, **env: str) -> dict[str, Any]:
    """Write through one of two servers, alternately, and time the other's first 200."""
    bundles = lab.copy()
    one, other = lab.start(bundles, **env).ready(), lab.start(bundles, **env).ready()
    out: list[float] = []
    for i in range(writes):
        writer, reader = (one, other) if i % 2 else (other, one)
        body = {"title": f"lag {i}", "lang": "en"}
        assert writer.client.put(f"/v1/articles/lag-{i}", json=body, headers=AUTH).status_code == 200
        acknowledged = time.perf_counter()
        while reader.client.get(f"/v1/articles/lag-{i}").status_code != 200:
            pass
        out.append((time.perf_counter() - acknowledged) * 1000)
    one.stop()
    other.stop()
    out.sort()
    return {
        "writes": len(out),
        "p50_ms": statistics.median(out),
        "p99_ms": out[min(len(out) - 1, round(0.99 * (len(out) - 1)))],
        "max_ms": out[-1],
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--write-log", help="a postgresql:// URL to use instead of a throwaway cluster")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from embeddings.settings import Settings

    lab = Lab(args.bundles, args.cache_dir or Settings().cache_dir, Path(tempfile.mkdtemp(prefix="lag-")))
    results: dict[str, dict[str, Any]] = {}
    try:
        results["sqlite (two processes, one machine)"] = lags(lab, args.writes)
        why = None if args.write_log else unavailable()
        if why:
            print(f"no PostgreSQL measurement: {why}")
        else:
            url = args.write_log or lab.postgresql().new_database()
            results["postgresql (two replicas)"] = lags(lab, args.writes, RELATED_WRITE_LOG=url)
    finally:
        lab.close()
    for name, r in results.items():
        print(
            f"visibility lag, {name}, over {r['writes']} writes: "
            f"p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
