"""Related lists: of an indexed article (JSON and HTML), of the article at a URL, of a text not indexed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from embeddings.articles.text import article_text, content_hash
from embeddings.ranking.finder import Origin, RelatedQuery
from embeddings.ranking.reprints import signature
from embeddings.vectors import LEX
from service.api.lists import OptionsDep, UrlFinderDep, UrlQuery, article_at, related_list
from service.cached_lists import HTML_HEADERS, list_key
from service.deps import (
    ArticleId,
    EncodersDep,
    JsonBody,
    ListCacheDep,
    LoadedDep,
    MetricsDep,
    PolicyDep,
    SettingsDep,
    as_utc,
    known_parameters,
    make_filters,
)
from service.errors import responses
from service.html import render_list
from service.schemas import PreviewRequest, RelatedItem, RelatedResponse, json_response

router = APIRouter(tags=["related"])
_known = [Depends(known_parameters)]
_HEADERS = {k.decode(): v.decode() for k, v in HTML_HEADERS if k != b"content-type"}
_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "The list as a standalone HTML document."}
}


def _html(body: bytes) -> Response:
    return Response(body, media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get(
    "/v1/articles/{article_id:id}/related",
    response_model=RelatedResponse,
    responses=responses(404, 422, 503),
    dependencies=_known,
)
def related_for_article(
    request: Request,
    article_id: ArticleId,
    loaded: LoadedDep,
    lists: ListCacheDep,
    settings: SettingsDep,
    options: OptionsDep,
    metrics: MetricsDep,
) -> Response:
    """Articles related to an indexed article, best first; never the article itself or a copy of it."""
    # A list rendered already was answered by CachedLists, before routing: this one is made anew.
    article, listing, response = related_list(loaded, settings, metrics, article_id, options)
    answer = json_response(response)
    lists.put(loaded.snapshot, list_key(request.scope), bytes(answer.body), article.id, listing)
    return answer


@router.get(
    "/v1/articles/{article_id:id}/related.html",
    response_class=Response,
    responses={**_HTML, **responses(404, 422, 503)},
    dependencies=_known,
)
def related_html(
    request: Request,
    article_id: ArticleId,
    loaded: LoadedDep,
    lists: ListCacheDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    options: OptionsDep,
) -> Response:
    """The related list of an article as HTML: the JSON route's list, as cards (same options)."""
    article, listing, response = related_list(loaded, settings, metrics, article_id, options)
    body = render_list(response, article.lang).encode()
    lists.put(loaded.snapshot, list_key(request.scope), body, article.id, listing)
    return _html(body)


@router.get(
    "/v1/related", response_model=RelatedResponse, responses=responses(404, 422, 503), dependencies=_known
)
def related_for_url(
    url: UrlQuery,
    loaded: LoadedDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    finder: UrlFinderDep,
    options: OptionsDep,
) -> Response:
    """The related list of the article at `url`, as `GET /v1/articles/{id}/related` answers it."""
    article = article_at(finder, loaded, url)
    _, _, response = related_list(loaded, settings, metrics, article.id, options)
    return json_response(response)


@router.get(
    "/v1/related.html",
    response_class=Response,
    responses={**_HTML, **responses(404, 422, 503)},
    dependencies=_known,
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


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    responses=responses(415, 422, 503),
    dependencies=[JsonBody],
)
def related_for_text(
    request: PreviewRequest,
    loaded: LoadedDep,
    settings: SettingsDep,
    encoders: EncodersDep,
    policy: PolicyDep,
    metrics: MetricsDep,
) -> Response:
    """Articles related to an article that is not indexed yet (e.g. a CMS preview)."""
    filters = make_filters(request.lang, request.section, request.since, request.until)
    exclude = (*request.exclude, request.id) if request.id else tuple(request.exclude)
    overrides = request.model_dump(
        include={"lang_policy", "diversity", "window_days", "past_only", "min_score"}
    )
    query = RelatedQuery(
        k=request.k or settings.default_k,
        filters=filters,
        exclude=exclude,
        policy=policy.with_overrides(**overrides),
    )
    text = article_text(request.title, request.body)
    vectors: dict[str, Any] = {
        name: encoders.encoders[name].encode([text])[0] for name in loaded.finder.scorer.dense
    }
    if LEX in loaded.finder.scorer.signals:
        vectors[LEX] = loaded.lexical_model().vectors([text])
    origin = Origin(
        content_hash=content_hash(request.title, request.body),
        title=request.title,
        lang=request.language,
        published_at=as_utc(request.published_at),
        signature=signature(text),
    )
    hits = loaded.finder.for_vectors(vectors, query, origin).hits
    if len(hits) < query.k:
        metrics.short_lists.inc()
    return json_response(
        RelatedResponse(
            article=None,
            related=[RelatedItem.from_hit(h, request.explain) for h in hits],
            bundle=loaded.bundle.version,
            scorer=loaded.finder.scorer.name,
        )
    )
