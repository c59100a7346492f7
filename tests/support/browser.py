"""Pages in a real browser: Debian's chromium driven by its chromedriver, the service in a thread, a site.

Shared by the browser tests and `make screenshots`. Nothing is downloaded: the browser and its driver
are Debian's (`apt-get install chromium chromium-driver`).
"""

from __future__ import annotations

import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.net import free_port
from tests.support.wait import wait_for

KEY = "browser-key"  # the write key of the browser tests' service
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

# An Arabic follow-up of ar-0006's story, with a picture: written over the sample bundle.
FOLLOW_UP = {
    "title": "النيابة تستجوب سائق موكب محافظ وادي صفا بعد محاولة الاغتيال",
    "body": "استمعت النيابة العامة اليوم إلى إفادة سائق موكب محافظ وادي صفا الذي تعرض لإطلاق نار على طريق "
    "السدر، في إطار التحقيق في محاولة الاغتيال.",
    "lang": "ar",
    "published_at": "2026-03-04T10:00:00+03:00",
    "section": "politics",
    "url": "https://almadina.example.com/politics/ar-live-1",
}


def unavailable() -> str | None:
    """Why the browser cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package})"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


def chrome(width: int = 1200, height: int = 900) -> Any:
    """A headless chromium (a selenium WebDriver), with no profile kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    # The driver's path is given: selenium asks no manager to find, or download, one.
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve the ASGI `app` (its lifespan run) with uvicorn in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="browser-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 300, "the service to start")
    if not server.started:
        raise RuntimeError("the service did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def site(pages: dict[str, tuple[str, bytes]]) -> Iterator[int]:
    """A static site on a free port of 127.0.0.1: path -> (content type, body); yield the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = pages.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            kind, body = found
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="browser-site", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def copy_published(bundles: Path, into: Path) -> Path:
    """A bundles directory at `into` holding only the bundle `bundles` publishes (no log, no cache)."""
    link = bundles / "current"
    target = link.readlink()
    into.mkdir(parents=True)
    shutil.copytree(bundles / target, into / target)
    (into / "current").symlink_to(target)
    return into


def picture(width: int = 320, height: int = 180) -> bytes:
    """A PNG made here: a blue-to-teal gradient with a band, standing for an article's photograph."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # no filter
        for x in range(width):
            band = 40 if abs(y - height * 0.62) < height * 0.08 else 0
            rows += bytes((20 + band, 60 + x * 120 // width + band, 120 + y * 100 // height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + (chunk(b"IEND", b""))
    )
