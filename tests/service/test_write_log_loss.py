"""A lost, emptied, replaced or older write log is refused, never served; services agree through the log.

A log that cannot be written (no permission, a read-only file system) is no lost log: it says so, with
the fix, and never advises accepting a loss.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from embeddings.errors import WriteLogAccessError, WriteLogError, WriteLogLostError
from embeddings.live.binding import open_bound, published_stamp, read_binding
from embeddings.live.postgres_log import SCHEMA
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.pg_cluster import Cluster

KEY = "loss-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
STORY = {"title": "harbour strike dockers walk out", "body": "harbour strike dockers harbour strike news"}


def _app(settings: Settings) -> FastAPI:
    return create_app(settings, fake_signals(HashingEncoder()))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fake-encoder bundle of the test corpus; its write log beside it."""
    settings = Settings(
        bundles=tmp_path / "bundles", api_keys=KEY, window_days=None, reload_interval=0.05, min_score=-1
    )
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    return settings


def _write_some(settings: Settings) -> None:
    """Three acknowledged writes: a put, a delete of a bundle article, another put."""
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
        assert client.delete("/v1/articles/a00", headers=AUTH).status_code == 200
        assert client.put("/v1/articles/n2", json=STORY, headers=AUTH).status_code == 200


def _refused(settings: Settings, *words: str) -> None:
    """The service starts but serves nothing: readiness, reads and writes say why, in one line."""
    with TestClient(_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        message = ready.json()["error"]["message"]
        assert all(w in message for w in words), message
        assert "--accept-write-log-loss" in message and "\n" not in message
        assert client.get("/v1/articles/a00").status_code == 503  # the deleted article is not back
        assert client.get("/v1/articles/a01/related").status_code == 503
        assert client.put("/v1/articles/n3", json=STORY, headers=AUTH).status_code == 503


def _log_files(settings: Settings) -> list[Path]:
    return sorted(settings.bundles.glob("writes.sqlite*"))


@pytest.mark.parametrize("damage", ["deleted", "emptied", "elsewhere"])
def test_a_lost_log_is_refused_until_the_loss_is_accepted(
    settings: Settings, tmp_path: Path, damage: str
) -> None:
    _write_some(settings)
    if damage == "deleted":
        for path in _log_files(settings):
            path.unlink()
    elif damage == "emptied":
        settings.resolved_write_log().write_bytes(b"")
    else:
        settings = settings.model_copy(update={"write_log": tmp_path / "other.sqlite"})
    _refused(settings, "writes.sqlite" if damage != "elsewhere" else "other.sqlite")
    _refused(settings)  # refusing changed nothing: still refused on the next start
    accepting = settings.model_copy(update={"accept_write_log_loss": True})
    with TestClient(_app(accepting)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/articles/n1").status_code == 404  # lost, as accepted
        seq = client.put("/v1/articles/n3", json=STORY, headers=AUTH).json()["seq"]
        assert seq > 3  # never a number acknowledged before
    with TestClient(_app(settings)) as client:  # bound to the new log now: no flag needed
        assert client.get("/v1/articles/n3").status_code == 200


def test_a_log_whose_wal_was_lost_is_refused(settings: Settings, tmp_path: Path) -> None:
    log_path = settings.resolved_write_log()
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
        # The main file as it is on disk now, the last writes still in the -wal (as after a kill -9).
        shutil.copy(log_path, tmp_path / "main-file-only")
        assert client.put("/v1/articles/n2", json=STORY, headers=AUTH).status_code == 200
    for path in _log_files(settings):
        path.unlink()
    shutil.copy(tmp_path / "main-file-only", log_path)
    _refused(settings)


def test_an_older_copy_of_the_log_is_refused_then_served_at_the_bundles_point_in_time(
    settings: Settings, tmp_path: Path
) -> None:
    log_path = settings.resolved_write_log()
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
        with sqlite3.connect(log_path) as live, sqlite3.connect(tmp_path / "backup.sqlite") as backup:
            live.backup(backup)  # a backup taken after the first write
        assert client.delete("/v1/articles/a00", headers=AUTH).status_code == 200
        assert client.put("/v1/articles/n2", json=STORY, headers=AUTH).status_code == 200
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())  # folds 3
    for path in _log_files(settings):
        path.unlink()
    shutil.copy(tmp_path / "backup.sqlite", log_path)
    _refused(settings, "ends at write #1", "#3")
    with pytest.raises(WriteLogLostError, match="older copy"):
        build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    accepting = settings.model_copy(update={"accept_write_log_loss": True})
    with TestClient(_app(accepting)) as client:
        # The bundle's state, whole: nothing of the older log is replayed over it.
        assert client.get("/v1/articles/a00").status_code == 404
        assert client.get("/v1/articles/n2").status_code == 200
        assert client.put("/v1/articles/n3", json=STORY, headers=AUTH).json()["seq"] == 4


def test_a_log_removed_under_the_running_service_stops_writes_not_reads(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
        settings.resolved_write_log().write_bytes(b"")  # truncated under the server
        response = client.put("/v1/articles/n2", json=STORY, headers=AUTH)
        assert response.status_code == 503 and "truncated" in response.json()["error"]["message"]
        assert client.delete("/v1/articles/a01", headers=AUTH).status_code == 503
        assert client.get("/readyz").status_code == 503
        assert client.get("/v1/articles/n1").status_code == 200  # reads go on from memory
        assert client.get("/v1/articles/a01").status_code == 200
    with TestClient(_app(settings)) as client:
        # Closing checkpointed the -wal into the emptied file: every page written since the log was made
        # was in the -wal (the file held only the header written when it turned to WAL), so the log is
        # whole again, with n1 (n2 was refused): served as it is.
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/articles/n1").status_code == 200
        assert client.get("/v1/articles/n2").status_code == 404


def test_the_binding_follows_every_acknowledged_write(settings: Settings) -> None:
    _write_some(settings)
    binding = read_binding(settings.bundles)
    assert binding is not None and binding.last_seq == 3


def test_without_its_binding_the_published_bundle_still_tells_the_log(
    settings: Settings, tmp_path: Path
) -> None:
    _write_some(settings)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    (settings.bundles / "write-log.json").unlink()
    for path in _log_files(settings):
        path.unlink()
    _refused(settings, "missing")


def test_two_services_on_one_bundles_directory_agree_through_the_log(settings: Settings) -> None:
    with TestClient(_app(settings)) as one, TestClient(_app(settings)) as other:
        for _ in range(2):  # the other's list is made, then cached
            before = other.get("/v1/articles/a01/related", params={"k": 50}).json()["related"]
        assert not any(r["id"] == "n1" for r in before)
        assert one.put("/v1/articles/n1", json=STORY, headers=AUTH).json()["seq"] == 1
        assert other.get("/v1/articles/n1").status_code == 200  # the next request sees it
        listed = other.get("/v1/articles/a01/related", params={"k": 50}).json()["related"]
        assert any(r["id"] == "n1" for r in listed)
        assert other.delete("/v1/articles/n1", headers=AUTH).json()["seq"] == 2
        assert one.get("/v1/articles/n1").status_code == 404
        gone = one.get("/v1/articles/a01/related", params={"k": 50}).json()["related"]
        assert not any(r["id"] == "n1" for r in gone)
        # A write through one after the other's: applied in the log's order, `existed` as both see it.
        assert one.put("/v1/articles/n2", json=STORY, headers=AUTH).json()["existed"] is False
        assert other.put("/v1/articles/n2", json=STORY, headers=AUTH).json()["existed"] is True


def test_a_log_removed_under_the_service_shows_in_readiness_before_any_write(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
        assert client.get("/readyz").status_code == 200
        for path in _log_files(settings):
            path.unlink()
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "removed" in ready.json()["error"]["message"]


def test_a_binding_that_cannot_be_written_does_not_fail_an_acknowledged_write(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        binding = settings.bundles / "write-log.json"
        binding.unlink()
        binding.mkdir()  # the binding's rename now fails, as on a full disk
        response = client.put("/v1/articles/n1", json=STORY, headers=AUTH)
        assert response.status_code == 200, response.text
        assert client.get("/v1/articles/n1").status_code == 200
        binding.rmdir()


def test_an_unreadable_binding_is_refused_unless_the_loss_is_accepted(settings: Settings) -> None:
    _write_some(settings)
    (settings.bundles / "write-log.json").write_text("{not json", encoding="utf-8")
    _refused(settings, "write-log.json")
    with TestClient(_app(settings.model_copy(update={"accept_write_log_loss": True}))) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/articles/n2").status_code == 200  # the log itself was intact


def test_a_log_path_with_uri_characters_is_reopened(tmp_path: Path, settings: Settings) -> None:
    odd = settings.model_copy(update={"write_log": tmp_path / "a?b#c%41" / "writes.sqlite"})
    with TestClient(_app(odd)) as client:
        assert client.put("/v1/articles/n1", json=STORY, headers=AUTH).status_code == 200
    with TestClient(_app(odd)) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/articles/n1").status_code == 200


def test_a_start_that_fails_leaves_nothing_behind(settings: Settings) -> None:
    log_path = settings.resolved_write_log()
    log_path.write_bytes(b"not a database " * 100)  # no binding yet: opening it fails outright
    with pytest.raises(WriteLogError), TestClient(_app(settings)):
        pass
    log_path.unlink()
    with TestClient(_app(settings)) as client:
        assert client.get("/readyz").status_code == 200


def test_a_postgresql_log_that_went_back_stops_the_writes(settings: Settings, postgresql: Cluster) -> None:
    url = postgresql.new_database()
    settings = settings.model_copy(update={"write_log": url})
    with TestClient(_app(settings)) as client:
        for ident in ("n1", "n2"):
            assert client.put(f"/v1/articles/{ident}", json=STORY, headers=AUTH).status_code == 200
        assert client.get("/readyz").status_code == 200
        with psycopg.connect(url, autocommit=True) as conn:  # a failover to a standby that lagged
            conn.execute(f"DELETE FROM {SCHEMA}.writes WHERE id = 'n2'")
            conn.execute(f"SELECT setval('{SCHEMA}.seq', 1)")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "failover" in ready.json()["error"]["message"]
        assert client.put("/v1/articles/n3", json=STORY, headers=AUTH).status_code == 503  # not #2 again
        assert client.get("/v1/articles/n2").status_code == 200  # reads go on from memory


@contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` bind-mounted read-only over itself; skipped where this process may not mount."""
    bound = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, text=True)
    if bound.returncode:
        pytest.skip(f"cannot bind-mount here (root with CAP_SYS_ADMIN is needed): {bound.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True, capture_output=True)
        yield
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode:
            subprocess.run(["umount", "--lazy", str(path)], check=True, capture_output=True)  # still busy


def test_a_read_only_bundles_directory_is_no_lost_log(settings: Settings) -> None:
    _write_some(settings)
    files = sorted(p.name for p in settings.bundles.iterdir())
    accepting = settings.model_copy(update={"accept_write_log_loss": True})
    with _read_only(settings.bundles):
        for each in (settings, accepting):  # accepting a loss changes nothing: there is none to accept
            with TestClient(_app(each)) as client:
                ready = client.get("/readyz")
                assert ready.status_code == 503
                message = ready.json()["error"]["message"]
                assert "read-only file system" in message and "mount it read-write" in message, message
                assert "accept" not in message and "lost" not in message and "loss" not in message, message
                assert client.put("/v1/articles/n3", json=STORY, headers=AUTH).status_code == 503
        with TestClient(_app(settings)) as client:
            assert client.get("/readyz").status_code == 503
            # Mounted read-write again under the running service: it opens its log at its next check.
            subprocess.run(["mount", "-o", "remount,rw,bind", str(settings.bundles)], check=True)
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, client.get("/readyz").text
                time.sleep(0.05)
            assert client.get("/v1/articles/n2").status_code == 200  # the writes, intact
            assert client.get("/v1/articles/a00").status_code == 404
    assert sorted(p.name for p in settings.bundles.iterdir()) == files  # nothing set aside


def _opened(bundles: Path, accept_loss: bool) -> str:
    """What opening the bound log says: 'opened', or the error's class and message."""
    try:
        open_bound(bundles, bundles / "writes.sqlite", published_stamp(bundles), accept_loss).close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "opened"


def _unprivileged(work: Callable[[], str], bundles: Path) -> str:
    """`work()` where this process's user may not write `bundles`: as `nobody` in a child if root
    (root writes anywhere), else in this process with the write bits of the directory and its files off."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in (bundles, *bundles.iterdir())}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        try:
            return work()
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    nobody = pwd.getpwnam("nobody")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # never returns into pytest
        code = 1
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(write, work().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        said = pipe.read().decode()
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0, said
    return said


@pytest.fixture
def shared_settings() -> Iterator[Settings]:
    """`settings` in a directory every user may enter (pytest's temporary directories are root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="related-access-"))
    root.chmod(0o755)
    settings = Settings(
        bundles=root / "bundles", api_keys=KEY, window_days=None, reload_interval=0.05, min_score=-1
    )
    build_with(settings, write_jsonl(root / "rows.jsonl", corpus_rows()), HashingEncoder())
    try:
        yield settings
    finally:
        shutil.rmtree(root)


def test_a_log_the_service_user_may_not_write_is_no_lost_log(shared_settings: Settings) -> None:
    settings = shared_settings
    _write_some(settings)
    files = sorted(p.name for p in settings.bundles.iterdir())
    for accept_loss in (False, True):  # accepting a loss changes nothing: there is none to accept
        said = _unprivileged(lambda a=accept_loss: _opened(settings.bundles, a), settings.bundles)
        assert said.startswith(f"{WriteLogAccessError.__name__}: "), said
        assert "write access" in said and "writes.sqlite" in said, said
        assert "accept" not in said and "lost" not in said and "loss" not in said, said
    (settings.bundles / "write-log.json").chmod(0)  # the binding unreadable: no loss either
    said = _unprivileged(lambda: _opened(settings.bundles, False), settings.bundles)
    assert said.startswith(f"{WriteLogAccessError.__name__}: ") and "write-log.json" in said, said
    assert "accept" not in said and "lost" not in said and "loss" not in said, said
    (settings.bundles / "write-log.json").chmod(0o644)
    assert sorted(p.name for p in settings.bundles.iterdir()) == files  # nothing set aside
    with TestClient(_app(settings)) as client:  # the service's own user: the writes, intact
        assert client.get("/readyz").status_code == 200
        assert client.get("/v1/articles/n2").status_code == 200
