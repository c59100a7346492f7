"""Finding an article by what a page knows of it: the related list by URL, and a search of titles."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from embeddings.errors import InvalidQueryError
from embeddings.index.store import StoredArticle
from embeddings.live.lookup import with_title
from service.deps import LoadedDep, MetricsDep, SettingsDep, known_parameters
from service.lists import OptionsDep, UrlFinderDep, UrlQuery, article_at, related_list
from service.schemas import ErrorResponse, RelatedResponse

router = APIRouter()
MIN_SEARCH = 3  # characters: shorter words match too much of a large corpus to be worth a scan
MAX_SEARCH = 200
_errors: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No article at that URL."},
    422: {"model": ErrorResponse, "description": "Invalid parameters."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet."},
}


@router.get(
    "/v1/related",
    response_model=RelatedResponse,
    responses=_errors,
    dependencies=[Depends(known_parameters)],
)
def related_for_url(
    url: UrlQuery,
    loaded: LoadedDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    finder: UrlFinderDep,
    options: OptionsDep,
) -> JSONResponse:
    """The related list of the article at `url`, as `GET /v1/articles/{id}/related` answers it."""
    article = article_at(finder, loaded, url)
    _, _, response = related_list(loaded, settings, metrics, article.id, options)
    return JSONResponse(response.model_dump(mode="json"))


class Found(BaseModel):
    """An article whose title matched."""

    id: str
    title: str
    url: str | None
    lang: str | None
    published_at: datetime | None
    section: str | None
    image_url: str | None
    listed: bool

    @classmethod
    def of(cls, article: StoredArticle) -> Found:
        """Build from a stored article."""
        return cls(**{name: getattr(article, name) for name in cls.model_fields})


class SearchResponse(BaseModel):
    """Articles whose title holds the words searched for."""

    query: str
    results: list[Found] = Field(
        description="The articles written since the bundle first, then the bundle's, newest first."
    )
    bundle: str


@router.get(
    "/v1/search",
    response_model=SearchResponse,
    responses={422: _errors[422], 503: _errors[503]},
    dependencies=[Depends(known_parameters)],
)
def search_titles(
    loaded: LoadedDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_SEARCH,
            description=f"Words of the title, as written (at least {MIN_SEARCH} characters; ASCII "
            "letters in any case).",
        ),
    ],
    k: Annotated[int, Query(ge=1, le=50, description="How many articles, at most (1 to 50).")] = 10,
) -> SearchResponse:
    """Articles whose title holds `q` (a scan of the titles: for people, not for every page view)."""
    words = " ".join(q.split())
    if len(words) < MIN_SEARCH:
        raise InvalidQueryError(f"q needs at least {MIN_SEARCH} characters, got {len(words)}")
    found = with_title(loaded.snapshot, words, k)
    return SearchResponse(query=words, results=[Found.of(a) for a in found], bundle=loaded.bundle.version)
