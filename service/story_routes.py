"""`GET /v1/articles/{id}/story`: the articles of an article's story, oldest first, and its models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from embeddings.errors import InvalidQueryError
from embeddings.ranking.story import DEFAULT_LENGTH, MAX_LENGTH, StoryEntry, StoryQuery, story_of
from service.deps import ExcludeDep, FiltersDep, LoadedDep, SettingsDep, excluded_ids, known_parameters
from service.routes import ArticleId
from service.schemas import ErrorResponse

router = APIRouter()


class StoryArticle(BaseModel):
    """The article whose story it is."""

    id: str
    title: str
    url: str | None


class StoryItem(BaseModel):
    """One report of the story."""

    id: str
    title: str
    url: str | None
    lang: str | None
    published_at: datetime | None
    section: str | None
    source: str | None
    image_url: str | None
    relatedness: float = Field(
        description="The scorer's relatedness to the article (0 unrelated to 1 same story; 1 for the "
        "article itself), at or above the threshold."
    )
    first_report: bool = Field(description="True on the story's earliest dated report.")
    copies: list[str] = Field(description="Ids of its republished copies, collapsed into this entry.")

    @classmethod
    def from_entry(cls, entry: StoryEntry) -> StoryItem:
        """Build from a story entry (article fields are read by name)."""
        own = {"relatedness", "first_report", "copies"}
        fields = {name: getattr(entry.article, name) for name in cls.model_fields if name not in own}
        return cls(
            **fields,
            relatedness=round(entry.relatedness, 6),
            first_report=entry.first_report,
            copies=list(entry.copies),
        )


class StoryResponse(BaseModel):
    """A story: the article and the reports of its story, oldest first (undated ones last)."""

    article: StoryArticle
    threshold: float = Field(description="The relatedness at or above which an article is of the story.")
    story: list[StoryItem]
    bundle: str = Field(description="Version of the bundle that answered.")
    scorer: str = Field(description="Name of the scorer that gave the relatedness.")


_errors: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown article id."},
    422: {"model": ErrorResponse, "description": "Invalid parameters."},
    503: {"model": ErrorResponse, "description": "No bundle loaded yet."},
}
StoryK = Annotated[
    int | None,
    Query(ge=1, le=MAX_LENGTH, description=f"Most reports (1 to {MAX_LENGTH}; default {DEFAULT_LENGTH})."),
]
Threshold = Annotated[
    float | None,
    Query(ge=0, le=1, description="Relatedness of the same story (default: the scorer's, measured)."),
]


@router.get(
    "/v1/articles/{article_id:path}/story",
    response_model=StoryResponse,
    responses=_errors,
    dependencies=[Depends(known_parameters)],
)
def story_for_article(
    article_id: ArticleId,
    loaded: LoadedDep,
    settings: SettingsDep,
    filters: FiltersDep,
    k: StoryK = None,
    threshold: Threshold = None,
    exclude: ExcludeDep = None,
) -> JSONResponse:
    """The articles of the same story as the article, itself included, oldest first, across languages."""
    scorer = loaded.finder.scorer
    cut = threshold if threshold is not None else scorer.config.story_threshold
    if cut is None:
        raise InvalidQueryError(f"scorer {scorer.name!r} has no story threshold: pass threshold=")
    query = StoryQuery(
        threshold=cut,
        k=k or DEFAULT_LENGTH,
        filters=filters,
        exclude=excluded_ids(exclude),
        window_days=settings.window_days,
    )
    story = story_of(loaded.finder, article_id, query)
    body = StoryResponse(
        article=StoryArticle(id=story.article.id, title=story.article.title, url=story.article.url),
        threshold=story.threshold,
        story=[StoryItem.from_entry(e) for e in story.entries],
        bundle=loaded.bundle.version,
        scorer=scorer.name,
    )
    return JSONResponse(body.model_dump(mode="json"))
