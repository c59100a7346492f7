"""Annotated dependencies shared by the routes.

They only read the app's state and the query string, so they are `async`: FastAPI would run a `def`
dependency in the thread pool, one thread hop each, which cost a related request about a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

from embeddings.articles.article import MAX_ID_LENGTH, IsoDate, language_code
from embeddings.errors import InvalidQueryError, UnsupportedMediaTypeError
from embeddings.index.filters import Filters
from embeddings.live.corpus import LiveCorpus
from embeddings.live.list_cache import ListCache
from embeddings.live.loaded import Loaded
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.policy import ListPolicy
from embeddings.settings import LangPolicyValue, Settings
from service.metrics import Metrics
from service.schemas import ID_PATTERN, MAX_EXCLUDE, MAX_K, MAX_LANGUAGES, MAX_SECTION_LENGTH, MAX_SECTIONS


class IdSegment(Convertor[str]):
    """An article id as one path segment: a `/` in it comes percent-encoded (see guards.SegmentPaths)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        """The id (the path keeps only `%2F` and `%25` encoded in a segment)."""
        return unquote(value)

    def to_string(self, value: str) -> str:
        """The segment of an id."""
        return quote(value, safe="")


# Routes compile their paths when declared: the convertor is known before any route module is read.
register_url_convertor("id", IdSegment())
ArticleId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=ID_PATTERN,
        description="The publisher's article id (no control characters); a `/` in it is sent as `%2F`.",
    ),
]


async def _corpus(request: Request) -> LiveCorpus:
    corpus: LiveCorpus = request.app.state.corpus
    return corpus


async def _lists(request: Request) -> ListCache:
    lists: ListCache = request.app.state.lists
    return lists


async def _loaded(request: Request, corpus: Annotated[LiveCorpus, Depends(_corpus)]) -> Loaded:
    # Applying other processes' writes takes locks: in the thread pool, and only when there are some.
    loaded = await run_in_threadpool(corpus.snapshot) if corpus.behind() else corpus.snapshot(catch_up=False)
    request.state.loaded = loaded  # which bundle the request reads, should its store fail under it
    return loaded


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
        LangPolicyValue | None,
        Query(
            description="same (only the list's languages), same_then_other (they first; others fill a "
            "short list) or any (default: the service's)."
        ),
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


async def json_body(request: Request) -> None:
    """Refuse a body that is not sent as JSON (415): FastAPI would leave it unparsed and answer 422."""
    given = request.headers.get("content-type", "")
    message = Message()
    message["content-type"] = given
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        shown = f"{given!r}" if given else "none"
        raise UnsupportedMediaTypeError(
            f"the body must be JSON, sent with Content-Type: application/json (Content-Type: {shown})"
        )


def split_values(values: Iterable[str] | None, name: str, most: int, longest: int) -> tuple[str, ...]:
    """Distinct values of repeated and comma-separated options; at most `most`, of `longest` characters."""
    out: dict[str, None] = {}
    for value in values or ():
        for part in value.split(","):
            part = part.strip()
            if len(part) > longest:
                raise InvalidQueryError(f"{name} values are at most {longest} characters, got {len(part)}")
            if part:
                out[part] = None
                if len(out) > most:
                    raise InvalidQueryError(f"{name} takes at most {most} values")
    return tuple(out)


def excluded_ids(values: Iterable[str] | None) -> tuple[str, ...]:
    """The `exclude` option's ids, within its caps."""
    return split_values(values, "exclude", MAX_EXCLUDE, MAX_ID_LENGTH)


async def _filters(
    lang: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_LANGUAGES,
            description=f"Languages (repeat or comma-separate; at most {MAX_LANGUAGES}): a related "
            "list's own, instead of the article's (lang_policy says whether others fill it); a story's only.",
        ),
    ] = None,
    section: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_SECTIONS,
            description=f"Only these sections (at most {MAX_SECTIONS}, of {MAX_SECTION_LENGTH} characters).",
        ),
    ] = None,
    since: Annotated[IsoDate, Query(description="Published at or after (ISO 8601).")] = None,
    until: Annotated[IsoDate, Query(description="Published at or before (ISO 8601).")] = None,
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
    # A language code has two letters: longer values fail language_code below, with its message.
    given = split_values(lang, "lang", MAX_LANGUAGES, MAX_SECTION_LENGTH)
    try:
        langs = tuple(dict.fromkeys(language_code(v) for v in given))
    except ValueError as exc:
        raise InvalidQueryError(str(exc)) from None
    sections = split_values(section, "section", MAX_SECTIONS, MAX_SECTION_LENGTH)
    return Filters(langs=langs, sections=sections, since=since, until=until)


CorpusDep = Annotated[LiveCorpus, Depends(_corpus)]
ListCacheDep = Annotated[ListCache, Depends(_lists)]
LoadedDep = Annotated[Loaded, Depends(_loaded)]
SettingsDep = Annotated[Settings, Depends(_settings)]
EncodersDep = Annotated[SignalEncoders, Depends(_encoders)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
PolicyDep = Annotated[ListPolicy, Depends(_policy)]
ExplainDep = Annotated[bool, Query(description="Return the parts of each result's score.")]
FiltersDep = Annotated[Filters, Depends(_filters)]
KDep = Annotated[int | None, Query(ge=1, le=MAX_K, description="How many related articles (1 to 50).")]
ExcludeDep = Annotated[
    list[str] | None,
    Query(
        max_length=MAX_EXCLUDE,
        description=f"Ids never to list (repeat or comma-separate; at most {MAX_EXCLUDE}).",
    ),
]
JsonBody = Depends(json_body)
