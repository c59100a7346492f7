"""Fault cases: the write log lost, emptied, replaced or restored older; two writers; damaged bundles."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support.faults.harness import AUTH, Case, Lab, Outcome, Server, outcome
from tests.support.wait import poll

STORY = {"title": "تحقيق جديد في محاولة الاغتيال على طريق السدر", "lang": "ar"}
GONE = "ar-0001"  # deleted by an acknowledged write: it must never come back


def _written(lab: Lab) -> tuple[Path, Server]:
    """A server on a fresh copy that acknowledged a put, the delete of GONE and another put."""
    bundles = lab.copy()
    server = lab.start(bundles).ready()
    assert server.client.put("/v1/articles/fault-1", json=STORY, headers=AUTH).status_code == 200
    assert server.client.delete(f"/v1/articles/{GONE}", headers=AUTH).status_code == 200
    assert server.client.put("/v1/articles/fault-2", json=STORY, headers=AUTH).status_code == 200
    return bundles, server


def _restart(lab: Lab, bundles: Path, **env: str) -> tuple[int, str, int]:
    """Start a server on `bundles`: its /readyz status and message, and the status of GET GONE."""
    server = lab.start(bundles, **env)
    status = server.answer()
    body = server.client.get("/readyz").json() if status else {}
    message = body.get("error", {}).get("message", "")
    gone = server.client.get(f"/v1/articles/{GONE}").status_code
    server.stop()
    return status, message, gone


def _refusal(lab: Lab, case: str, bundles: Path, damage: str) -> Outcome:
    status, message, gone = _restart(lab, bundles)
    named = "--accept-write-log-loss" in message and str(bundles) not in message
    observed = f"{status}, deleted article {gone}: {message[:110]}"
    return outcome(
        case,
        f"503 not ready ({damage}), the deleted article not served",
        observed,
        status == 503 and gone == 503 and named,
    )


def _log(bundles: Path) -> Path:
    return bundles / "writes.sqlite"


def _remove_log(bundles: Path) -> None:
    for path in bundles.glob("writes.sqlite*"):
        path.unlink()


def log_deleted(lab: Lab) -> Outcome:
    """writes.sqlite deleted while the service is stopped."""
    bundles, server = _written(lab)
    server.stop()
    _remove_log(bundles)
    return _refusal(lab, "log_deleted", bundles, "missing")


def log_emptied(lab: Lab) -> Outcome:
    """writes.sqlite truncated to 0 bytes while the service is stopped."""
    bundles, server = _written(lab)
    server.stop()
    _log(bundles).write_bytes(b"")
    return _refusal(lab, "log_emptied", bundles, "emptied")


def wal_lost_after_kill_9(lab: Lab) -> Outcome:
    """kill -9, then the -wal file removed: the writes only it held are gone."""
    bundles, server = _written(lab)
    server.stop(signal.SIGKILL)
    (bundles / "writes.sqlite-wal").unlink()
    return _refusal(lab, "wal_lost_after_kill_9", bundles, "shorter")


def log_elsewhere(lab: Lab) -> Outcome:
    """RELATED_WRITE_LOG pointed at another (new) file on restart."""
    bundles, server = _written(lab)
    server.stop()
    status, message, gone = _restart(lab, bundles, RELATED_WRITE_LOG=str(lab.root / "elsewhere.sqlite"))
    ok = status == 503 and gone == 503 and "elsewhere.sqlite is missing" in message
    return outcome("log_elsewhere", "503 not ready (no new log started)", f"{status}: {message[:100]}", ok)


def older_copy_restored(lab: Lab) -> Outcome:
    """A backup of writes.sqlite taken after the first write, restored after a build folded all three."""
    bundles = lab.copy()
    server = lab.start(bundles).ready()
    server.client.put("/v1/articles/fault-1", json=STORY, headers=AUTH)
    with sqlite3.connect(_log(bundles)) as live, sqlite3.connect(lab.root / "backup.sqlite") as backup:
        live.backup(backup)
    server.client.delete(f"/v1/articles/{GONE}", headers=AUTH)
    server.client.put("/v1/articles/fault-2", json=STORY, headers=AUTH)
    server.stop()
    build = _build(lab, bundles)
    _remove_log(bundles)
    shutil.copy(lab.root / "backup.sqlite", _log(bundles))
    status, message, gone = _restart(lab, bundles)
    refused_build = _build(lab, bundles)
    ok = build[0] == 0 and status == 503 and gone == 503 and refused_build[0] == 1
    observed = f"serve {status} ({message[:60]}), next build exit {refused_build[0]}: {refused_build[1][:70]}"
    return outcome("older_copy_restored", "503 not ready, build refuses (exit 1, one line)", observed, ok)


def loss_accepted(lab: Lab) -> Outcome:
    """--accept-write-log-loss after the log was deleted: served, new numbers after the old ones."""
    bundles, server = _written(lab)
    server.stop()
    _remove_log(bundles)
    accepting = lab.start(bundles, RELATED_ACCEPT_WRITE_LOG_LOSS="true").ready()
    seq = accepting.client.put("/v1/articles/fault-3", json=STORY, headers=AUTH).json().get("seq")
    accepting.stop()
    again = lab.start(bundles).ready()  # bound to the new log: no flag needed any more
    kept = again.client.get("/v1/articles/fault-3").status_code
    again.stop()
    ok = isinstance(seq, int) and seq > 3 and kept == 200
    return outcome(
        "loss_accepted", "ready; new write #4 or later; kept", f"write #{seq}, after restart {kept}", ok
    )


def log_truncated_under_server(lab: Lab) -> Outcome:
    """writes.sqlite truncated while the service runs: no write acknowledged after, readiness drops."""
    bundles, server = _written(lab)
    _log(bundles).write_bytes(b"")
    write = server.client.put("/v1/articles/fault-4", json=STORY, headers=AUTH).status_code
    ready = server.client.get("/readyz").status_code
    read = server.client.get("/v1/articles/fault-1").status_code
    server.stop()
    ok = write == 503 and ready == 503 and read == 200
    return outcome(
        "log_truncated_under_server",
        "write 503, /readyz 503, reads 200",
        f"write {write}, /readyz {ready}, read {read}",
        ok,
    )


def two_servers_agree(lab: Lab) -> Outcome:
    """Two `serve` processes on one bundles directory: each sees the other's writes at once."""
    bundles = lab.copy()
    one = lab.start(bundles).ready()
    other = lab.start(bundles).ready()
    lags = []
    for i in range(20):
        writer, reader = (one, other) if i % 2 else (other, one)
        assert writer.client.put(f"/v1/articles/agree-{i}", json=STORY, headers=AUTH).status_code == 200
        lags.append(reader.client.get(f"/v1/articles/agree-{i}").status_code)
    deleted = one.client.delete("/v1/articles/agree-0", headers=AUTH).status_code
    gone = other.client.get("/v1/articles/agree-0").status_code
    one.stop()
    other.stop()
    seen = sum(status == 200 for status in lags)
    ok = seen == 20 and deleted == 200 and gone == 404
    return outcome(
        "two_servers_agree",
        "20 of 20 writes seen by the other at once; delete gone",
        f"{seen} of 20; delete then {gone}",
        ok,
    )


