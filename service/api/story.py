"""`GET /v1/articles/{id}/story`: the articles of an article's story, oldest first, across languages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from embeddings.errors import InvalidQueryError
from embeddings.ranking.story import DEFAULT_LENGTH, MAX_LENGTH, StoryQuery, story_of
from service.deps import (
    ArticleId,
    ExcludeDep,
    FiltersDep,
    LoadedDep,
    SettingsDep,
    excluded_ids,
    known_parameters,
)
from service.errors import responses
from service.schemas import StoryArticle, StoryItem, StoryResponse, json_response

router = APIRouter(tags=["story"])
StoryK = Annotated[
    int | None,
    Query(ge=1, le=MAX_LENGTH, description=f"Most reports (1 to {MAX_LENGTH}; default {DEFAULT_LENGTH})."),
]
Threshold = Annotated[
    float | None,
    Query(ge=0, le=1, description="Relatedness of the same story (default: the scorer's, measured)."),
]


@router.get(
    "/v1/articles/{article_id:id}/story",
    response_model=StoryResponse,
    responses=responses(404, 422, 503),
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
) -> Response:
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
    return json_response(body)
