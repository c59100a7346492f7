"""The console at `/` (RELATED_CONSOLE=true): search titles, open an article, see its list and its story."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from service.html import asset

router = APIRouter(include_in_schema=False)
# Its own script and style only; it reads the API of its own origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src http: https:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}


def _asset(name: str) -> Response:
    media = _TYPES.get(name, "text/html")
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
    return Response(asset(name), media_type=f"{media}; charset=utf-8", headers=headers)


@router.get("/")
def console() -> Response:
    """The console's page."""
    return _asset("console.html")


@router.get("/console/console.js")
def console_script() -> Response:
    """The console's script."""
    return _asset("console.js")


@router.get("/console/console.css")
def console_style() -> Response:
    """The console's style."""
    return _asset("console.css")
