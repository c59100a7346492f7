"""Readers of JSON Lines and CSV archives (optionally gzipped), with row-level validation."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from embeddings.articles.article import FIELDS, Article
from embeddings.errors import InputError, RowError


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
