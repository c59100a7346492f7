"""Before routing: a URL whose percent-decoded path or query is not UTF-8 is refused; an article's id
stays one path segment."""

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


ARTICLES = b"/v1/articles/"


def segment_path(raw_path: bytes) -> str:
    """The path of `raw_path` decoded segment by segment, a `/` or `%` inside a segment kept encoded."""
    return "/".join(
        unquote_to_bytes(part).decode("utf-8").replace("%", "%25").replace("/", "%2F")
        for part in raw_path.split(b"/")
    )


class SegmentPaths:
    """Pure ASGI middleware: under /v1/articles/, `%2F` in the request target stays inside its segment.

    Servers decode the whole path, so `/v1/articles/a%2Fb/related` would reach the router as
    `/v1/articles/a/b/related`; kept as one segment, the route's `{article_id:id}` reads `a/b`.
    Inside StrictUtf8: the raw path is valid UTF-8 once here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: bytes | None = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and b"%" in raw and raw.startswith(ARTICLES):
            # In place: the outer middleware reads the route that routing records in this scope.
            scope["path"] = segment_path(raw)
        await self.app(scope, receive, send)
