"""Per-request context: a request id (echoed as X-Request-ID), one access log line, and the metrics."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import error_response, internal_error
from service.metrics import Metrics

REQUEST_ID = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("related_articles.access")
log = logging.getLogger(__name__)
WRITE_PREFIX = "/v1/articles/"  # PUT /v1/articles/{id} and POST /v1/articles/batch


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate and keep the record."""
        record.request_id = REQUEST_ID.get()
        return True


class RequestContext:
    """Pure ASGI middleware (no body buffering): request id, timing, access log, metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _SANE_ID.match(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = 500
        responding = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responding
            if message["type"] == "http.response.start":
                responding = True
                status = int(message["status"])
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                if not any(key.lower() == b"cache-control" for key, _ in headers):
                    # Lists change with every write: no cache may keep a deleted article listed.
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answered here rather than by the server's last-resort handler, which runs outside this
            # middleware: a 500 too carries its request id, and the log line names it.
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if responding:
                raise  # too late for an error body: the connection is closed
            await internal_error()(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when its graceful-shutdown period ends, then
            # answers a plain-text 500 itself: the JSON 503 goes first, and the cancellation goes on.
            if not responding:
                message = "the service is shutting down; send the request again"
                await error_response(503, "shutting_down", message)(scope, receive, send_with_id)
            raise
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path_format", "unmatched")  # without convertors
            self.metrics.observe(route, scope["method"], status, seconds)
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                seconds * 1000,
                extra={"route": route, "status": status, "ms": round(seconds * 1000, 3)},
            )
            REQUEST_ID.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, by Content-Length or while they stream.

    Requests that `is_writer` accepts (by their Authorization header) may send up to `writer_limit`:
    batches are large, and nobody without a key gets a large body buffered and parsed.
    """

    def __init__(
        self, app: ASGIApp, limit: int, writer_limit: int, is_writer: Callable[[str | None], bool]
    ) -> None:
        self.app = app
        self.base_limit = limit
        self.writer_limit = writer_limit
        self.is_writer = is_writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.base_limit
        writing = scope.get("method") in {"PUT", "POST"} and str(scope.get("path", "")).startswith(
            WRITE_PREFIX
        )
        if writing and self.is_writer(_header(scope, b"authorization")):
            limit = max(limit, self.writer_limit)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, send)
            return
        seen = 0
        over = False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True  # the app sees the client leave, and whatever it answers is dropped
                    return {"type": "http.disconnect"}
            return message

        async def unless_over(message: Message) -> None:
            if not over:
                await send(message)

        await self.app(scope, counted, unless_over)
        if over:
            await _too_large(limit, send)


async def _too_large(limit: int, send: Send) -> None:
    body = json.dumps(
        {"error": {"code": "too_large", "message": f"request bodies are limited to {limit} bytes"}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
