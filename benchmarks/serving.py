"""Run `related-articles serve` in a child process for a benchmark, and tell when it is ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(bundles: Path, env: dict[str, str], timeout: float = 180.0) -> Iterator[str]:
    """Serve `bundles` with extra environment `env`; yield the base URL once /readyz says ready."""
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "service.cli", "serve", "--bundles", str(bundles), "--port", str(port)]
    server = subprocess.Popen([*cmd, "--log-level", "warning"], env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=base, timeout=10.0) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not become ready")
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