def worker_killed(lab: Lab) -> Outcome:
    """RELATED_WORKERS=2; one worker killed with SIGKILL between acknowledged writes."""
    bundles = lab.copy()
    server = lab.start(bundles, RELATED_WORKERS="2").ready()
    acknowledged = []
    for i in range(10):
        if server.client.put(f"/v1/articles/wk-{i}", json=STORY, headers=AUTH).status_code == 200:
            acknowledged.append(f"wk-{i}")
    children = _children(server.process.pid)
    if children:
        os.kill(children[0], signal.SIGKILL)
    failed = 0
    for i in range(10, 40):
        try:
            status = server.client.put(f"/v1/articles/wk-{i}", json=STORY, headers=AUTH).status_code
        except Exception:  # a request on the killed worker's connection: never acknowledged
            status = 0
        if status == 200:
            acknowledged.append(f"wk-{i}")
        else:
            failed += 1
    # Each read may land on either worker (the restarted one included): three reads of each id.
    reads = [server.client.get(f"/v1/articles/{i}").status_code for i in acknowledged for _ in range(3)]
    missing = [status for status in reads if status != 200]
    poll(lambda: len(_children(server.process.pid)) >= len(children), 30)  # the killed worker restarts
    after = len(_children(server.process.pid))
    server.stop()
    ok = bool(children) and after == len(children) and not missing and failed <= 1
    observed = (
        f"{len(children)} workers, one killed, {after} after; {len(acknowledged)} acknowledged, "
        f"{len(missing)} reads missing one, {failed} cut"
    )
    return outcome(
        "worker_killed", "no acknowledged write missing from any worker; at most 1 request cut", observed, ok
    )


def parent_killed(lab: Lab) -> Outcome:
    """kill -9 of the `serve` parent of two workers: the workers end too (no orphan keeps the port)."""
    server = lab.start(lab.copy(), RELATED_WORKERS="2").ready()
    children = _children(server.process.pid)
    server.stop(signal.SIGKILL)
    poll(lambda: not any(Path(f"/proc/{p}").exists() for p in children), 20)
    left = [p for p in children if Path(f"/proc/{p}").exists()]
    for p in left:
        os.kill(p, signal.SIGKILL)
    ok = len(children) == 2 and not left
    return outcome("parent_killed", "both workers end", f"{len(children)} workers, {len(left)} left", ok)


