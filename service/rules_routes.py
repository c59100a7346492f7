"""Editorial rules of an article's list: PUT, GET and DELETE /v1/articles/{id}/rules, with a write key."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from embeddings.articles.article import MAX_ID_LENGTH
from embeddings.articles.rules import MAX_BLOCKS, MAX_PINS, Rules
from embeddings.errors import ArticleNotFoundError, InvalidQueryError
from embeddings.live.overlay import Snapshot
from embeddings.live.writes import rules_write
from service.auth import require_writer
from service.deps import NOT_JSON, JsonBody, LiveDep, MetricsDep
from service.schemas import ErrorResponse
from service.write_routes import WriteId

router = APIRouter(dependencies=[Depends(require_writer)])
RuledId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
_errors: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or not a valid one."},
    404: {"model": ErrorResponse, "description": "No article with that id."},
    422: {"model": ErrorResponse, "description": "Invalid rules; nothing was changed."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet, or the write log failed."},
}


class RulesIn(BaseModel):
    """The rules of one article's list: they replace the ones it had."""

    model_config = ConfigDict(extra="forbid")

    pin: list[RuledId] = Field(
        default_factory=list, max_length=MAX_PINS, description="Ids that lead the list, in this order."
    )
    block: list[RuledId] = Field(
        default_factory=list, max_length=MAX_BLOCKS, description="Ids that never appear in the list."
    )


class Dropped(BaseModel):
    """A pinned article that no longer leads the list, and why."""

    id: str
    reason: Literal["deleted", "unlisted"]


class RulesOut(BaseModel):
    """An article's rules as written, and the pins that no longer apply."""

    id: str
    pin: list[str] = Field(description="The pins as written, in order.")
    block: list[str]
    dropped: list[Dropped] = Field(
        description="Pins left out of the list: deleted since, or written with listed=false since."
    )
    seq: int | None = Field(None, description="The rules write's position in the write log (PUT, DELETE).")


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
    "/v1/articles/{article_id:path}/rules",
    response_model=RulesOut,
    responses={**_errors, **NOT_JSON},
    dependencies=[JsonBody],
)
def put_rules(article_id: WriteId, body: RulesIn, live: LiveDep, metrics: MetricsDep) -> RulesOut:
    """Pin and block articles in this article's list: durable and applied once this returns."""
    snapshot = live.get().snapshot
    _known(snapshot, article_id)
    loaded, logged, _ = live.write([rules_write(article_id, checked(snapshot, article_id, body))])
    metrics.writes.labels("rules").inc()
    return _out(loaded.snapshot, article_id, logged[-1].seq)


@router.get("/v1/articles/{article_id:path}/rules", response_model=RulesOut, responses=_errors)
def get_rules(article_id: WriteId, live: LiveDep) -> RulesOut:
    """The rules of this article's list (none: empty lists), and the pins that no longer apply."""
    snapshot = live.get().snapshot
    _known(snapshot, article_id)
    return _out(snapshot, article_id)


@router.delete("/v1/articles/{article_id:path}/rules", response_model=RulesOut, responses=_errors)
def delete_rules(article_id: WriteId, live: LiveDep, metrics: MetricsDep) -> RulesOut:
    """Clear the rules of this article's list."""
    _known(live.get().snapshot, article_id)
    loaded, logged, _ = live.write([rules_write(article_id, Rules())])
    metrics.writes.labels("rules").inc()
    return _out(loaded.snapshot, article_id, logged[-1].seq)
