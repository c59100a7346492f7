"""Domain exceptions and request validation errors, translated to one JSON shape; their OpenAPI table."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
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
    UnsupportedMediaTypeError,
    WriteLogError,
)
from service.schemas import ErrorResponse

log = logging.getLogger(__name__)

# What each error status means, for every route's OpenAPI description (the body is ErrorResponse).
MEANINGS: dict[int, str] = {
    401: "No API key, or not a valid one (writes need `Authorization: Bearer KEY`).",
    404: "No article with that id (or, by URL, at that address).",
    413: "The request body is over the size limit.",
    415: "A body sent without `Content-Type: application/json`.",
    422: "Invalid parameters or body; nothing was changed.",
    503: "Not ready: no bundle loaded yet, a damaged bundle, the write log unavailable or lost, or the "
    "service shutting down (`/readyz` says which). Try again later.",
}

STATUS: list[tuple[type[RelatedArticlesError], int]] = [
    (ArticleNotFoundError, 404),
    (UnauthorizedError, 401),
    (WriteLogError, 503),
    (UnsupportedMediaTypeError, 415),
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
ARTICLES = "/v1/articles/"
# FastAPI's words for a body it cannot decode, said plainly by what failed (its __cause__).
_UNPARSED = "There was an error parsing the body"
_BODY_FAULTS: list[tuple[type[BaseException], str]] = [
    (UnicodeDecodeError, "the body is not valid UTF-8"),
    (RecursionError, "the JSON body is nested too deeply"),
]


# An absolute path (of a bundle's file, the write log, the cache): public answers name the file only.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+([^\s/'\":]*)")


def public_message(message: str) -> str:
    """`message` without the machine's directories (the service log keeps them for operators)."""
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "<dir>", message)


def error_response(status: int, code: str, message: str, details: list[Any] | None = None) -> JSONResponse:
    """The one JSON error shape: {"error": {"code", "message", "details"}}."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(status_code=status, content={"error": body}, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that may answer these error statuses."""
    return {status: {"model": ErrorResponse, "description": MEANINGS[status]} for status in statuses}


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelatedArticlesError)
    status = next((s for kind, s in STATUS if isinstance(exc, kind)), 500)
    if status == 500:
        log.error("unhandled %s: %s", type(exc).__name__, exc)
    return error_response(status, exc.code, public_message(str(exc)))


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
    message = str(exc.detail)
    path = request.url.path
    if exc.status_code == 404 and path.startswith(ARTICLES) and "/" in path[len(ARTICLES) :]:
        # /v1/articles/a/b/related: an id holding "/" sent as it is.
        message = (
            "no such route: an article's are /v1/articles/{id} and its /related, /related.html, /story "
            "and /rules; an id is one path segment, a '/' in it sent as %2F"
        )
    if message == _UNPARSED:
        cause = exc.__cause__
        message = next(
            # Else, e.g., an integer of more than 4,300 digits.
            (m for kind, m in _BODY_FAULTS if isinstance(cause, kind)),
            "the body is not valid JSON",
        )
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), message)


def internal_error() -> JSONResponse:
    """The answer to a fault of the service itself (its traceback goes to the log, not the client)."""
    return error_response(500, "internal_error", "internal error; the service log has the details")


async def _damaged_store(request: Request, exc: Exception) -> JSONResponse:
    """SQLite failing under a read: the bundle's store broke on disk. Stop serving that bundle."""
    if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):  # our fault, not the disk's
        log.error("article store misused: %r", exc, exc_info=exc)
        return internal_error()
    corpus = getattr(request.app.state, "corpus", None)
    loaded = getattr(request.state, "loaded", None)  # the bundle this request read, not the newest
    if corpus is not None and loaded is not None:
        await run_in_threadpool(corpus.mark_damaged, loaded, exc)  # it waits for a bundle load under way
    log.error("article store failed under a read: %s", exc)
    return error_response(503, "bundle_corrupt", "the bundle's article store is damaged; see /readyz")


def install_error_handlers(app: FastAPI) -> None:
    """Register the translation of every error to the one shape."""
    app.add_exception_handler(sqlite3.DatabaseError, _damaged_store)
    app.add_exception_handler(RelatedArticlesError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
