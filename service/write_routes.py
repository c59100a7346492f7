"""The write routes: insert, replace and delete articles, one at a time or in batches (API key needed)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import ValidationError

from embeddings.articles.article import MAX_ID_LENGTH, Article
from embeddings.errors import InputError
from embeddings.live.writes import Write, delete, puts
from service.auth import require_writer
from service.deps import NOT_JSON, EncodersDep, JsonBody, LiveDep, MetricsDep, SettingsDep
from service.loaded import Loaded
from service.schemas import (
    ID_PATTERN,
    ArticleIn,
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    WriteOut,
    WriteResponse,
    readable_id,
    unpadded_id,
)
from service.state import LiveBundle

router = APIRouter(dependencies=[Depends(require_writer)])
WriteId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The publisher's article id (no control characters).",
    ),
]
_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or not a valid one."},
    422: {"model": ErrorResponse, "description": "Invalid article or parameters; nothing was written."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet, or the write log failed."},
}


def _plain(article_id: str) -> str:
    try:
        return unpadded_id(article_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _article(article_id: str, fields: ArticleIn) -> Article:
    try:
        readable_id(article_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        return Article(id=_plain(article_id), **fields.model_dump(exclude={"id"}))
    except ValidationError as exc:
        raise InputError(f"article {article_id!r}: {exc.errors()[0]['msg']}") from None


def _apply(live: LiveBundle, metrics: MetricsDep, writes: list[Write]) -> tuple[Loaded, list[WriteOut]]:
    loaded, logged, existed = live.write(writes)
    for w in logged:
        metrics.writes.labels(w.op).inc()
    results = [
        WriteOut(id=w.article_id, op=w.op, seq=w.seq, existed=e) for w, e in zip(logged, existed, strict=True)
    ]
    return loaded, results


@router.put(
    "/v1/articles/{article_id:path}",
    response_model=WriteResponse,
    responses={**_errors, **NOT_JSON},
    dependencies=[JsonBody],
)
def put_article(
    article_id: WriteId,
    article: ArticleIn,
    live: LiveDep,
    encoders: EncodersDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> WriteResponse:
    """Insert or replace an article: once this returns it is on disk and in every related list."""
    writes = puts([_article(article_id, article)], encoders, settings.batch_size)
    loaded, (result,) = _apply(live, metrics, writes)
    return WriteResponse(
        **result.model_dump(), bundle=loaded.bundle.version, writes_pending=loaded.snapshot.pending
    )


@router.delete("/v1/articles/{article_id:path}", response_model=WriteResponse, responses=_errors)
def delete_article(article_id: WriteId, live: LiveDep, metrics: MetricsDep) -> WriteResponse:
    """Delete an article from every list at once; an unknown id is recorded too, so no rebuild restores it."""
    loaded, (result,) = _apply(live, metrics, [delete(_plain(article_id))])
    return WriteResponse(
        **result.model_dump(), bundle=loaded.bundle.version, writes_pending=loaded.snapshot.pending
    )


@router.post(
    "/v1/articles/batch",
    response_model=BatchResponse,
    responses={**_errors, **NOT_JSON},
    dependencies=[JsonBody],
)
def write_batch(
    batch: BatchRequest,
    live: LiveDep,
    encoders: EncodersDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> BatchResponse:
    """Upsert and delete up to `max_batch` articles together: all of them are applied, or none."""
    size = len(batch.upsert) + len(batch.delete)
    if size > settings.max_batch:
        raise InputError(f"a batch holds at most {settings.max_batch} writes, this one {size}")
    articles = [_article(a.id, a) for a in batch.upsert]
    writes = puts(articles, encoders, settings.batch_size) + [delete(i) for i in batch.delete]
    loaded, results = _apply(live, metrics, writes)
    return BatchResponse(
        results=results, bundle=loaded.bundle.version, writes_pending=loaded.snapshot.pending
    )
