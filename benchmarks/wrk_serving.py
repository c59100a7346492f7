"""Requests/s and latency of the served routes under wrk, beside the bare ASGI floor, in one run.

    python -m benchmarks.wrk_serving --bundles var/bundles [--workers 1,2] [--seconds 10] [--json F]

Starts a bare ASGI app (fixed bytes) on uvicorn and, for each worker count, a real `related-articles
serve` on a private copy of the bundles; runs `wrk -t1 -cN --latency` against the bare app, `/healthz`,
the related route over every article id (each id in turn, after one warm-up pass), and both with one
client (for p99 related / p99 healthz); and sums the proportional set size (PSS) of the server's
processes. Needs wrk (Debian: apt-get install wrk).

Each server is measured once its processes have gone idle (every worker has loaded its model and
bundle), and its copy is deleted after it. Rendered lists are cached (RELATED_RESPONSE_CACHE, 10,000 by
default): the warm-up renders the first ids only, as many as it reaches (printed), and the measured
pass starts again from the first id, so on a large corpus it is mostly lists made anew. `--hot N`
cycles over the N most recent articles instead (the stories being read on a news site), warmed for
long enough that every worker has rendered them (about 150 new lists a second per worker here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.faults.harness import Lab, Server
from tests.support.net import free_port

BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})
"""
LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i %% #ids + 1
  return wrk.format("GET", "/v1/articles/" .. ids[i] .. "/related?k=4")
end
"""


def _wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rate,
        "requests": requests,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def pss_mb(pid: int) -> float:
    """Proportional set size of `pid` and its children (shared pages counted once in all), in MB."""
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    total = 0
    for p in [pid, *(int(c) for c in done.stdout.split())]:
        text = Path(f"/proc/{p}/smaps_rollup").read_text()
        total += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]
    return total / 1024


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by `pid` and its children (user and system)."""
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    ticks = 0
    for p in [pid, *(int(c) for c in done.stdout.split())]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _settle(pid: int, timeout: float, window: float = 2.0) -> None:
    """Wait until the processes of `pid` use under a tenth of a core over `window` seconds.

    `/readyz` answers once one worker is ready; the others may still be loading their model and bundle.
    """
    deadline = time.monotonic() + timeout
    last = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = _cpu_seconds(pid)
        if now - last < 0.1 * window:
            return
        last = now


def _ready(server: Server, timeout: float) -> None:
    """Wait for 200 on `/readyz`; raise with the log's tail at once if the server logs an error."""
    deadline = time.monotonic() + timeout
    while server.wait(200, 5) != 200:
        ended = server.process.poll() is not None
        if ended or '"level": "error"' in server.log_text() or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not get ready:\n{server.log_text()[-3000:]}")


def _ids(bundles: Path, hot: int | None = None) -> list[str]:
    store = (bundles / "current").resolve() / "articles.sqlite"
    with sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True) as db:
        if hot is None:
            return [row[0] for row in db.execute("SELECT id FROM articles ORDER BY rowid")]
        newest = "SELECT id FROM articles ORDER BY published_ts IS NULL, published_ts DESC, rowid LIMIT ?"
        return [row[0] for row in db.execute(newest, (hot,))]


