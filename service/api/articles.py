"""Articles: read one; insert, replace and delete them, one at a time or in batches (with a write key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ValidationError

from embeddings.articles.article import Article
from embeddings.errors import ArticleNotFoundError, InputError
from embeddings.live.corpus import Applied
from embeddings.live.writes import Write, delete, puts
from service.auth import require_writer
from service.deps import ArticleId, CorpusDep, EncodersDep, JsonBody, LoadedDep, MetricsDep, SettingsDep
from service.errors import responses
from service.metrics import Metrics
from service.schemas import (
    ArticleIn,
    ArticleOut,
    BatchRequest,
    BatchResponse,
    WriteOut,
    WriteResponse,
    json_response,
    unpadded_id,
)

router = APIRouter(tags=["articles"])
_writer = [Depends(require_writer)]


@router.get("/v1/articles/{article_id:id}", response_model=ArticleOut, responses=responses(404, 422, 503))
def get_article(article_id: ArticleId, loaded: LoadedDep) -> Response:
    """One stored article."""
    article = loaded.snapshot.get(article_id)
    if article is None:
        raise ArticleNotFoundError(article_id)
    return json_response(ArticleOut.from_stored(article))


def _plain(article_id: str) -> str:
    try:
        return unpadded_id(article_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _article(article_id: str, fields: ArticleIn) -> Article:
    try:
        return Article(id=_plain(article_id), **fields.model_dump(exclude={"id"}))
    except ValidationError as exc:
        raise InputError(f"article {article_id!r}: {exc.errors()[0]['msg']}") from None


def _apply(corpus: CorpusDep, metrics: Metrics, writes: list[Write]) -> tuple[Applied, list[WriteOut]]:
    applied = corpus.write(writes)
    for w in applied.logged:
        metrics.writes.labels(w.op).inc()
    results = [
        WriteOut(id=w.article_id, op=w.op, seq=w.seq, existed=e)
        for w, e in zip(applied.logged, applied.existed, strict=True)
    ]
    return applied, results


def _one(applied: Applied, result: WriteOut) -> Response:
    snapshot = applied.loaded.snapshot
    return json_response(
        WriteResponse(**result.model_dump(), bundle=snapshot.bundle.version, writes_pending=snapshot.pending)
    )


@router.put(
    "/v1/articles/{article_id:id}",
    response_model=WriteResponse,
    responses=responses(401, 415, 422, 503),
    dependencies=[*_writer, JsonBody],
)
def put_article(
    article_id: ArticleId,
    article: ArticleIn,
    corpus: CorpusDep,
    encoders: EncodersDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Response:
    """Insert or replace an article: once this returns it is on disk and in every related list."""
    writes = puts([_article(article_id, article)], encoders, settings.batch_size)
    applied, (result,) = _apply(corpus, metrics, writes)
    return _one(applied, result)


@router.delete(
    "/v1/articles/{article_id:id}",
    response_model=WriteResponse,
    responses=responses(401, 422, 503),
    dependencies=_writer,
)
def delete_article(article_id: ArticleId, corpus: CorpusDep, metrics: MetricsDep) -> Response:
    """Delete an article from every list at once; an unknown id is recorded too, so no rebuild restores it."""
    applied, (result,) = _apply(corpus, metrics, [delete(_plain(article_id))])
    return _one(applied, result)


@router.post(
    "/v1/articles/batch",
    response_model=BatchResponse,
    responses=responses(401, 415, 422, 503),
    dependencies=[*_writer, JsonBody],
)
def write_batch(
    batch: BatchRequest,
    corpus: CorpusDep,
    encoders: EncodersDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Response:
    """Upsert and delete up to `max_batch` articles together: all of them are applied, or none."""
    size = len(batch.upsert) + len(batch.delete)
    if size > settings.max_batch:
        raise InputError(f"a batch holds at most {settings.max_batch} writes, this one {size}")
    articles = [_article(a.id, a) for a in batch.upsert]
    writes = puts(articles, encoders, settings.batch_size) + [delete(i) for i in batch.delete]
    applied, results = _apply(corpus, metrics, writes)
    snapshot = applied.loaded.snapshot
    return json_response(
        BatchResponse(results=results, bundle=snapshot.bundle.version, writes_pending=snapshot.pending)
    )