def _children(pid: int) -> list[int]:
    """The worker processes of a `serve` (its children that run Python)."""
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    pids = [int(p) for p in done.stdout.split()]
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def refused_bundle_mended(lab: Lab) -> Outcome:
    """A published bundle with a damaged file, mended in place while the service runs."""
    bundles = lab.copy()
    current = (bundles / "current").resolve()
    broken = current.parent / "99999999T000000Z-mended"
    shutil.copytree(current, broken)
    index = broken / "index.faiss"
    good = index.read_bytes()
    index.write_bytes(b"garbage")
    (bundles / ".current-new").symlink_to(broken.relative_to(bundles))
    (bundles / ".current-new").replace(bundles / "current")
    server = lab.start(bundles)
    before = server.answer()
    message = server.client.get("/readyz").text
    index.write_bytes(good)
    after = server.wait(200, seconds=30)
    error = server.client.get("/readyz").json().get("last_error")
    server.stop()
    private = str(bundles) in message
    ok = before == 503 and after == 200 and error is None and not private
    observed = f"{before} then {after}, last_error {error}, paths shown: {private}"
    return outcome(
        "refused_bundle_mended", "503 then 200 once mended, no stale error, no paths", observed, ok
    )


def store_damaged_in_place(lab: Lab) -> Outcome:
    """The live bundle's articles.sqlite overwritten while the service runs."""
    bundles = lab.copy()
    server = lab.start(bundles).ready()
    store = (bundles / "current").resolve() / "articles.sqlite"
    store.write_bytes(b"\x5a" * store.stat().st_size)
    read = server.client.get("/v1/articles/ar-0002")
    ready = server.client.get("/readyz").status_code
    server.stop()
    shape = read.headers.get("content-type", "")
    ok = read.status_code == 503 and shape == "application/json" and ready == 503
    return outcome(
        "store_damaged_in_place", "503 JSON, /readyz 503", f"{read.status_code} {shape}, /readyz {ready}", ok
    )


def no_machine_paths(lab: Lab) -> Outcome:
    """Public answers (/v1/index, /readyz, a 404) name no directory of the machine; a write key sees it."""
    server = lab.server
    root = str(server.bundles.resolve())
    public = [server.client.get(p).text for p in ("/v1/index", "/readyz", "/v1/articles/none")]
    operator = server.client.get("/v1/index", headers=AUTH).json().get("path", "")
    shown = sum(root in text or str(server.bundles) in text for text in public)
    ok = shown == 0 and operator.startswith(root)
    observed = f"{shown} of 3 public answers show it; with the key: {'full path' if ok else operator}"
    return outcome("no_machine_paths", "0 of 3 public answers; full path with the key", observed, ok)


def _build(lab: Lab, bundles: Path, **env: str) -> tuple[int, str]:
    """`related-articles build` of the sample corpus into `bundles`: exit code and last stderr line."""
    settings = {"RELATED_BUNDLES": str(bundles), "RELATED_CACHE_DIR": str(lab.cache_dir), **lab.env, **env}
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "build", "--no-progress"],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = done.stderr.strip().splitlines()
    return done.returncode, (lines[-1] if lines else "")


def build_with_damaged_cache(lab: Lab) -> Outcome:
    """A build whose embedding cache file is garbage."""
    bundles = lab.copy()
    cache = lab.root / "damaged-cache.sqlite"
    cache.write_bytes(b"not a database " * 1000)
    started = time.monotonic()
    code, last = _build(lab, bundles, RELATED_EMBEDDING_CACHE=str(cache))
    ok = code == 1 and last.startswith("related-articles build: error: embedding cache")
    return outcome(
        "build_with_damaged_cache",
        "exit 1, one line",
        f"exit {code} in {time.monotonic() - started:.0f}s: {last[:100]}",
        ok,
    )


def build_on_full_disk(lab: Lab) -> Outcome:
    """A build into a bundles directory on a 2 MB tmpfs (needs root), its embedding cache there too."""
    small = lab.root / "full-disk"
    small.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)]).returncode:
        return outcome("build_on_full_disk", "exit 1, one line", "skipped: cannot mount a tmpfs", True)
    try:
        code, last = _build(lab, small / "bundles")
    finally:
        subprocess.run(["umount", str(small)], check=False)
    error = last.startswith("related-articles build: error:")
    ok = code == 1 and error and ("full" in last or "free" in last)
    return outcome("build_on_full_disk", "exit 1, one line", f"exit {code}: {last[:110]}", ok)


CASES: list[Case] = [
    log_deleted,
    log_emptied,
    wal_lost_after_kill_9,
    log_elsewhere,
    loss_accepted,
    log_truncated_under_server,
    two_servers_agree,
    worker_killed,
    parent_killed,
    refused_bundle_mended,
    store_damaged_in_place,
    no_machine_paths,
]
SLOW_CASES: list[Case] = [older_copy_restored, build_with_damaged_cache, build_on_full_disk]
