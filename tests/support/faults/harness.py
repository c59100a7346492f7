"""Real `related-articles serve` processes on private copies of a bundles directory, and raw HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.net import free_port
from tests.support.pg_cluster import Cluster
from tests.support.wait import poll

KEY = "fault-suite-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass(frozen=True)
class Outcome:
    """One case's line of the table."""

    case: str
    expected: str
    observed: str
    passed: bool


class Server:
    """`related-articles serve` in its own process, on `bundles`, with the suite's API key."""

    def __init__(self, bundles: Path, cache_dir: Path, log: Path, **env: str) -> None:
        self.bundles = bundles
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        settings = {
            "RELATED_BUNDLES": str(bundles),
            "RELATED_CACHE_DIR": str(cache_dir),
            "RELATED_API_KEYS": KEY,
            "RELATED_PORT": str(self.port),
            "RELATED_LOG_LEVEL": "warning",
            "RELATED_WORKERS": "1",  # one process unless a case asks for more
            "RELATED_RELOAD_INTERVAL": "0.2",
        }
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env={**os.environ, **settings, **env},
            stdout=self._log,
            stderr=self._log,
        )
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def wait(self, status: int = 200, seconds: float = 180) -> int:
        """Wait until `/readyz` answers `status` (or the process ends); return the last status, 0 if none."""
        last = [0]

        def answered() -> bool:
            with contextlib.suppress(httpx.TransportError):
                last[0] = self.client.get("/readyz").status_code
            return last[0] == status or self.process.poll() is not None

        poll(answered, seconds)
        return last[0]

    def answer(self, seconds: float = 180) -> int:
        """The first status `/readyz` answers once the server listens (its start is over), 0 if it ended."""
        answers: list[int] = []

        def answered() -> bool:
            try:
                answers.append(self.client.get("/readyz").status_code)
            except httpx.TransportError:  # not listening yet, or ended
                return self.process.poll() is not None
            return True

        poll(answered, seconds)
        return answers[0] if answers else 0

    def ready(self) -> Server:
        """Wait for 200 on `/readyz`, or raise with the log's tail."""
        if self.wait(200) != 200:
            raise RuntimeError(f"the server did not get ready:\n{self.log_text()[-3000:]}")
        return self

    def holds(self, sock: socket.socket) -> bool:
        """Whether the server (its process or a worker) has accepted the connection of `sock`."""
        port = sock.getsockname()[1]
        processes = [psutil.Process(self.process.pid)]
        with contextlib.suppress(psutil.Error):
            processes += processes[0].children(recursive=True)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                if any(c.raddr and c.raddr.port == port for c in process.net_connections("tcp")):
                    return True
        return False

    def log_text(self) -> str:
        """What the process wrote so far."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def raw(self, data: bytes, read_for: float = 5.0) -> bytes:
        """Send `data` on a new connection and return what comes back before it closes or `read_for` ends."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=read_for) as sock:
            with contextlib.suppress(OSError):  # the server may close before taking it all: read its answer
                sock.sendall(data)
            return read_all(sock, read_for)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """End the process with `sig` (SIGKILL: no shutdown at all) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.client.close()
        self._log.close()
        return int(code)


def read_all(sock: socket.socket, seconds: float) -> bytes:
    """Bytes from `sock` until it closes or `seconds` pass."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    out = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        out += chunk
    return out


def status_of(response: bytes) -> int:
    """The status code of a raw HTTP response (0 when there is none)."""
    parts = response.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else 0


class Lab:
    """Private copies of a bundles directory and the servers started on them; `close` ends them all."""

    def __init__(
        self, bundles: Path, cache_dir: Path, root: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.source = bundles
        self.env = env or {}
        self.cache_dir = cache_dir
        self.root = root or Path(tempfile.mkdtemp(prefix="faults-"))
        self._servers: list[Server] = []
        self._shared: Server | None = None
        self._copies = 0
        self.cluster: Cluster | None = None  # made by the first case that needs one, unless given
        self._own_cluster = False

    def copy(self) -> Path:
        """A fresh copy of the bundles, without any write log."""
        self._copies += 1
        target = self.root / f"bundles-{self._copies}"
        ignore = shutil.ignore_patterns("writes.sqlite*", "*.lock", "write-log.json")
        shutil.copytree(self.source, target, symlinks=True, ignore=ignore)
        return target

    def start(self, bundles: Path, **env: str) -> Server:
        """A new server on `bundles` (not waited for)."""
        log = self.root / f"server-{len(self._servers)}.log"
        server = Server(bundles, self.cache_dir, log, **{**self.env, **env})
        self._servers.append(server)
        return server

    @property
    def server(self) -> Server:
        """One ready server shared by the cases that do not restart it (started on first use)."""
        if self._shared is None or self._shared.process.poll() is not None:
            self._shared = self.start(self.copy()).ready()
        return self._shared

    def postgresql(self) -> Cluster:
        """The lab's PostgreSQL cluster (started on first use unless one was given)."""
        if self.cluster is None:
            self.cluster, self._own_cluster = Cluster().start(), True
        return self.cluster

    def close(self) -> None:
        """Kill every server still running, close what each one holds, stop a cluster of its own."""
        for server in self._servers:
            server.stop(signal.SIGKILL)  # those that ended by themselves still hold their log open
        if self._own_cluster and self.cluster is not None:
            self.cluster.stop()


Case = Callable[[Lab], Outcome]


def outcome(case: str, expected: str, observed: Any, passed: bool) -> Outcome:
    """An Outcome with `observed` as text."""
    return Outcome(case, expected, str(observed), bool(passed))
