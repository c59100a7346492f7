"""Annotated dependencies shared by the routes.

They only read the app's state and the query string, so they are `async`: FastAPI would run a `def`
dependency in the thread pool, one thread hop each, which cost a related request about a millisecond.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from embeddings.articles.article import language_code
from embeddings.errors import InvalidQueryError
from embeddings.index.filters import Filters
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.policy import ListPolicy
from embeddings.settings import LangPolicy, Settings
from service.metrics import Metrics
from service.state import LiveBundle, Loaded

MAX_K = 50


async def _live(request: Request) -> LiveBundle:
    live: LiveBundle = request.app.state.live
    return live


async def _loaded(live: Annotated[LiveBundle, Depends(_live)]) -> Loaded:
    return live.get()


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def _encoders(request: Request) -> SignalEncoders:
    encoders: SignalEncoders = request.app.state.encoders
    return encoders


async def _policy(
    request: Request,
    lang_policy: Annotated[
        LangPolicy | None,
        Query(description="same_first, any, others_first or same_only (default: the service's)."),
    ] = None,
    diversity: Annotated[
        float | None, Query(ge=0, le=1, description="MMR trade-off, 0 (score only) to 1 (novelty only).")
    ] = None,
    window_days: Annotated[
        float | None,
        Query(gt=0, le=36500, description="Only articles within this many days of the query's date."),
    ] = None,
    past_only: Annotated[
        bool | None, Query(description="Only articles published before the query article.")
    ] = None,
    min_score: Annotated[
        float | None,
        Query(ge=-1, le=1, description="Relatedness floor: less related articles are not listed."),
    ] = None,
) -> ListPolicy:
    policy: ListPolicy = request.app.state.policy
    return policy.with_overrides(
        lang_policy=lang_policy,
        diversity=diversity,
        window_days=window_days,
        past_only=past_only,
        min_score=min_score,
    )


async def known_parameters(request: Request) -> None:
    """Refuse query parameters the route does not declare: a misspelt `k` would otherwise change nothing."""
    route: APIRoute = request.scope["route"]
    known = _query_names(route.dependant)  # a walk over a dozen nodes: no need to cache
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidQueryError(
            f"unknown query parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def split_values(values: list[str] | None) -> tuple[str, ...]:
    """Accept both repeated parameters and comma-separated lists."""
    out: list[str] = []
    for value in values or []:
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(dict.fromkeys(out))


async def _filters(
    lang: Annotated[
        list[str] | None, Query(description="Only these languages (repeat or comma-separate).")
    ] = None,
    section: Annotated[list[str] | None, Query(description="Only these sections.")] = None,
    since: Annotated[datetime | None, Query(description="Published at or after (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Published at or before (ISO 8601).")] = None,
) -> Filters:
    return make_filters(lang, section, since, until)


def as_utc(value: datetime | None) -> datetime | None:
    """A date with its zone, naive ones taken as UTC."""
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


def make_filters(
    lang: list[str] | None, section: list[str] | None, since: datetime | None, until: datetime | None
) -> Filters:
    """Filters from request options, with naive dates taken as UTC."""
    since, until = as_utc(since), as_utc(until)
    if since and until and since > until:
        raise InvalidQueryError("since is after until")
    try:
        langs = tuple(language_code(v) for v in split_values(lang))
    except ValueError as exc:
        raise InvalidQueryError(str(exc)) from None
    return Filters(langs=langs, sections=split_values(section), since=since, until=until)


LiveDep = Annotated[LiveBundle, Depends(_live)]
LoadedDep = Annotated[Loaded, Depends(_loaded)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EncodersDep = Annotated[SignalEncoders, Depends(_encoders)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
PolicyDep = Annotated[ListPolicy, Depends(_policy)]
ExplainDep = Annotated[bool, Query(description="Return the parts of each result's score.")]
FiltersDep = Annotated[Filters, Depends(_filters)]
KDep = Annotated[int | None, Query(ge=1, le=MAX_K, description="How many related articles (1 to 50).")]
ExcludeDep = Annotated[list[str] | None, Query(description="Ids never to list (repeat or comma-separate).")]
