"""The Article model: a news article as the publisher gives it, validated field by field."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
)

from embeddings.articles.text import content_hash

MAX_ID_LENGTH = 256
MIN_YEAR, MAX_YEAR = 1000, 9998
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LANG = re.compile(r"^[a-z]{2}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
FIELDS = (
    "id",
    "title",
    "body",
    "url",
    "lang",
    "published_at",
    "section",
    "keywords",
    "source",
    "image_url",
    "listed",
)
# The longest address (characters) of an article or its picture: one limit for writes, archives and
# lookups by URL, so that whatever is written can be found by its address.
MAX_URL_LENGTH = 4096
_WEB_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


# ISO 639-1: the two-letter codes a `lang` may take.
_ISO_639_1 = (
    "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de "
    "dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia "
    "id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo "
    "lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl "
    "ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk "
    "tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu "
)
LANGUAGES = frozenset(_ISO_639_1.split())


def language_code(value: str) -> str:
    """The lower-cased ISO 639-1 code, or ValueError for anything else."""
    code = value.strip().lower()
    if not _LANG.match(code) or code not in LANGUAGES:
        raise ValueError(f"lang must be an ISO 639-1 language code (e.g. 'ar', 'en'), got {value!r}")
    return code


def iso_8601(value: Any) -> Any:
    """ISO 8601 text or a datetime, else ValueError; None and "" mean no date."""
    # Pydantic would read a bare number ("2026", 1700000000) as seconds since 1970.
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        raise ValueError(f"must be an ISO 8601 date (e.g. 2026-03-20T10:00:00+03:00), got {value!r}")
    return value.strip()


def in_year_range(value: datetime | None) -> datetime | None:
    """`value` with a naive time taken as UTC, if it falls in the years MIN_YEAR to MAX_YEAR."""
    # Naive timestamps are taken as UTC so that every stored date compares with every other.
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not MIN_YEAR <= year <= MAX_YEAR:  # dates must convert to and from epoch seconds anywhere
        raise ValueError(f"dates must fall in the years {MIN_YEAR} to {MAX_YEAR}")
    return value


# A date as articles, previews and filters take it: ISO 8601 only, zone-aware, years 1000 to 9998.
IsoDate = Annotated[datetime | None, BeforeValidator(iso_8601), AfterValidator(in_year_range)]
_INVISIBLE = frozenset({"Cc", "Cf"})  # controls and format characters (zero-width spaces, BOM, marks)


def visible_text(value: str) -> str:
    """`value`, if it has a character that shows: not only spaces and zero-width or format characters."""
    if not any(not ch.isspace() and unicodedata.category(ch) not in _INVISIBLE for ch in value):
        raise ValueError("must have a visible character, not only spaces or zero-width characters")
    return value


VisibleText = Annotated[str, AfterValidator(visible_text)]


class ArticleFields(BaseModel):
    """An article's fields but its id: `title` is required."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    title: VisibleText = Field(min_length=1)
    body: str = ""
    url: str | None = Field(None, max_length=MAX_URL_LENGTH)
    lang: str | None = None
    published_at: IsoDate = None
    section: str | None = None
    keywords: tuple[str, ...] = ()
    source: str | None = None
    image_url: str | None = Field(None, max_length=MAX_URL_LENGTH)
    listed: bool = True  # False: readable, with a list of its own, but never in another article's list

    @field_validator("lang")
    @classmethod
    def _iso_639_1(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return language_code(value)

    @field_validator("url", "section", "source", "image_url", mode="before")
    @classmethod
    def _empty_is_missing(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("image_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not _WEB_URL.match(value):
            raise ValueError("image_url must be an absolute http:// or https:// address")
        return value

    @field_validator("listed", mode="before")
    @classmethod
    def _missing_is_listed(cls, value: Any) -> Any:
        return True if value is None or value == "" else value

    @field_validator("body", mode="before")
    @classmethod
    def _missing_body_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_list(cls, value: Any) -> Any:
        if value is None or value == "":
            return ()
        if isinstance(value, str):
            # CSV cells carry keywords as a JSON list or as text separated by ';' or ','.
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else re.split(r"[;,،]", text)
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() for v in value if str(v).strip())
        return value


class Article(ArticleFields):
    """A news article as the publisher gives it; `id` and `title` are required."""

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)

    @field_validator("id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("id contains control characters")
        return value

    _hashed: tuple[str, str | None, str] | None = PrivateAttr(default=None)  # title, body, their hash

    def content_hash(self) -> str:
        """SHA-256 of what is embedded (title and body), the embedding cache's key.

        Computed once per title and body: a build asks for it once per signal and again for the store.
        """
        hashed = self._hashed
        # `is`: a copy with another title or body (model_copy keeps private attributes) is hashed anew.
        if hashed is None or hashed[0] is not self.title or hashed[1] is not self.body:
            hashed = self._hashed = (self.title, self.body, content_hash(self.title, self.body))
        return hashed[2]
