"""Pydantic request and response models of the HTTP API: every model a route reads or answers."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from embeddings.articles.article import (
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    ArticleFields,
    IsoDate,
    VisibleText,
    language_code,
)
from embeddings.articles.rules import MAX_BLOCKS, MAX_PINS
from embeddings.index.store import StoredArticle
from embeddings.ranking.finder import Hit
from embeddings.ranking.story import StoryEntry
from embeddings.settings import LangPolicyValue

# Caps on a request's lists, far above what a publisher sends (the sample corpus: 9 sections, at most 4
# keywords of at most 23 characters): past them, 422. Unbounded, 95,000 sections cost 1.2-7.2 s of
# filtering per request.
MAX_K = 50
MAX_LANGUAGES = 50  # `lang` values
MAX_SECTIONS = 100  # `section` values
MAX_SECTION_LENGTH = 256  # characters of a section, stored or filtered by
MAX_EXCLUDE = 1000  # `exclude` ids (each at most MAX_ID_LENGTH characters)
MAX_KEYWORDS = 100  # keywords of a written article
MAX_KEYWORD_LENGTH = 200  # characters of a keyword
ExcludedId = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH)]
Keyword = Annotated[str, StringConstraints(max_length=MAX_KEYWORD_LENGTH)]


class ArticleRef(BaseModel):
    """The article a list was made for."""

    id: str
    title: str
    url: str | None
    copies: list[str] = Field(
        default_factory=list,
        description="Ids of its own republished copies (nearly all of one text in the other), which "
        "the list leaves out.",
    )


class RelatedItem(BaseModel):
    """One related article."""

    id: str
    title: str
    url: str | None
    published_at: datetime | None
    lang: str | None
    section: str | None
    image_url: str | None
    score: float = Field(
        description="Relatedness to the query article (0 unrelated to 1 same story, as the scorer "
        "estimates it) plus the freshness term; higher is closer. An entry with copies has the best "
        "score of its group."
    )
    copies: list[str] = Field(
        description="Ids of reprints of this article, collapsed into this entry (it is their original)."
    )
    other_language: bool = Field(
        False,
        description="True: in another language than the list's, filling a list that its own languages "
        "left short (lang_policy same_then_other).",
    )
    explain: dict[str, float] | None = Field(
        None,
        description="With explain=true: each signal's cosine, relatedness, freshness, and the "
        "redundancy with the results above that diversity weighed against it.",
    )

    @classmethod
    def from_hit(cls, hit: Hit, explain: bool = False) -> RelatedItem:
        """Build from a search hit (article fields are read by name)."""
        own = {"score", "copies", "other_language", "explain"}
        fields = {name: getattr(hit.article, name) for name in cls.model_fields if name not in own}
        return cls(
            **fields,
            score=round(hit.score, 6),
            copies=list(hit.copies),
            other_language=hit.other_language,
            explain=dict(hit.parts) if explain else None,
        )


class ListRules(BaseModel):
    """The editorial rules a list was made with (see PUT /v1/articles/{id}/rules)."""

    pin: list[str] = Field(description="Pinned ids, in order (those deleted or unlisted since are left out).")
    block: list[str] = Field(description="Ids kept out of the list.")


class RelatedResponse(BaseModel):
    """A related list."""

    article: ArticleRef | None = Field(description="The query article (null for a preview).")
    related: list[RelatedItem]
    bundle: str = Field(description="Version of the bundle that answered.")
    scorer: str = Field(description="Name of the scorer that ranked the list.")
    rules: ListRules | None = Field(
        None, description="With explain=true, for an article's list: the editorial rules applied to it."
    )


class ArticleOut(BaseModel):
    """A stored article."""

    id: str
    title: str
    body: str
    url: str | None
    lang: str | None
    published_at: datetime | None
    section: str | None
    keywords: list[str]
    source: str | None
    image_url: str | None
    listed: bool = Field(description="False: never listed under another article (it has its own list).")

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def from_stored(cls, a: StoredArticle) -> ArticleOut:
        """Build from a stored article (fields are read by name)."""
        return cls.model_validate(a)


class PreviewRequest(BaseModel):
    """An article not indexed yet (a CMS preview) and the list options."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: VisibleText = Field(min_length=1, max_length=2000)
    body: str = Field("", max_length=200_000)
    id: str | None = Field(
        None, max_length=MAX_ID_LENGTH, description="Its id, if it has one, to keep it out."
    )
    # Strict numbers: JSON's `true` is not 1.
    k: int | None = Field(None, ge=1, le=MAX_K, strict=True)
    lang: list[str] | None = Field(
        None,
        max_length=MAX_LANGUAGES,
        description=f"The list's languages instead of `language` (ISO 639-1): a list or 'ar,en', at most "
        f"{MAX_LANGUAGES}; lang_policy says whether others fill it.",
    )
    section: list[str] | None = Field(
        None,
        max_length=MAX_SECTIONS,
        description=f"Only these sections: a list or 'a,b', at most {MAX_SECTIONS} "
        f"of at most {MAX_SECTION_LENGTH} characters.",
    )
    since: IsoDate = Field(None, description="Published at or after (ISO 8601).")
    until: IsoDate = Field(None, description="Published at or before (ISO 8601).")
    exclude: list[ExcludedId] = Field(default_factory=list, max_length=MAX_EXCLUDE)
    language: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2}$",
        description="The article's own language (ISO 639-1), for the language policy.",
    )
    published_at: IsoDate = Field(None, description="Its publication date, for the date policies.")
    lang_policy: LangPolicyValue | None = Field(
        None, description="same, same_then_other or any (default: the service's)."
    )
    diversity: float | None = Field(None, ge=0, le=1, strict=True)
    window_days: float | None = Field(None, gt=0, le=36500, strict=True)
    past_only: bool | None = None
    min_score: float | None = Field(None, ge=-1, le=1, strict=True, description="Relatedness floor.")
    explain: bool = False

    @field_validator("language")
    @classmethod
    def _iso_639_1(cls, value: str | None) -> str | None:
        return language_code(value) if value else None

    @field_validator("lang", "section", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters


def unpadded_id(value: str) -> str:
    """Refuse ids with leading or trailing whitespace: stored ids are stripped, so the id would change."""
    if value != value.strip():
        raise ValueError(f"ids may not start or end with whitespace: {value!r}")
    return value


class ArticleIn(ArticleFields):
    """An article to index (its id is in the path)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    title: VisibleText = Field(min_length=1, max_length=2000)
    body: str = Field("", max_length=200_000)
    url: str | None = Field(None, max_length=MAX_URL_LENGTH)
    lang: str | None = Field(None, description="ISO 639-1 code, e.g. 'ar'.")
    published_at: IsoDate = Field(None, description="ISO 8601; naive times are taken as UTC.")
    section: str | None = Field(None, max_length=MAX_SECTION_LENGTH)
    keywords: tuple[Keyword, ...] = Field(
        (),
        max_length=MAX_KEYWORDS,
        description=f"At most {MAX_KEYWORDS}, of {MAX_KEYWORD_LENGTH} characters.",
    )
    source: str | None = Field(None, max_length=256)
    image_url: str | None = Field(None, max_length=MAX_URL_LENGTH, description="Its picture (http or https).")
    listed: bool = Field(True, description="False: readable, with its own list, never listed under another.")

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_list(cls, value: Any) -> Any:
        # Replaces the archive readers' leniency (a CSV cell split at commas): JSON has lists.
        if value is not None and not isinstance(value, list | tuple):
            raise ValueError("keywords must be a list of strings")
        return () if value is None else value


class BatchArticle(ArticleIn):
    """An article to index, with its id."""

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)

    @field_validator("id", mode="before")
    @classmethod
    def _unpadded(cls, value: Any) -> Any:
        return unpadded_id(value) if isinstance(value, str) else value


class BatchRequest(BaseModel):
    """Writes applied together: every one of them, or none."""

    model_config = ConfigDict(extra="forbid")

    upsert: list[BatchArticle] = Field(default_factory=list, description="Articles to insert or replace.")
    delete: list[
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]
    ] = Field(default_factory=list, description="Ids to delete.")

    @field_validator("delete")
    @classmethod
    def _unpadded(cls, value: list[str]) -> list[str]:
        return [unpadded_id(v) for v in value]

    @model_validator(mode="after")
    def _distinct_ids(self) -> BatchRequest:
        ids = [a.id for a in self.upsert] + list(self.delete)
        if not ids:
            raise ValueError("a batch needs at least one upsert or delete")
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        if repeated:
            raise ValueError(f"ids appear more than once in the batch: {repeated[:10]}")
        return self


class WriteOut(BaseModel):
    """One acknowledged write: it is on disk and visible in every list."""

    id: str
    op: Literal["put", "delete"]
    seq: int = Field(description="Its position in the write log.")
    existed: bool = Field(description="Whether the id was in the index before this write.")


class WriteResponse(WriteOut):
    """An acknowledged write and the live index it went into."""

    bundle: str
    writes_pending: int = Field(description="Writes not yet folded into a bundle by a rebuild.")


class BatchResponse(BaseModel):
    """Acknowledged writes of one batch, in order: upserts, then deletes."""

    results: list[WriteOut]
    bundle: str
    writes_pending: int


class ErrorBody(BaseModel):
    """The one error shape."""

    code: str
    message: str
    details: list[Any] | None = None


class ErrorResponse(BaseModel):
    """Every error response."""

    error: ErrorBody


class Health(BaseModel):
    """Liveness."""

    status: str


class Readiness(BaseModel):
    """Readiness: a bundle is loaded."""

    status: str
    bundle: str | None
    articles: int | None = Field(description="Articles served: the bundle's, with the writes since.")
    last_error: str | None


class IndexInfo(BaseModel):
    """The loaded bundle's manifest and counts."""

    version: str
    path: str
    loaded_at: datetime
    manifest: dict[str, Any]
    stats: dict[str, Any] = Field(description="The bundle's counts.")
    writes: dict[str, int] = Field(
        description="Writes since the bundle: pending (not folded in yet), last_seq, and the articles served."
    )


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


RuledId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


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


def json_response(model: BaseModel) -> Response:
    """The one way a route answers JSON: the model as FastAPI would send it, not validated once more."""
    return JSONResponse(model.model_dump(mode="json"))
