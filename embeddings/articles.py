"""The Article model and the readers for JSON Lines and CSV archives, with row-level validation."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from embeddings.errors import InputError, RowError
from embeddings.text import content_hash

MAX_ID_LENGTH = 256
MIN_YEAR, MAX_YEAR = 1000, 9998
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LANG = re.compile(r"^[a-z]{2}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
FIELDS = ("id", "title", "body", "url", "lang", "published_at", "section", "keywords", "source")


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


class ArticleFields(BaseModel):
    """An article's fields but its id: `title` is required."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    title: str = Field(min_length=1)
    body: str = ""
    url: str | None = None
    lang: str | None = None
    published_at: datetime | None = None
    section: str | None = None
    keywords: tuple[str, ...] = ()
    source: str | None = None

    @field_validator("lang")
    @classmethod
    def _iso_639_1(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return language_code(value)

    @field_validator("published_at", mode="before")
    @classmethod
    def _iso_8601_only(cls, value: Any) -> Any:
        # Pydantic would read a bare number ("2026", 1700000000) as seconds since 1970.
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
            raise ValueError(f"published_at must be an ISO 8601 date, got {value!r}")
        return value.strip()

    @field_validator("published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
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
            raise ValueError(f"published_at must fall in the years {MIN_YEAR} to {MAX_YEAR}")
        return value

    @field_validator("url", "section", "source", mode="before")
    @classmethod
    def _empty_is_missing(cls, value: Any) -> Any:
        return None if value == "" else value

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


@dataclass
class ReadResult:
    """Valid articles of one input and the rows that were not."""

    articles: list[Article] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    rows_read: int = 0


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark.
    return path.open(encoding="utf-8-sig", newline="")


def detect_format(path: Path) -> str:
    """'jsonl' or 'csv', from the file name (a trailing .gz is allowed)."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    raise InputError(f"{path}: unknown input format (expected .jsonl, .ndjson or .csv, optionally .gz)")


@dataclass(frozen=True)
class BadRow:
    """A row that could not even be parsed: its error and its raw text."""

    message: str
    raw: str


RawRow = dict[str, Any] | BadRow


def _jsonl_rows(handle: TextIO) -> Iterator[tuple[int, RawRow]]:
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield line_no, BadRow(f"not valid JSON ({exc.msg} at column {exc.colno})", line.rstrip("\r\n"))
            continue
        if isinstance(row, dict):
            yield line_no, row
        else:
            yield line_no, BadRow(f"expected a JSON object, got {type(row).__name__}", line.rstrip("\r\n"))


def _csv_rows(handle: TextIO, delimiter: str) -> Iterator[tuple[int, RawRow]]:
    # The plain reader returns blank lines as empty rows, so the line count stays exact.
    reader = csv.reader(handle, delimiter=delimiter)
    header: list[str] | None = None
    start = 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if len(cells) > len(header):
            message = f"{len(cells) - len(header)} more cell(s) than the header has columns"
            yield line, BadRow(message, delimiter.join(cells))
            continue
        yield line, dict(zip(header, cells, strict=False))


def iter_rows(path: Path) -> Iterator[tuple[int, RawRow]]:
    """Yield (line number, raw row) or (line number, error message) for every row of `path`."""
    fmt = detect_format(path)
    try:
        with _open_text(path) as handle:
            if fmt == "jsonl":
                yield from _jsonl_rows(handle)
            else:
                delimiter = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
                yield from _csv_rows(handle, delimiter)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_field_map(spec: str | None) -> dict[str, str]:
    """Parse 'body=content,published_at=date' into {'body': 'content', ...}."""
    if not spec:
        return {}
    mapping: dict[str, str] = {}
    for pair in spec.split(","):
        ours, sep, theirs = pair.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs:
            raise InputError(f"bad field map entry {pair!r}: expected FIELD=COLUMN")
        if ours not in FIELDS:
            raise InputError(f"bad field map entry {pair!r}: {ours!r} is not one of {', '.join(FIELDS)}")
        mapping[ours] = theirs
    return mapping


def _apply_field_map(row: Mapping[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    data = dict(row)
    for ours, theirs in field_map.items():
        if theirs in row:
            data[ours] = row[theirs]
    return data


def input_files(path: Path) -> list[Path]:
    """`path` itself, or the JSONL/CSV files (optionally .gz) directly inside a directory, sorted."""
    if not path.is_dir():
        return [path]
    found = []
    for child in sorted(path.iterdir()):
        try:
            detect_format(child)
        except InputError:
            continue
        found.append(child)
    if not found:
        raise InputError(f"{path}: no .jsonl, .ndjson or .csv files (optionally .gz) in this directory")
    return found


def read_articles(path: Path, field_map: Mapping[str, str] | None = None) -> ReadResult:
    """Read and validate every row of `path` (a file or a directory of files); bad rows become RowErrors."""
    result = ReadResult()
    first_seen: dict[str, str] = {}
    unseen = set((field_map or {}).values())
    for file in input_files(path):
        for line_no, row in iter_rows(file):
            result.rows_read += 1
            where = {"file": str(file), "line": line_no}
            if isinstance(row, BadRow):
                result.errors.append(RowError(line_no, row.message, str(file)))
                result.rejected_rows.append({**where, "error": row.message, "raw": row.raw})
                continue
            if unseen:
                unseen.difference_update(row.keys())
            try:
                article = Article.model_validate(_apply_field_map(row, field_map or {}))
            except (ValidationError, ValueError) as exc:
                message = _describe(exc) if isinstance(exc, ValidationError) else str(exc)
                result.errors.append(RowError(line_no, message, str(file)))
                result.rejected_rows.append({**where, "error": message, "row": row})
                continue
            if article.id in first_seen:
                message = f"duplicate id {article.id!r} (first at {first_seen[article.id]})"
                result.errors.append(RowError(line_no, message, str(file)))
                result.rejected_rows.append({**where, "error": message, "row": row})
                continue
            first_seen[article.id] = f"{file.name}:line {line_no}"
            result.articles.append(article)
    if unseen and result.rows_read:
        raise InputError(f"{path}: --field-map names column(s) no row has: {', '.join(sorted(unseen))}")
    return result
