"""What a browser loads: the widget's script, and the console at `/` (RELATED_CONSOLE=true)."""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response

from embeddings import __version__
from service.html import asset

router = APIRouter(tags=["pages"])
console_router = APIRouter(include_in_schema=False)
# The console runs its own script and style only; it reads the API of its own origin.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src http: https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}


@cache
def _widget() -> tuple[bytes, str]:
    script = f"/* related-articles widget {__version__} */\n{asset('widget.js')}".encode()
    return script, f'"{__version__}-{hashlib.sha256(script).hexdigest()[:16]}"'


@router.get("/widget.js", response_class=Response, responses={200: {"content": {"text/javascript": {}}}})
@router.head("/widget.js", include_in_schema=False)
def widget(request: Request) -> Response:
    """The script that fills `<div data-related-article="ID">` and `data-related-url` on any page."""
    script, etag = _widget()
    # Cached for an hour, then revalidated by its version and digest: a new release is seen within
    # the hour, and a revalidation costs an empty 304.
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(script, media_type="text/javascript; charset=utf-8", headers=headers)


def _console_asset(name: str) -> Response:
    media = _TYPES.get(name, "text/html")
    headers = {"Content-Security-Policy": CONSOLE_CSP, "X-Content-Type-Options": "nosniff"}
    return Response(asset(name), media_type=f"{media}; charset=utf-8", headers=headers)


@console_router.get("/")
def console() -> Response:
    """The console's page."""
    return _console_asset("console.html")


@console_router.get("/console/console.js")
def console_script() -> Response:
    """The console's script."""
    return _console_asset("console.js")


@console_router.get("/console/console.css")
def console_style() -> Response:
    """The console's style."""
    return _console_asset("console.css")
