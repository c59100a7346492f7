"""The related list as HTML, by article id or URL, and the widget that puts it on any page."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from embeddings import __version__
from service.deps import LiveDep, LoadedDep, MetricsDep, SettingsDep, known_parameters
from service.html import asset, render_list
from service.lists import OptionsDep, UrlFinderDep, UrlQuery, article_at, related_list
from service.response_cache import HTML_HEADERS, list_key
from service.routes import ArticleId
from service.schemas import ErrorResponse

router = APIRouter()
_HEADERS = {k.decode(): v.decode() for k, v in HTML_HEADERS if k != b"content-type"}
_HTML = {"content": {"text/html": {}}, "description": "The list as a standalone HTML document."}
_errors: dict[int | str, dict[str, Any]] = {
    200: _HTML,
    404: {"model": ErrorResponse, "description": "Unknown article (the JSON error shape)."},
    422: {"model": ErrorResponse, "description": "Invalid parameters (the JSON error shape)."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet (the JSON error shape)."},
}


def _html(body: bytes) -> Response:
    return Response(body, media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get(
    "/v1/articles/{article_id:path}/related.html",
    response_class=Response,
    responses=_errors,
    dependencies=[Depends(known_parameters)],
)
def related_html(
    request: Request,
    article_id: ArticleId,
    loaded: LoadedDep,
    live: LiveDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: OptionsDep,
) -> Response:
    """The related list of an article as HTML: the JSON route's list, as cards (same options)."""
    article, listing, response = related_list(loaded, settings, metrics, article_id, options)
    body = render_list(response, article.lang).encode()
    live.responses.put(loaded.snapshot, list_key(request.scope), body, article.id, listing)
    return _html(body)


@router.get(
    "/v1/related.html",
    response_class=Response,
    responses=_errors,
    dependencies=[Depends(known_parameters)],
)
def related_html_for_url(
    url: UrlQuery,
    loaded: LoadedDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    finder: UrlFinderDep,
    options: OptionsDep,
) -> Response:
    """The related list of the article at `url`, as HTML."""
    article = article_at(finder, loaded, url)
    _, _, response = related_list(loaded, settings, metrics, article.id, options)
    return _html(render_list(response, article.lang).encode())


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
