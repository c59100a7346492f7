"""Editorial rules of an article's list: PUT, GET and DELETE /v1/articles/{id}/rules, with a write key."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from embeddings.articles.rules import Rules
from embeddings.errors import ArticleNotFoundError, InvalidQueryError
from embeddings.live.overlay import Snapshot
from embeddings.live.writes import rules_write
from service.auth import require_writer
from service.deps import ArticleId, CorpusDep, JsonBody, MetricsDep
from service.errors import responses
from service.schemas import Dropped, RulesIn, RulesOut, json_response

router = APIRouter(tags=["rules"], dependencies=[Depends(require_writer)])
_errors = responses(401, 404, 422, 503)


def _known(snapshot: Snapshot, article_id: str) -> None:
    if snapshot.get(article_id) is None:
        raise ArticleNotFoundError(article_id)


def checked(snapshot: Snapshot, article_id: str, body: RulesIn) -> Rules:
    """The rules of `body`, or InvalidQueryError naming the first thing wrong with them."""
    for name, ids in (("pin", body.pin), ("block", body.block)):
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise InvalidQueryError(f"{name} lists ids more than once: {repeated[:10]}")
        if article_id in ids:
            raise InvalidQueryError(f"{name} lists the article itself ({article_id!r})")
    both = sorted(set(body.pin) & set(body.block))
    if both:
        raise InvalidQueryError(f"ids both pinned and blocked: {both[:10]}")
    found = {i: snapshot.get(i) for i in (*body.pin, *body.block)}  # each id read once
    unknown = [i for i, article in found.items() if article is None]
    if unknown:
        raise InvalidQueryError(f"unknown article ids: {unknown[:10]}")
    unlisted = [i for i in body.pin if not (article := found[i]) or not article.listed]
    if unlisted:
        raise InvalidQueryError(f"articles with listed=false cannot be pinned: {unlisted[:10]}")
    return Rules(tuple(body.pin), tuple(body.block))


def _out(snapshot: Snapshot, article_id: str, seq: int | None = None) -> RulesOut:
    rules = snapshot.rules_for(article_id) or Rules()
    dropped = []
    for ident in rules.pin:
        found = snapshot.get(ident)
        if found is None or not found.listed:
            dropped.append(Dropped(id=ident, reason="deleted" if found is None else "unlisted"))
    return RulesOut(id=article_id, pin=list(rules.pin), block=list(rules.block), dropped=dropped, seq=seq)


@router.put(
    "/v1/articles/{article_id:id}/rules",
    response_model=RulesOut,
    responses={**_errors, **responses(415)},
    dependencies=[JsonBody],
)
def put_rules(article_id: ArticleId, body: RulesIn, corpus: CorpusDep, metrics: MetricsDep) -> Response:
    """Pin and block articles in this article's list: durable and applied once this returns."""
    snapshot = corpus.snapshot().snapshot
    _known(snapshot, article_id)
    applied = corpus.write([rules_write(article_id, checked(snapshot, article_id, body))])
    metrics.writes.labels("rules").inc()
    return json_response(_out(applied.loaded.snapshot, article_id, applied.logged[-1].seq))


@router.get("/v1/articles/{article_id:id}/rules", response_model=RulesOut, responses=_errors)
def get_rules(article_id: ArticleId, corpus: CorpusDep) -> Response:
    """The rules of this article's list (none: empty lists), and the pins that no longer apply."""
    snapshot = corpus.snapshot().snapshot
    _known(snapshot, article_id)
    return json_response(_out(snapshot, article_id))


@router.delete("/v1/articles/{article_id:id}/rules", response_model=RulesOut, responses=_errors)
def delete_rules(article_id: ArticleId, corpus: CorpusDep, metrics: MetricsDep) -> Response:
    """Clear the rules of this article's list."""
    _known(corpus.snapshot().snapshot, article_id)
    applied = corpus.write([rules_write(article_id, Rules())])
    metrics.writes.labels("rules").inc()
    return json_response(_out(applied.loaded.snapshot, article_id, applied.logged[-1].seq))
