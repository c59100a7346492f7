"""Refusals before routing: a URL whose percent-decoded path or query is not UTF-8."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response


def utf8_url(raw_path: bytes, query: bytes) -> str | None:
    """What is wrong with a request target's path and query, percent-decoded as UTF-8; None if nothing."""
    for part, raw in (("path", raw_path), ("query", query)):
        try:
            # Strict: invalid bytes and encoded surrogates (%ED%A0%80) are refused, not replaced.
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return f"the URL's {part} is not valid UTF-8 once percent-decoded"
    return None


class StrictUtf8:
    """Pure ASGI middleware: 400 for a URL that is not UTF-8.

    Servers decode it with errors="replace", so `x%FF` and `x%FE` would both name the article `x\\ufffd`
    and overwrite each other.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Without raw_path (a server that does not send it) the path is decoded already.
            wrong = utf8_url(scope.get("raw_path") or b"", scope.get("query_string", b""))
            if wrong:
                await error_response(400, "invalid_url", wrong)(scope, receive, send)
                return
        await self.app(scope, receive, send)
