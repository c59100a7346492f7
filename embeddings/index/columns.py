"""Row columns: what ranking reads of every article (filters, reprint identities, policies), as arrays.

A related list ranks some 66 candidates. Reading their records from SQLite, and comparing their titles
as strings, took most of a list's time; these arrays make that work a few numpy operations, and the
store is read for the listed articles alone.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from embeddings.errors import BundleCorruptError
from embeddings.index.filters import Filters

NO_KEY = 0  # an empty title, or an unknown text: it matches nothing
_NOT_WORD = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """A title reduced to its words, for spotting reprints with different punctuation or case."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


def title_hash(title: str) -> int:
    """A 64-bit key of `title_key(title)`: equal for reprints' titles, NO_KEY for one without words."""
    key = title_key(title)
    if not key:
        return NO_KEY
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little", signed=True) or 1


def content_key(digest: str) -> int:
    """A 64-bit key of an article's content hash (hex): equal for the same title and body."""
    return int(digest[:15], 16) + 1 if digest else NO_KEY


@dataclass(frozen=True)
class Columns:
    """Per-row arrays: language and section (str, "" when unknown), date, title and content keys, listed."""

    lang: np.ndarray  # object
    section: np.ndarray  # object
    ts: np.ndarray  # float64 epoch seconds, NaN when undated
    title: np.ndarray  # int64 title_hash
    content: np.ndarray  # int64 content_key
    listed: np.ndarray  # bool: False for an article never listed under another

    @classmethod
    def empty(cls, n: int) -> Columns:
        """`n` rows of nothing (filled in by the overlay as articles are written)."""
        return cls(
            np.full(n, "", dtype=object),
            np.full(n, "", dtype=object),
            np.full(n, np.nan),
            np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
            np.ones(n, dtype=bool),
        )

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[Any, ...]], count: int, keys: np.ndarray | None = None) -> Columns:
        """Columns of (rowid, lang, section, published_ts, listed[, title, content_hash]) rows, ids 1..count.

        `keys`: precomputed [title, content] keys; without them the rows carry title and content hash.
        """
        out = cls.empty(count)
        shared: dict[str, str] = {}  # one string object per distinct language or section
        seen = 0
        for i, row in enumerate(rows):
            if i >= count or row[0] != i + 1:
                raise BundleCorruptError("the article store's row ids do not run from 1 without gaps")
            lang, section, ts = row[1] or "", row[2] or "", row[3]
            out.lang[i] = shared.setdefault(lang, lang)
            out.section[i] = shared.setdefault(section, section)
            out.ts[i] = np.nan if ts is None else ts
            out.listed[i] = bool(row[4])
            if keys is None:
                out.title[i] = title_hash(row[5])
                out.content[i] = content_key(row[6])
            seen += 1
        if seen != count:
            raise BundleCorruptError(f"the article store has {seen} rows, not {count}")
        if keys is not None:
            out.title[:] = keys[:, 0]
            out.content[:] = keys[:, 1]
        return out

    @staticmethod
    def keys_of(titles: Iterable[str], digests: Iterable[str]) -> np.ndarray:
        """The [title, content] keys of articles, as a bundle stores them."""
        pairs = [(title_hash(t), content_key(d)) for t, d in zip(titles, digests, strict=True)]
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)

    @classmethod
    def concat(cls, parts: Sequence[Columns]) -> Columns:
        """The rows of `parts`, one after the other."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))

    @classmethod
    def merged(cls, pick: np.ndarray, unpicked: Columns, picked: Columns) -> Columns:
        """Rows from `picked` where the mask `pick` is set and from `unpicked` elsewhere, in order."""
        out = cls.empty(len(pick))
        for name in _FIELDS:
            column = getattr(out, name)
            column[~pick] = getattr(unpicked, name)
            column[pick] = getattr(picked, name)
        return out

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, positions: np.ndarray | slice) -> Columns:
        """The rows at `positions`."""
        return Columns(
            self.lang[positions],
            self.section[positions],
            self.ts[positions],
            self.title[positions],
            self.content[positions],
            self.listed[positions],
        )

    def put(
        self,
        at: int,
        lang: str | None,
        section: str | None,
        published_at: datetime | None,
        title: str,
        digest: str,
        listed: bool = True,
    ) -> None:
        """Write row `at`."""
        self.lang[at] = lang or ""
        self.section[at] = section or ""
        self.ts[at] = published_at.timestamp() if published_at else np.nan
        self.title[at] = title_hash(title)
        self.content[at] = content_key(digest)
        self.listed[at] = listed

    def admits(self, filters: Filters) -> np.ndarray:
        """Which rows may be listed and pass `filters` (a missing value fails, as in the store's SQL)."""
        mask = self.listed.copy()
        if filters.langs:
            mask &= _member(self.lang, filters.langs)
        if filters.sections:
            mask &= _member(self.section, filters.sections)
        with np.errstate(invalid="ignore"):
            if filters.since:
                mask &= self.ts >= filters.since.timestamp()
            if filters.until:
                mask &= self.ts <= filters.until.timestamp()
            if filters.window:
                first, last = filters.window
                mask &= np.isnan(self.ts) | ((self.ts >= first) & (self.ts <= last))
        if filters.except_langs:
            mask &= ~_member(self.lang, filters.except_langs)
        return mask


_FIELDS = ("lang", "section", "ts", "title", "content", "listed")


def _member(column: np.ndarray, values: Iterable[str]) -> np.ndarray:
    """Which cells of a str column hold one of `values`, in time linear in the column alone."""
    # np.isin over object arrays compares every cell with every value: on 15,623 rows 0.45 ms for one
    # value, 19 ms for 100 (20 s for 20,000 rows and 95,000); a set look-up per cell takes 0.9-1.2 ms
    # whatever their number. For one or two values the comparisons are cheaper.
    wanted = frozenset(values)
    if len(wanted) <= 2:
        return np.isin(column, list(wanted))
    return np.fromiter((cell in wanted for cell in column), dtype=bool, count=len(column))