def ratio(results: dict[str, dict[str, float]], route: str, tag: str, base: str, field: str) -> float:
    """`field` of `route` at `tag` over the same at `base`."""
    return results[f"{route}, {tag}"][field] / results[f"{route}, {base}"][field]


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundles", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, help="RELATED_CACHE_DIR of the server")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", default="1", help="comma-separated worker counts, e.g. 1,2")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--hot", type=int, help="cycle over the N most recent articles only (warmed)")
    parser.add_argument(
        "--start-timeout", type=float, default=900, help="seconds a server may take to load (1M: minutes)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    from embeddings.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="wrk-"))
    lab = Lab(args.bundles, args.cache_dir or Settings().cache_dir, root)
    extra = dict(e.split("=", 1) for e in args.env)
    ids_file = root / "ids.txt"
    ids = _ids(args.bundles, args.hot)
    ids_file.write_text("\n".join(ids) + "\n", encoding="utf-8")
    script = root / "related.lua"
    script.write_text(LUA % ids_file, encoding="utf-8")
    (root / "bare.py").write_text(BARE_APP, encoding="utf-8")
    bare_port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(bare_port), "--log-level", "warning"],
        cwd=root,
    )
    results: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    c = args.connections
    try:
        time.sleep(1)
        results["bare ASGI"] = _wrk(f"http://127.0.0.1:{bare_port}/", args.seconds, c)
        for workers in [int(w) for w in args.workers.split(",")]:
            env = {"RELATED_LOG_LEVEL": "warning", **extra, "RELATED_WORKERS": str(workers)}
            started = time.monotonic()
            copy = lab.copy()
            copied = time.monotonic()
            server: Server = lab.start(copy, **env)
            _ready(server, args.start_timeout)
            ready = time.monotonic()
            time.sleep(2 * workers)
            _settle(server.process.pid, args.start_timeout)  # every worker loads its model and bundle
            idle = time.monotonic()
            tag = f"{workers} worker{'s' if workers > 1 else ''}"
            warming = max(2, args.seconds // 2)
            if args.hot:  # every worker renders every hot list, at some 150 new lists a second each
                warming = max(warming, round(2 * workers * len(ids) / 150))
            warm = _wrk(server.url, warming, c, script)
            notes.append(
                f"{tag}: bundles copied in {copied - started:.0f} s; ready {ready - copied:.0f} s and idle "
                f"{idle - copied:.0f} s after start; warm-up {warm['requests']:.0f} requests over "
                f"{len(ids)} ids"
            )
            results[f"/healthz, {tag}"] = _wrk(f"{server.url}/healthz", args.seconds, c)
            results[f"related, {tag}"] = _wrk(server.url, args.seconds, c, script)
            results[f"/healthz, {tag}, 1 client"] = _wrk(f"{server.url}/healthz", args.seconds, 1)
            results[f"related, {tag}, 1 client"] = _wrk(server.url, args.seconds, 1, script)
            results[f"memory, {tag}"] = {"pss_mb": pss_mb(server.process.pid)}
            server.stop()
            shutil.rmtree(copy, ignore_errors=True)  # a 1M bundle's copy takes gigabytes
    finally:
        bare.terminate()
        lab.close()
    print(f"{'route':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        if "pss_mb" in r:
            print(f"{name:30} PSS {r['pss_mb']:.0f} MB")
            continue
        print(f"{name:30} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:8d}")
    for workers in [int(w) for w in args.workers.split(",")]:
        tag = f"{workers} worker{'s' if workers > 1 else ''}"
        related, health = results[f"related, {tag}"], results[f"/healthz, {tag}"]
        one, base = results[f"related, {tag}, 1 client"], results[f"/healthz, {tag}, 1 client"]
        print(
            f"{tag}: related / /healthz {related['rps'] / health['rps']:.2f}, related / bare ASGI "
            f"{related['rps'] / results['bare ASGI']['rps']:.3f}, p99 related / p99 /healthz (1 client) "
            f"{one['p99_ms'] / base['p99_ms']:.2f}"
        )
    counts = [int(w) for w in args.workers.split(",")]
    first = f"{counts[0]} worker{'s' if counts[0] > 1 else ''}"
    for workers in counts[1:]:
        tag = f"{workers} workers"
        print(
            f"{tag} / {first}: related req/s {ratio(results, 'related', tag, first, 'rps'):.2f}, /healthz "
            f"req/s {ratio(results, '/healthz', tag, first, 'rps'):.2f}, "
            f"PSS {ratio(results, 'memory', tag, first, 'pss_mb'):.2f}"
        )
    for note in notes:
        print(note)
    if args.json:
        args.json.write_text(json.dumps({**results, "notes": notes}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
