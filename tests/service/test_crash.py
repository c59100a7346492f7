"""Crash test: acknowledged writes survive `kill -9` of the real server (real model, real process)."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.wait import wait_for

KEY = "crash-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}

pytestmark = pytest.mark.server  # a `related-articles serve` process, killed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`related-articles serve` in its own process."""

    def __init__(self, bundles: Path, model_cache: Path, log: Path) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "RELATED_BUNDLES": str(bundles),
            "RELATED_CACHE_DIR": str(model_cache),
            "RELATED_API_KEYS": KEY,
            "RELATED_PORT": str(self.port),
            "RELATED_LOG_LEVEL": "warning",
            "RELATED_WORKERS": "1",
            "RELATED_BACKEND": "torch",  # the sample bundle of the session is built with torch
        }
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"], env=env, stdout=self._log, stderr=self._log
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(base_url=self.url, timeout=60)
        wait_for(lambda: self.ready(log), 180, "the server to get ready")

    def ready(self, log: Path) -> bool:
        """Whether `/readyz` answers 200; an AssertionError with the log's tail if the process ended."""
        assert self.process.poll() is None, log.read_text(errors="replace")[-2000:]
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no goodbye."""
        self.process.send_signal(signal.SIGKILL)
        self.close()

    def close(self) -> int:
        """Wait for the process to end (30 s at most), close the client and the log; the exit status."""
        status = self.process.wait(timeout=30)
        self.client.close()
        self._log.close()
        return status


@pytest.fixture
def bundles(tmp_path: Path, sample_bundles: Path) -> Path:
    """A private copy of the sample bundles (the write log goes beside them)."""
    copy = tmp_path / "bundles"
    shutil.copytree(sample_bundles, copy, symlinks=True, ignore=shutil.ignore_patterns("writes.sqlite*"))
    return copy


@pytest.fixture
def start(bundles: Path, model_cache: Path, tmp_path: Path) -> Iterator[Any]:
    """Start servers on the copy; any left running are killed at the end."""
    started: list[Server] = []

    def make() -> Server:
        server = Server(bundles, model_cache, tmp_path / "server.log")
        started.append(server)
        return server

    yield make
    for server in started:
        if server.process.poll() is None:
            server.kill()
        elif not server.client.is_closed:
            server.close()


def _lists(server: Server, ids: list[str]) -> dict[str, list[str]]:
    out = {}
    for ident in ids:
        # The streamed writes (German) stay out, so lists before and after the crash compare.
        response = server.client.get(f"/v1/articles/{ident}/related", params={"k": 4, "lang": "ar,en,fr"})
        assert response.status_code == 200, response.text
        out[ident] = [r["id"] for r in response.json()["related"]]
    return out


def test_acknowledged_writes_survive_kill_9(start: Any, sample_rows: list[dict[str, Any]]) -> None:
    server = start()
    moved = [r for r in sample_rows if r["lang"] == "ar" and not r.get("copy_of")][:12]
    fields = ("title", "body", "lang", "published_at", "section", "keywords", "source", "url")

    acknowledged: list[str] = []
    for row in moved:  # each article leaves under its old id and comes back under a new one
        body = {f: row[f] for f in fields if row.get(f) is not None}
        assert server.client.delete(f"/v1/articles/{row['id']}", headers=AUTH).status_code == 200
        response = server.client.put(f"/v1/articles/live-{row['id']}", json=body, headers=AUTH)
        assert response.status_code == 200, response.text
        acknowledged.append(f"live-{row['id']}")
    batch = {"upsert": [{"id": "live-batch-1", "title": "نص جديد عن محاولة الاغتيال", "lang": "ar"}]}
    assert server.client.post("/v1/articles/batch", json=batch, headers=AUTH).status_code == 200
    acknowledged.append("live-batch-1")
    stories = {m["story"] for m in moved}
    moved_ids = {m["id"] for m in moved}
    queries = [r["id"] for r in sample_rows if r["story"] in stories and r["id"] not in moved_ids]
    queries += acknowledged
    before = _lists(server, queries)
    listed = {i for hits in before.values() for i in hits}
    assert len(listed & set(acknowledged)) >= len(moved) // 2  # the new ids are in the lists

    # A stream of writes, killed at an arbitrary moment: what was acknowledged must come back.
    streamed: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        i = 0
        while not stop.is_set():
            ident = f"stream-{i}"
            try:
                response = server.client.put(
                    f"/v1/articles/{ident}", json={"title": f"Meldung {i}", "lang": "de"}, headers=AUTH
                )
            except httpx.TransportError:
                return  # the server died under this request: it was never acknowledged
            if response.status_code == 200:
                streamed.append(ident)
            i += 1

    writer = threading.Thread(target=stream)
    writer.start()
    wait_for(lambda: len(streamed) >= 20, 60, "streamed writes acknowledged")
    server.kill()
    stop.set()
    writer.join()
    assert streamed

    server = start()
    for row in moved:
        assert server.client.get(f"/v1/articles/{row['id']}").status_code == 404
        again = server.client.get(f"/v1/articles/live-{row['id']}").json()
        assert (again["title"], again["body"]) == (row["title"], row["body"])
    print(f"crash test: {len(acknowledged)} + {len(streamed)} acknowledged puts, {len(moved)} deletes")
    missing = [
        i for i in acknowledged + streamed if server.client.get(f"/v1/articles/{i}").status_code != 200
    ]
    assert not missing
    # Replay uses the logged vectors: the lists are exactly those served before the crash.
    assert _lists(server, queries) == before


def test_a_server_shutting_down_is_not_ready(start: Any) -> None:
    """From SIGTERM on, /readyz is never 200, even before the server stops accepting (issue 21)."""
    server = start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    answers: list[int | str] = []
    try:
        connection.request("GET", "/readyz")
        first = connection.getresponse()
        first.read()
        assert first.status == 200  # one keep-alive connection, open before the signal
        server.process.send_signal(signal.SIGTERM)
        for _ in range(20):  # on the open connection, then on new ones, until the server is gone
            try:
                connection.request("GET", "/readyz")
                answer = connection.getresponse()
                body = answer.read()
                answers.append(answer.status)
                if answer.status == 503:
                    assert b"shutting down" in body
            except (OSError, http.client.HTTPException) as exc:
                answers.append(type(exc).__name__)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    finally:
        connection.close()
    assert 200 not in answers, answers
    assert 503 in answers or answers[0] != "ConnectionRefusedError", answers  # it was answering
    # uvicorn ends by raising the signal it caught once its handler is restored: the default, exit.
    assert server.close() == -signal.SIGTERM
    print(f"after SIGTERM: {answers}")
