"""Thin `def` routes (FAISS, SQLite and torch block: the threadpool runs them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from embeddings.articles.article import MAX_ID_LENGTH
from embeddings.articles.text import article_text, content_hash
from embeddings.errors import ArticleNotFoundError
from embeddings.ranking.finder import Origin, RelatedQuery
from embeddings.ranking.reprints import signature
from embeddings.vectors import LEX
from service.auth import is_writer
from service.deps import (
    NOT_JSON,
    EncodersDep,
    JsonBody,
    LiveDep,
    LoadedDep,
    MetricsDep,
    PolicyDep,
    SettingsDep,
    as_utc,
    known_parameters,
    make_filters,
)
from service.errors import public_message
from service.lists import OptionsDep, related_list
from service.response_cache import list_key
from service.schemas import (
    ID_PATTERN,
    ArticleOut,
    ErrorResponse,
    Health,
    IndexInfo,
    PreviewRequest,
    Readiness,
    RelatedItem,
    RelatedResponse,
)

router = APIRouter()


def _json(body: BaseModel) -> JSONResponse:
    """`body` as FastAPI would answer it, without validating the returned model once more."""
    return JSONResponse(body.model_dump(mode="json"))


ArticleId = Annotated[
    str,
    Path(
        min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, description="The publisher's article id."
    ),
]
_errors: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown article id."},
    422: {"model": ErrorResponse, "description": "Invalid parameters."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet."},
}


@router.get(
    "/v1/articles/{article_id:path}/related",
    response_model=RelatedResponse,
    responses=_errors,
    dependencies=[Depends(known_parameters)],
)
def related_for_article(
    request: Request,
    article_id: ArticleId,
    loaded: LoadedDep,
    live: LiveDep,
    settings: SettingsDep,
    options: OptionsDep,
    metrics: MetricsDep,
) -> Response:
    """Articles related to an indexed article, best first; never the article itself or a copy of it."""
    # A list rendered already was answered by CachedLists, before routing: this one is made anew.
    article, listing, response = related_list(loaded, settings, metrics, article_id, options)
    body = bytes(_json(response).body)
    live.responses.put(loaded.snapshot, list_key(request.scope), body, article.id, listing)
    return Response(body, media_type="application/json")


@router.post(
    "/v1/related", response_model=RelatedResponse, responses={**_errors, **NOT_JSON}, dependencies=[JsonBody]
)
def related_for_text(
    request: PreviewRequest,
    loaded: LoadedDep,
    settings: SettingsDep,
    encoders: EncodersDep,
    policy: PolicyDep,
    metrics: MetricsDep,
) -> JSONResponse:
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
    return _json(
        RelatedResponse(
            article=None,
            related=[RelatedItem.from_hit(h, request.explain) for h in hits],
            bundle=loaded.bundle.version,
            scorer=loaded.finder.scorer.name,
        )
    )


@router.get("/v1/articles/{article_id:path}", response_model=ArticleOut, responses=_errors)
def get_article(article_id: ArticleId, loaded: LoadedDep) -> ArticleOut:
    """One stored article."""
    article = loaded.snapshot.get(article_id)
    if article is None:
        raise ArticleNotFoundError(article_id)
    return ArticleOut.from_stored(article)


@router.get("/v1/index", response_model=IndexInfo, responses=_errors)
def index_info(loaded: LoadedDep, request: Request, settings: SettingsDep) -> IndexInfo:
    """The loaded bundle: its manifest and counts (its full path for a caller with a write key)."""
    bundle, snapshot = loaded.bundle, loaded.snapshot
    operator = is_writer(settings, request.headers.get("authorization"))
    return IndexInfo(
        version=bundle.version,
        path=str(bundle.path) if operator else f"{bundle.path.parent.name}/{bundle.path.name}",
        loaded_at=loaded.loaded_at,
        manifest=bundle.manifest,
        stats=bundle.store.stats(),
        writes={"pending": snapshot.pending, "last_seq": snapshot.last_seq, "articles": len(snapshot)},
    )


@router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus metrics, in the text exposition format."""
    registry = request.app.state.metrics.registry
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", response_model=Health)
@router.head("/healthz", include_in_schema=False)  # load balancers' probes
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: _errors[503]})
@router.head("/readyz", include_in_schema=False)
def readyz(live: LiveDep) -> Readiness:
    """Ready once a bundle is loaded and the write log is sound (503 until then, with the reason)."""
    loaded = live.ready()
    return Readiness(
        status="ready",
        bundle=loaded.bundle.version,
        articles=len(loaded.snapshot),
        last_error=public_message(live.last_error) if live.last_error else None,
    )
