"""A search of titles, for the console: finding an article by what a person remembers of it."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from embeddings.errors import InvalidQueryError
from embeddings.live.lookup import with_title
from service.deps import LoadedDep, known_parameters
from service.errors import responses
from service.schemas import Found, SearchResponse, json_response

router = APIRouter(tags=["search"])
MIN_SEARCH = 3  # characters: shorter words match too much of a large corpus to be worth a scan
MAX_SEARCH = 200


@router.get(
    "/v1/search",
    response_model=SearchResponse,
    responses=responses(422, 503),
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
) -> Response:
    """Articles whose title holds `q` (a scan of the titles: for people, not for every page view)."""
    control = next((c for c in q if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        raise InvalidQueryError(f"q may not hold control characters, got U+{ord(control):04X}")
    words = " ".join(q.split())
    if len(words) < MIN_SEARCH:
        raise InvalidQueryError(f"q needs at least {MIN_SEARCH} characters, got {len(words)}")
    found = with_title(loaded.snapshot, words, k)
    return json_response(
        SearchResponse(query=words, results=[Found.of(a) for a in found], bundle=loaded.bundle.version)
    )
