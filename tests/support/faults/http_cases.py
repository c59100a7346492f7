"""Fault cases of the HTTP layer: oversized heads, slow clients, bad bytes, and a request cut by SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.faults.harness import Case, Lab, Outcome, Server, outcome
from tests.support.wait import poll

HEAD = b"GET /v1/index HTTP/1.1\r\nHost: faults\r\n"
PARTIAL_HEAD = HEAD + b"Accept: appli"
PARTIAL_BODY = b"POST /v1/related HTTP/1.1\r\nHost: faults\r\nContent-Length: 100\r\n\r\n" + b"{" * 10


def shape(answer: bytes) -> tuple[int, str, str]:
    """Status, content type and error code of a raw response ("" where there is none)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
    try:
        code = str(json.loads(body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        code = ""
    return status, headers.get("content-type", "").strip(), code


def refusal(name: str, answer: bytes, status: int, code: str, extra: str = "") -> Outcome:
    """An Outcome expecting `status` in the one JSON error shape with `code`."""
    got, content_type, got_code = shape(answer)
    observed = f"{got} {content_type or '(no content type)'} {got_code}".strip() + extra
    passed = (got, content_type, got_code) == (status, "application/json", code)
    return outcome(name, f"{status} JSON {code}", observed, passed)


def rss_kb(server: Server) -> int:
    """The server process's resident memory (VmRSS) in kB."""
    with Path(f"/proc/{server.process.pid}/status").open(encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def big_header(lab: Lab, name: str, size: int) -> Outcome:
    """One header of `size` bytes: refused with 431 at once, without the server keeping it."""
    server = lab.server
    before = rss_kb(server)
    started = time.monotonic()
    answer = server.raw(HEAD + b"X-Big: " + b"a" * size + b"\r\n\r\n", 60)
    seconds = time.monotonic() - started
    grown = (rss_kb(server) - before) / 1024
    result = refusal(name, answer, 431, "headers_too_large", f" in {seconds:.1f} s, RSS {grown:+.1f} MB")
    return outcome(name, result.expected + ", RSS +<5 MB", result.observed, result.passed and grown < 5)


def header_200mb(lab: Lab) -> Outcome:
    """A 200 MB header (it raised the server's memory by 370 MB before the limit)."""
    return big_header(lab, "header_200mb", 200_000_000)


def header_50mb(lab: Lab) -> Outcome:
    """A 50 MB header (it was answered before the limit)."""
    return big_header(lab, "header_50mb", 50_000_000)


def header_40kb(lab: Lab) -> Outcome:
    """A 40 KB header, past the default 32 KB of request line and headers."""
    answer = lab.server.raw(HEAD + b"X-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    return refusal("header_40kb", answer, 431, "headers_too_large")


def headers_100000(lab: Lab) -> Outcome:
    """100,000 small headers (1 MB of head)."""
    answer = lab.server.raw(HEAD + b"X-A: b\r\n" * 100_000 + b"\r\n")
    return refusal("headers_100000", answer, 431, "headers_too_large")


def url_70kb(lab: Lab) -> Outcome:
    """A 70 KB URL: part of the head, so 431 under the default limit (a plain-text 400 before)."""
    answer = lab.server.raw(b"GET /v1/articles/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: faults\r\n\r\n")
    return refusal("url_70kb", answer, 431, "headers_too_large")


def unparsable_request(lab: Lab) -> Outcome:
    """Bytes that are not HTTP (uvicorn's plain-text 400 before)."""
    answer = lab.server.raw(b"\x16\x03\x01 not http\r\n\r\n")
    return refusal("unparsable_request", answer, 400, "invalid_http")


def probe(server: Server, data: bytes, read_for: float) -> tuple[bytes, float, bool]:
    """Send `data` on a new connection and wait for the server to close it (see `until_closed`)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_for) as sock:
        sock.sendall(data)
        return until_closed(sock, read_for)


def until_closed(sock: socket.socket, read_for: float) -> tuple[bytes, float, bool]:
    """What `sock` receives, the seconds until the server closed it, and whether it did in `read_for`."""
    sock.settimeout(read_for)
    started = time.monotonic()
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        return out, time.monotonic() - started, False
    except ConnectionResetError:
        pass
    return out, time.monotonic() - started, True


def slow_clients(name: str, server: Server, timeout: float) -> Outcome:
    """Nothing sent, a partial head and a partial body, at once: each closed by the read timeout."""
    probes = {"nothing sent": b"", "partial head": PARTIAL_HEAD, "partial body": PARTIAL_BODY}
    with ThreadPoolExecutor(len(probes)) as pool:
        futures = {label: pool.submit(probe, server, data, timeout + 15) for label, data in probes.items()}
    observed, passed = [], True
    for label, future in futures.items():
        answer, seconds, closed = future.result()
        status, content_type, code = shape(answer)
        what = "closed" if not answer else f"{status} {content_type} {code}"
        observed.append(f"{label}: {what} after {seconds:.1f} s" if closed else f"{label}: still open")
        wanted = not answer if label == "nothing sent" else (status, code) == (408, "request_timeout")
        passed = passed and closed and wanted and seconds < timeout + 2
    expected = f"closed (nothing sent) or 408 JSON within {timeout:g} s + 2"
    return outcome(name, expected, "; ".join(observed), passed)


def read_timeout_2s(lab: Lab) -> Outcome:
    """Slow clients under RELATED_READ_TIMEOUT=2 (they stayed open past 70 s before)."""
    server = lab.start(lab.copy(), RELATED_READ_TIMEOUT="2").ready()
    try:
        return slow_clients("read_timeout_2s", server, 2.0)
    finally:
        server.stop()


def read_timeout_default(lab: Lab) -> Outcome:
    """Slow clients under the default read timeout of 30 seconds."""
    return slow_clients("read_timeout_default", lab.server, 30.0)


def shutdown_cuts_partial_body(lab: Lab) -> Outcome:
    """SIGTERM while a body is still arriving: a JSON 503, not uvicorn's plain-text 500 after 10 s."""
    server = lab.start(lab.copy()).ready()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
            sock.sendall(PARTIAL_BODY)
            poll(lambda: server.holds(sock), 10)  # accepted: the head is read as it comes
            server.process.send_signal(signal.SIGTERM)
            answer, seconds, _ = until_closed(sock, 20)
        return refusal("shutdown_cuts_partial_body", answer, 503, "shutting_down", f" in {seconds:.1f} s")
    finally:
        server.stop()


CASES: list[Case] = [
    header_40kb,
    headers_100000,
    url_70kb,
    unparsable_request,
    read_timeout_2s,
    shutdown_cuts_partial_body,
]
SLOW_CASES: list[Case] = [header_200mb, header_50mb, read_timeout_default]
