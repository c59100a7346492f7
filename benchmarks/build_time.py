"""Build time and peak memory of a full build from an empty embedding cache, per backend and engine.

    python -m benchmarks.build_time --input ARCHIVE [--field-map ...] [--backends torch,onnx-int8]
        [--engines local,ray] [--skip-invalid] [--json out.json]

Each backend and engine builds the archive into its own scratch bundles directory with a fresh
embedding cache (so every text is embedded), as `related-articles build` in a child process. Prints
the wall time, articles per second, the build process's peak resident memory, the peak proportional
memory (PSS) of its whole process tree (with a local Ray instance: the driver, Ray's daemons and
every actor) and the time per signal from the log.
With several engines, it also says whether each wrote the same bundle files as the first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_SIGNAL_DONE = re.compile(r"signal (\w+): embedded (\d+) texts in ([\d.]+)s")


def signal_seconds(log: str) -> dict[str, float]:
    """Seconds each signal's embedding took, from the build's log."""
    return {name: float(seconds) for name, _, seconds in _SIGNAL_DONE.findall(log)}


def tree_pss_mb(pid: int) -> float:
    """Proportional memory (PSS: shared pages split among their sharers) of a process and all its
    descendants, in MB; a sum of RSS would count Ray's shared object store once per process."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_full_info().pss
    return total / 2**20


def bundle_files(bundles: Path) -> dict[str, str]:
    """SHA-256 of each file of the published bundle, but its manifest (which names the build)."""
    current = (bundles / "current").resolve()
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(current.iterdir())
        if f.name != "manifest.json"
    }


def build_once(args: argparse.Namespace, backend: str, engine: str, scratch: Path) -> dict[str, Any]:
    """One build in a child process; its figures."""
    bundles = scratch / f"{backend}-{engine}" / "bundles"
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
    cmd += ["--backend", backend, "--engine", engine, "--no-progress"]
    if args.field_map:
        cmd += ["--field-map", args.field_map]
    if args.skip_invalid:
        cmd.append("--skip-invalid")
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=os.environ.copy())
        peak_tree = 0.0
        finished = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not finished.wait(0.5):
                peak_tree = max(peak_tree, tree_pss_mb(child.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest child's so far
        child.returncode = returncode = os.waitstatus_to_exitcode(status)
        finished.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.perf_counter() - started
    if returncode != 0:
        raise SystemExit(f"build with {backend} on {engine} failed:\n{stderr[-3000:]}")
    summary = next(line for line in stdout.splitlines()[::-1] if line.startswith("read "))
    indexed = int(re.search(r"indexed (\d+)", summary).group(1))  # type: ignore[union-attr]
    return {
        "seconds": round(seconds, 1),
        "articles": indexed,
        "articles_per_s": round(indexed / seconds, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # the build process itself
        "peak_tree_pss_mb": round(peak_tree, 1),  # it and every descendant, sampled every 0.5 s
        "signal_seconds": signal_seconds(stderr),
        "summary": summary,
        "files": bundle_files(bundles),
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
    parser.add_argument("--engines", default="local", help="local, ray, or both: local,ray")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        import psutil  # noqa: F401  (the memory sampler needs it; fail now, not with a figure of 0)
    except ImportError as exc:
        raise SystemExit(f"this benchmark needs psutil (pip install psutil): {exc}") from exc
    results: dict[str, Any] = {"input": args.input.name}
    with tempfile.TemporaryDirectory(prefix="build-time-") as scratch:
        for backend in args.backends.split(","):
            first: dict[str, Any] | None = None
            for engine in args.engines.split(","):
                figures = build_once(args, backend, engine, Path(scratch))
                files = figures.pop("files")
                if first is None:
                    first = {"engine": engine, "files": files}
                else:
                    figures[f"same_bundle_as_{first['engine']}"] = files == first["files"]
                results[f"{backend}/{engine}"] = figures
                print(f"{backend:10s} {engine:6s} {json.dumps(figures, ensure_ascii=False)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
