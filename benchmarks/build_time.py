"""Build time and peak memory of a full build from an empty embedding cache, per backend.

    python -m benchmarks.build_time --input ARCHIVE [--field-map ...] [--backends torch,onnx-int8]
        [--skip-invalid] [--json out.json]

Each backend builds the archive into its own scratch bundles directory with a fresh embedding cache
(so every text is embedded), as `related-articles build` in a child process. Prints the wall time,
articles per second and the child's peak resident memory, and the time per signal from the log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_SIGNAL_DONE = re.compile(r"signal (\w+): embedded (\d+) texts in ([\d.]+)s")


def signal_seconds(log: str) -> dict[str, float]:
    """Seconds each signal's embedding took, from the build's log."""
    return {name: float(seconds) for name, _, seconds in _SIGNAL_DONE.findall(log)}


def build_once(args: argparse.Namespace, backend: str, scratch: Path) -> dict[str, Any]:
    """One build in a child process; its figures."""
    bundles = scratch / backend / "bundles"
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "build",
        "--input",
        str(args.input),
        "--bundles",
        str(bundles),
    ]
    cmd += ["--backend", backend, "--no-progress"]
    if args.field_map:
        cmd += ["--field-map", args.field_map]
    if args.skip_invalid:
        cmd.append("--skip-invalid")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"build with {backend} failed:\n{done.stderr[-3000:]}")
    summary = next(line for line in done.stdout.splitlines()[::-1] if line.startswith("read "))
    indexed = int(re.search(r"indexed (\d+)", summary).group(1))  # type: ignore[union-attr]
    return {
        "seconds": round(seconds, 1),
        "articles": indexed,
        "articles_per_s": round(indexed / seconds, 1),
        # ru_maxrss of children is the largest child so far: exact for the first build, a floor after.
        "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
        "signal_seconds": signal_seconds(done.stderr),
        "summary": summary,
    }


def main() -> None:
    """Build with each backend and print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--field-map")
    parser.add_argument("--skip-invalid", action="store_true")
    parser.add_argument("--backends", default="onnx-int8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, Any] = {"input": args.input.name}
    with tempfile.TemporaryDirectory(prefix="build-time-") as scratch:
        for backend in args.backends.split(","):
            results[backend] = build_once(args, backend, Path(scratch))
            print(f"{backend:10s} {json.dumps(results[backend], ensure_ascii=False)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
