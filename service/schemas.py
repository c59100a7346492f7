"""Pydantic request and response models of the HTTP API."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from embeddings.articles.article import (
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    ArticleFields,
    IsoDate,
    VisibleText,
    language_code,
)
from embeddings.index.store import StoredArticle
from embeddings.ranking.finder import Hit
from embeddings.settings import LangPolicy

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
RELATED_SUFFIX = "/related"  # GET /v1/articles/{id}/related: an id ending so could not be read back
# Paths under an article: its list as JSON and as HTML, its story, its rules.
RELATED_SUFFIXES = (RELATED_SUFFIX, "/related.html", "/story", "/rules")
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
        "estimates it) plus the freshness and language terms; higher is closer."
    )
    copies: list[str] = Field(description="Ids of reprints of this article, collapsed into this entry.")
    explain: dict[str, float] | None = Field(
        None,
        description="With explain=true: each signal's cosine, relatedness, freshness, language, and the "
        "redundancy with the results above that diversity weighed against it.",
    )

    @classmethod
    def from_hit(cls, hit: Hit, explain: bool = False) -> RelatedItem:
        """Build from a search hit (article fields are read by name)."""
        own = {"score", "copies", "explain"}
        fields = {name: getattr(hit.article, name) for name in cls.model_fields if name not in own}
        return cls(
            **fields,
            score=round(hit.score, 6),
            copies=list(hit.copies),
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
        description=f"Only these languages (ISO 639-1): a list or 'ar,en', at most {MAX_LANGUAGES}.",
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
    lang_policy: LangPolicy | None = None
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


def readable_id(value: str) -> str:
    """Refuse ids ending in /related, /related.html, /story or /rules: those paths are the article's."""
    for suffix in RELATED_SUFFIXES:
        if value.endswith(suffix):
            raise ValueError(
                f"ids may not end in {suffix!r}: GET /v1/articles/{value} would be the list, story or rules "
                f"of {value.removesuffix(suffix)!r}, so the article could not be read back"
            )
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
