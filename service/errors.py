"""Domain exceptions and request validation errors, translated to one JSON shape."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from embeddings.errors import (
    ArticleNotFoundError,
    BundleError,
    InputError,
    NotReadyError,
    RelatedArticlesError,
    UnauthorizedError,
    WriteLogError,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[RelatedArticlesError], int]] = [
    (ArticleNotFoundError, 404),
    (UnauthorizedError, 401),
    (WriteLogError, 503),
    (InputError, 422),
    (NotReadyError, 503),
    (BundleError, 503),
]
_HTTP_CODES = {
    400: "invalid_body",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "overloaded",
}
# Starlette's words for a body it cannot decode (e.g. not UTF-8), said plainly.
_HTTP_MESSAGES = {"There was an error parsing the body": "the body is not valid UTF-8 JSON"}


def error_response(status: int, code: str, message: str, details: list[Any] | None = None) -> JSONResponse:
    """The one JSON error shape: {"error": {"code", "message", "details"}}."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content={"error": body}, headers=headers)


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelatedArticlesError)
    status = next((s for kind, s in STATUS if isinstance(exc, kind)), 500)
    if status == 500:
        log.error("unhandled %s: %s", type(exc).__name__, exc)
    return error_response(status, exc.code, str(exc))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "message": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(422, "invalid_request", f"{where}: {first['message']}", details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = _HTTP_MESSAGES.get(str(exc.detail), str(exc.detail))
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), message)


def internal_error() -> JSONResponse:
    """The answer to a fault of the service itself (its traceback goes to the log, not the client)."""
    return error_response(500, "internal_error", "internal error; the service log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Register the translation of every error to the one shape."""
    app.add_exception_handler(RelatedArticlesError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
