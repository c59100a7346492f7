"""uvicorn's httptools protocol with limits: a bounded request head, a read timeout, and JSON refusals.

Every answer this layer gives itself has the service's one error shape and closes the connection:

    431 headers_too_large  the request line and headers over `max_header_bytes` (a long URL included)
    414 uri_too_long       a URL over 65,535 bytes, when `max_header_bytes` lets one that long through
    400 invalid_http       bytes that are not an HTTP request
    408 request_timeout    a request (head and body) not received whole within `read_timeout` seconds
    503 shutting_down      a request still arriving when the server shuts down

A connection on which nothing arrives within `read_timeout` is closed without an answer; idle
keep-alive connections between requests stay governed by uvicorn's keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from embeddings.settings import Settings
from service.errors import error_response

log = logging.getLogger(__name__)

# httptools parses URLs with uint16 offsets and refuses longer ones (httptools issue 142).
MAX_URL_BYTES = 65_535
# After a refusal, what the client still sends is read and dropped (after our FIN) until it closes, for
# at most this long (RFC 9112 section 9.6): a close with unread bytes sends a reset, which may destroy
# the answer before the client reads it. Linux over loopback kept it readable; other stacks may not.
LINGER_SECONDS = 5.0


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that bounds the request head, times out slow requests and refuses in JSON."""

    max_header_bytes: ClassVar[int] = 32_768
    read_timeout: ClassVar[float] = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_bytes = 0  # received of the current head so far
        self._heads = 0  # heads received whole on this connection
        self._in_body = False  # from the end of a head to the end of its request
        self._reading = False  # from the first byte of a request to its end
        self._ignoring = False  # refused or upgraded: no more bytes are parsed
        self._deadline = 0.0  # loop time by which the request being read must have arrived whole
        self._read_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = self.loop.time() + self.read_timeout
        self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._ignoring:
            return
        if not self._in_body:
            # Counted per chunk: a head that begins inside a chunk (pipelining) is counted from the next
            # one, so it may pass the limit by one chunk (uvloop reads at most 250 KB), never more.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._head_over_limit(data)
                return
        super().data_received(data)

    def _head_over_limit(self, data: bytes) -> None:
        # Only the bytes within the limit reach the parser: httptools joins a header's pieces into one
        # bytes object, and a 200 MB header fed whole costs its size in memory (370 MB measured).
        fits = len(data) - (self._head_bytes - self.max_header_bytes)
        heads = self._heads
        if fits > 0:
            self._head_bytes = self.max_header_bytes
            super().data_received(data[:fits])
        if self._heads == heads:
            self._refuse(
                431,
                "headers_too_large",
                f"the request line and headers are limited to {self.max_header_bytes} bytes",
            )
        else:  # the head ended within the limit; the rest is its body or the next request
            self.data_received(data[fits:])

    def handle_websocket_upgrade(self) -> None:
        self._ignoring = True
        self._cancel_read_timer()
        super().handle_websocket_upgrade()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "invalid_http", "the request is not valid HTTP/1.1")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = True
        # One timer that moves itself to the newest deadline when it fires, rather than one armed and
        # cancelled per request: call_later plus cancel cost 2.3 us under uvloop, loop.time() 0.1 us.
        self._deadline = self.loop.time() + self.read_timeout
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_timeout, self._read_timed_out)

    def on_headers_complete(self) -> None:
        self._heads += 1
        if self._ignoring:
            return
        if len(self.url) > MAX_URL_BYTES:
            self._refuse(414, "uri_too_long", f"URLs are limited to {MAX_URL_BYTES} bytes")
            return
        super().on_headers_complete()
        self._in_body = True  # after: until then `self.cycle` is still the earlier request's

    def on_body(self, body: bytes) -> None:
        if not self._ignoring:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = self._reading = False
        self._head_bytes = 0
        if not self._ignoring:
            super().on_message_complete()

    def shutdown(self) -> None:
        """Close idle connections, answer 503 to requests still arriving, let the others finish."""
        if self._ignoring:
            self.transport.close()
        elif self._reading and self._may_answer():
            # Such a request may not arrive whole within the grace period: say so now rather than cut it.
            self._refuse(503, "shutting_down", "the service is shutting down; send the request again")
        else:
            super().shutdown()

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self._ignoring or self.transport.is_closing():
            return
        if not self._reading:
            if self._heads == 0:  # nothing of a request came on a new connection: nothing to answer
                self.transport.close()
            return  # between requests: uvicorn's keep-alive timeout decides
        now = self.loop.time()
        if self.flow.read_paused:  # the server stopped reading (a pipelined request waits): not the client
            self._deadline = now + self.read_timeout
        if self._deadline > now:
            self._read_timer = self.loop.call_later(self._deadline - now, self._read_timed_out)
        else:
            self._refuse(
                408,
                "request_timeout",
                f"the request did not arrive whole within {self.read_timeout:g} seconds",
            )

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _may_answer(self) -> bool:
        """Whether no response of an earlier request is under way or queued on this connection."""
        if self.pipeline:
            return False
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        return self._in_body and not cycle.response_started

    def _refuse(self, status: int, code: str, message: str) -> None:
        """Answer `status` in the one JSON shape (unless another answer is under way), then close."""
        if self._ignoring or self.transport.is_closing():
            return
        self._ignoring = True
        answer = self._may_answer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app reads http.disconnect, and whatever it sends is dropped
            cycle.message_event.set()
        if status != 400:  # uvicorn logs its own line for those
            log.warning("%s to %s: %s", status, self.client, message)
        if answer:
            self.transport.write(self._error_bytes(status, code, message))
        self._cancel_read_timer()
        self._unset_keepalive_if_required()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _error_bytes(self, status: int, code: str, message: str) -> bytes:
        body = bytes(error_response(status, code, message).body)
        out = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            out += [name, b": ", value, b"\r\n"]
        out += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"cache-control: no-store\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        return b"".join(out)


class ConfiguredProtocol(LimitedHttpToolsProtocol):
    """The protocol of worker processes, which uvicorn imports by name: `configure` sets its limits."""


def configure(settings: Settings) -> None:
    """Give ConfiguredProtocol the limits of `settings` (a worker's app factory calls it first)."""
    ConfiguredProtocol.max_header_bytes = settings.max_header_bytes
    ConfiguredProtocol.read_timeout = settings.read_timeout


def limited_protocol(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, with the limits of `settings`."""

    class Limited(LimitedHttpToolsProtocol):
        max_header_bytes = settings.max_header_bytes
        read_timeout = settings.read_timeout

    return Limited
