"""How long after a write is acknowledged by one process another one serves it (p50, p99).

    python -m benchmarks.visibility_lag --bundles var/bundles [--writes 100] [--json F]

Two `related-articles serve` processes on one private copy of the bundles directory: each write goes
to one, and the other is asked for the article until it answers 200; the lag is from the write's
acknowledgment to that answer (a read takes about a millisecond, so that is the resolution).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.faults.harness import AUTH, Lab


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from embeddings.settings import Settings

    lab = Lab(args.bundles, args.cache_dir or Settings().cache_dir, Path(tempfile.mkdtemp(prefix="lag-")))
    lags: list[float] = []
    try:
        bundles = lab.copy()
        one, other = lab.start(bundles).ready(), lab.start(bundles).ready()
        for i in range(args.writes):
            writer, reader = (one, other) if i % 2 else (other, one)
            body = {"title": f"lag {i}", "lang": "en"}
            assert writer.client.put(f"/v1/articles/lag-{i}", json=body, headers=AUTH).status_code == 200
            acknowledged = time.perf_counter()
            while reader.client.get(f"/v1/articles/lag-{i}").status_code != 200:
                pass
            lags.append((time.perf_counter() - acknowledged) * 1000)
    finally:
        lab.close()
    lags.sort()
    result = {
        "writes": len(lags),
        "p50_ms": statistics.median(lags),
        "p99_ms": lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))],
        "max_ms": lags[-1],
    }
    print(
        f"visibility lag between two processes over {result['writes']} writes: "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, max {result['max_ms']:.2f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
