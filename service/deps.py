"""Annotated dependencies shared by the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from embeddings.errors import InvalidQueryError
from embeddings.model import Encoder
from embeddings.settings import Settings
from embeddings.store import Filters
from service.state import LiveBundle, Loaded

MAX_K = 50


def _live(request: Request) -> LiveBundle:
    live: LiveBundle = request.app.state.live
    return live


def _loaded(live: Annotated[LiveBundle, Depends(_live)]) -> Loaded:
    return live.get()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _encoder(request: Request) -> Encoder:
    encoder: Encoder = request.app.state.encoder
    return encoder


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Accept both repeated parameters and comma-separated lists."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


def _filters(
    lang: Annotated[
        list[str] | None, Query(description="Only these languages (repeat or comma-separate).")
    ] = None,
    section: Annotated[list[str] | None, Query(description="Only these sections.")] = None,
    since: Annotated[datetime | None, Query(description="Published at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Published at or before (ISO 8601).")] = None,
) -> Filters:
    return make_filters(lang, section, since, until)


def make_filters(
    lang: list[str] | None, section: list[str] | None, since: datetime | None, until: datetime | None
) -> Filters:
    """Filters from request options, with naive dates taken as UTC."""
    since = since.replace(tzinfo=UTC) if since and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until and until.tzinfo is None else until
    if since and until and since > until:
        raise InvalidQueryError("since is after until")
    langs = tuple(v.lower() for v in split_values(lang))
    return Filters(langs=langs, sections=split_values(section), since=since, until=until)


LiveDep = Annotated[LiveBundle, Depends(_live)]
LoadedDep = Annotated[Loaded, Depends(_loaded)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EncoderDep = Annotated[Encoder, Depends(_encoder)]
FiltersDep = Annotated[Filters, Depends(_filters)]
KDep = Annotated[int | None, Query(ge=1, le=MAX_K, description="How many related articles (1 to 50).")]
ExcludeDep = Annotated[list[str] | None, Query(description="Ids never to list (repeat or comma-separate).")]
