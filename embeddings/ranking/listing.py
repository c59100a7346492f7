"""What a related list is asked with and made of: the query, the origin article, hits, the listing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from embeddings.errors import InvalidQueryError
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle
from embeddings.ranking.policy import ListPolicy


@dataclass(frozen=True)
class RelatedQuery:
    """What a caller asks of a related list."""

    k: int = 4
    filters: Filters = field(default_factory=Filters)
    exclude: tuple[str, ...] = ()
    policy: ListPolicy = field(default_factory=ListPolicy)

    def __post_init__(self) -> None:
        if self.filters.since and self.filters.until and self.filters.since > self.filters.until:
            raise InvalidQueryError("since is after until")


@dataclass(frozen=True)
class Hit:
    """One related article, its score, the parts of that score and the reprints collapsed into it.

    `other_language`: it fills a list that its reader's languages left short (see ListPolicy.passes).
    """

    article: StoredArticle
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    copies: tuple[str, ...] = ()
    other_language: bool = False


@dataclass(frozen=True)
class Listing:
    """A related list, and the query's own republished copies that it leaves out."""

    hits: list[Hit]
    copies: tuple[str, ...] = ()
    # What a write can change (see Pool): the rows the candidates came from, the cosine to enter them,
    # and the languages an article must be in to enter them (None: any language, or none).
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reach: float = -np.inf
    langs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Origin:
    """The query article: its identity (kept out of its own list, with its copies), date and language."""

    rowid: int | None = None
    content_hash: str | None = None
    title: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    signature: np.ndarray | None = None  # reprint signature of its words
