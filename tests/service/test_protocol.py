"""The HTTP protocol's limits over raw sockets: a real uvicorn with the service's protocol, a tiny app."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from embeddings.settings import Settings
from service.metrics import Metrics
from service.middleware import RequestContext
from service.protocol import limited_protocol
from tests.support.net import free_port
from tests.support.wait import wait_for

GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"

pytestmark = pytest.mark.server  # uvicorn servers in threads, on real sockets


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the length of the body it read; `/slow` first waits for a minute."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(60)  # longer than any shutdown grace period of these tests
    length = 0
    while True:
        message = await receive()
        length += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    body = json.dumps({"length": length}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Running:
    """A uvicorn server in a thread on a free port."""

    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port

    def connect(self) -> socket.socket:
        """A new connection to the server."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def raw(self, data: bytes) -> bytes:
        """Send `data` on a new connection; what comes back until the server closes it."""
        with self.connect() as sock:
            sock.sendall(data)
            answer, closed = read_until_closed(sock)
        assert closed, f"still open after {answer[:200]!r}"
        return answer


@contextmanager
def running(settings: Settings, **config: Any) -> Iterator[Running]:
    """Serve the echo app, inside the service's outermost middleware, with the protocol of `settings`."""
    port = free_port()
    app = RequestContext(echo, Metrics(lambda: None))
    options = {"log_level": "warning", "lifespan": "off", **config}
    server = uvicorn.Server(uvicorn.Config(app, port=port, http=limited_protocol(settings), **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 30, "the server to start")
    assert server.started, "the server did not start"
    try:
        yield Running(server, port)
    finally:
        server.should_exit = True
        thread.join(30)


def read_until_closed(sock: socket.socket, seconds: float = 10) -> tuple[bytes, bool]:
    """Bytes from `sock` until the server closes it (True) or `seconds` pass (False)."""
    sock.settimeout(seconds)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except TimeoutError:
        return out, False
    except ConnectionResetError:
        pass
    return out, True


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one raw HTTP response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (x.split(":", 1) for x in lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_error(answer: bytes, status: int, code: str) -> None:
    """`answer` is `status` with the one JSON error shape and closes the connection."""
    got, headers, body = parse(answer)
    assert got == status, answer[:300]
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert error["message"]


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    """The default head limit (32 KB) and a read timeout of one second."""
    with running(Settings(read_timeout=1.0)) as serving:
        yield serving


def test_a_normal_request_is_answered(server: Running) -> None:
    status, _, body = parse(server.raw(GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")))
    assert (status, json.loads(body)) == (200, {"length": 0})


def test_a_40_kb_header_gets_431(server: Running) -> None:
    answer = server.raw(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    assert_json_error(answer, 431, "headers_too_large")


def test_100000_small_headers_get_431(server: Running) -> None:
    answer = server.raw(b"GET / HTTP/1.1\r\nHost: test\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n")
    assert_json_error(answer, 431, "headers_too_large")


def test_a_small_head_with_a_large_body_in_one_write_is_answered(server: Running) -> None:
    # Head and body past the limit in one packet: only the head counts.
    body = b"x" * 300_000
    head = b"POST / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    status, _, answer = parse(server.raw(head + body))
    assert (status, json.loads(answer)) == (200, {"length": len(body)})


def test_pipelined_requests_are_all_answered(server: Running) -> None:
    last = GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    assert server.raw(GET * 20 + last).count(b"HTTP/1.1 200 OK") == 21


def test_a_70_kb_url_gets_431(server: Running) -> None:
    assert_json_error(server.raw(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"), 431, "headers_too_large")


def test_a_70_kb_url_under_a_larger_head_limit_gets_414() -> None:
    with running(Settings(max_header_bytes=1_048_576)) as serving:
        answer = serving.raw(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n")
    assert_json_error(answer, 414, "uri_too_long")


def test_an_unparsable_request_gets_400(server: Running) -> None:
    assert_json_error(server.raw(b"\x00\x01 not http\r\n\r\n"), 400, "invalid_http")


def test_a_connection_with_nothing_sent_is_closed(server: Running) -> None:
    with server.connect() as sock:
        assert read_until_closed(sock) == (b"", True)


def test_a_partial_head_gets_408(server: Running) -> None:
    assert_json_error(server.raw(b"GET / HTTP/1.1\r\nHost: te"), 408, "request_timeout")


def test_a_partial_body_gets_408(server: Running) -> None:
    answer = server.raw(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    assert_json_error(answer, 408, "request_timeout")


def test_a_slow_request_that_arrives_in_time_is_answered(server: Running) -> None:
    with server.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nab")
        time.sleep(0.5)  # a slow client: a pause within the read timeout (1 s)
        sock.sendall(b"cd")
        status, _, body = parse(sock.recv(65536))
    assert (status, json.loads(body)) == (200, {"length": 4})


def test_an_idle_keep_alive_connection_outlives_the_read_timeout(server: Running) -> None:
    with server.connect() as sock:
        sock.sendall(GET)
        assert parse(sock.recv(65536))[0] == 200
        time.sleep(1.5)  # past the read timeout, within uvicorn's keep-alive timeout (5 s)
        sock.sendall(GET)
        assert parse(sock.recv(65536))[0] == 200


def test_a_request_still_arriving_at_shutdown_gets_503() -> None:
    with running(Settings(), timeout_graceful_shutdown=10) as serving, serving.connect() as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        wait_for(lambda: serving.server.server_state.tasks, 10, "the request passed to the app")
        serving.server.should_exit = True
        answer, closed = read_until_closed(sock)
    assert closed
    assert_json_error(answer, 503, "shutting_down")


def test_a_request_cut_by_the_shutdown_grace_period_gets_503() -> None:
    with running(Settings(), timeout_graceful_shutdown=1) as serving, serving.connect() as sock:
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        wait_for(lambda: serving.server.server_state.tasks, 10, "the request passed to the app")
        serving.server.should_exit = True
        answer, closed = read_until_closed(sock)
    assert closed
    assert_json_error(answer, 503, "shutting_down")
