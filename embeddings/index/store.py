"""The SQLite article store: article metadata by id, and the rows that pass a list's filters."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.articles.article import Article
from embeddings.articles.rules import Rules
from embeddings.errors import BundleCorruptError
from embeddings.index.columns import Columns
from embeddings.index.filters import Filters

SCHEMA = """
CREATE TABLE articles (
    rowid INTEGER PRIMARY KEY,      -- the FAISS id
    id TEXT NOT NULL UNIQUE,        -- the publisher's id
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    url TEXT,
    lang TEXT,
    published_at TEXT,              -- ISO 8601 as given
    published_ts REAL,              -- seconds since the epoch, for date filters
    section TEXT,
    keywords TEXT NOT NULL,         -- JSON list
    source TEXT,
    content_hash TEXT NOT NULL,
    image_url TEXT,
    listed INTEGER NOT NULL DEFAULT 1  -- 0: never in another article's list
);
CREATE INDEX articles_lang ON articles(lang);
CREATE INDEX articles_section ON articles(section);
CREATE INDEX articles_published ON articles(published_ts);
CREATE TABLE rules (                -- the editorial rules of lists, folded in from the write log
    id TEXT PRIMARY KEY,            -- the article whose list they rule
    rules TEXT NOT NULL             -- JSON {"pin": [ids], "block": [ids]}
);
"""
_CHUNK = 900
_COLUMNS = "rowid, id, title, body, url, lang, published_at, section, keywords, source, content_hash"
_COLUMNS_3 = _COLUMNS + ", NULL AS image_url, 1 AS listed"
_COLUMNS += ", image_url, listed"
_INSERT = (
    "INSERT INTO articles (rowid, id, title, body, url, lang, published_at, published_ts, section, keywords,"
    " source, content_hash, image_url, listed) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(frozen=True)
class StoredArticle:
    """An article as stored in a bundle, with its FAISS id."""

    rowid: int
    id: str
    title: str
    body: str
    url: str | None
    lang: str | None
    published_at: datetime | None
    section: str | None
    keywords: tuple[str, ...]
    source: str | None
    content_hash: str
    image_url: str | None = None
    listed: bool = True


def _row_to_article(row: tuple[Any, ...]) -> StoredArticle:
    rowid, ident, title, body, url, lang, published, section, keywords, source, digest, image, listed = row
    return StoredArticle(
        rowid=int(rowid),
        id=str(ident),
        title=str(title),
        body=str(body),
        url=url,
        lang=lang,
        published_at=datetime.fromisoformat(str(published)) if published else None,
        section=section,
        keywords=tuple(json.loads(str(keywords))),
        source=source,
        content_hash=str(digest),
        image_url=image,
        listed=bool(listed),
    )


def write_store(
    path: Path, articles: Iterable[tuple[int, Article]], rules: Mapping[str, Rules] | None = None
) -> int:
    """Create a new store at `path` holding (rowid, article) pairs and lists' rules; return the count."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        rows = (
            (
                rowid,
                a.id,
                a.title,
                a.body,
                a.url,
                a.lang,
                a.published_at.isoformat() if a.published_at else None,
                a.published_at.timestamp() if a.published_at else None,
                a.section,
                json.dumps(list(a.keywords), ensure_ascii=False),
                a.source,
                a.content_hash(),
                a.image_url,
                int(a.listed),
            )
            for rowid, a in articles
        )
        with conn:
            conn.executemany(_INSERT, rows)
            conn.executemany(
                "INSERT INTO rules VALUES (?, ?)", [(i, r.to_json()) for i, r in (rules or {}).items()]
            )
        (count,) = conn.execute("SELECT count(*) FROM articles").fetchone()
        return int(count)
    finally:
        conn.close()


class ArticleStore:
    """Read-only access to a bundle's article store, one connection per thread."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise BundleCorruptError(f"article store {path} is missing")
        # One connection, opened now: it keeps the file readable even after a later build prunes
        # this version's directory, so a service still on this bundle goes on answering.
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False
            )
            (self._count,) = self._query("SELECT count(*) FROM articles")[0]
            names = {str(r[1]) for r in self._query("PRAGMA table_info(articles)")}
        except sqlite3.DatabaseError as exc:
            raise BundleCorruptError(f"cannot read the article store {path}: {exc}") from exc
        self._listed = "listed" if "listed" in names else "1"  # a store of bundle format 3
        self._has_rules = bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'rules'"))
        self._rules: dict[str, Rules] | None = None
        self._columns = _COLUMNS if "image_url" in names else _COLUMNS_3

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def __len__(self) -> int:
        return int(self._count)

    def get(self, article_id: str) -> StoredArticle | None:
        """The article with the publisher's id `article_id`, or None."""
        rows = self._query(f"SELECT {self._columns} FROM articles WHERE id = ?", (article_id,))
        return _row_to_article(rows[0]) if rows else None

    def rules_for(self, article_id: str) -> Rules | None:
        """The editorial rules of `article_id`'s list, or None (all of them read at the first call)."""
        if self._rules is None:
            rows = self._query("SELECT id, rules FROM rules") if self._has_rules else []
            self._rules = {str(i): Rules.from_json(str(text)) for i, text in rows}
        return self._rules.get(article_id)

    def rowids_for(self, article_ids: Sequence[str]) -> list[int]:
        """FAISS ids of the given publisher ids (unknown ids are left out)."""
        if not article_ids:
            return []
        marks = ",".join("?" * len(article_ids))
        rows = self._query(f"SELECT rowid FROM articles WHERE id IN ({marks})", list(article_ids))
        return [int(r[0]) for r in rows]

    def urls(self, after: int = 0, limit: int = 10_000) -> list[tuple[int, str]]:
        """(rowid, url) of up to `limit` articles with a URL past row `after`, in row order."""
        # Read in chunks, each under the lock for a moment: a scan of a million rows must not hold it.
        sql = "SELECT rowid, url FROM articles WHERE rowid > ? AND url IS NOT NULL ORDER BY rowid LIMIT ?"
        return [(int(r), str(u)) for r, u in self._query(sql, (after, limit))]

    def with_title(self, words: str, limit: int) -> list[StoredArticle]:
        """Up to `limit` articles whose title holds `words` (ASCII letters in any case), newest first."""
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", words) + "%"
        columns = self._columns.replace(" body,", " '' AS body,")
        sql = (
            f"SELECT {columns} FROM articles WHERE title LIKE ? ESCAPE '\\' "
            "ORDER BY published_ts IS NULL, published_ts DESC, rowid LIMIT ?"
        )
        return [_row_to_article(r) for r in self._query(sql, (pattern, limit))]

    def all_ids(self) -> list[str]:
        """Every publisher id, in FAISS id order."""
        return [str(r[0]) for r in self._query("SELECT id FROM articles ORDER BY rowid")]

    def get_many(self, rowids: Sequence[int], bodies: bool = True) -> dict[int, StoredArticle]:
        """Articles by FAISS id (`bodies=False`: with empty bodies, which lists never show)."""
        columns = self._columns if bodies else self._columns.replace(" body,", " '' AS body,")
        found: dict[int, StoredArticle] = {}
        for start in range(0, len(rowids), _CHUNK):  # SQLite caps the variables of one statement
            # int(): numpy integers would otherwise bind as BLOBs and match nothing.
            params = [int(r) for r in rowids[start : start + _CHUNK]]
            marks = ",".join("?" * len(params))
            rows = self._query(f"SELECT {columns} FROM articles WHERE rowid IN ({marks})", params)
            found.update((int(r[0]), _row_to_article(r)) for r in rows)
        return found

    def columns(self, keys: np.ndarray | None = None) -> Columns:
        """The ranking columns of every article, in FAISS id order (ids run 1..N in a bundle).

        `keys`: the bundle's precomputed [title, content] keys; without them they are computed here
        (some 5 s per million articles).
        """
        text = ", title, content_hash" if keys is None else ""
        with self._lock:
            listed = self._listed
            cursor = self._db.execute(
                f"SELECT rowid, lang, section, published_ts, {listed}{text} FROM articles ORDER BY rowid"
            )
            out = Columns.of_rows(cursor, len(self), keys)
        return out

    def languages(self) -> frozenset[str]:
        """The language codes of the articles ("" for articles without one)."""
        return frozenset(row[0] or "" for row in self._query("SELECT DISTINCT lang FROM articles"))

    def date_range(self) -> tuple[float, float] | None:
        """Epoch seconds of the first and last dated articles (None if no article has a date)."""
        first, last = self._query("SELECT min(published_ts), max(published_ts) FROM articles")[0]
        return None if first is None else (float(first), float(last))

    def eligible(self, filters: Filters) -> np.ndarray:
        """FAISS ids of the articles that pass `filters`."""
        clauses: list[str] = []
        params: list[object] = []
        if filters.langs:
            clauses.append(f"lang IN ({','.join('?' * len(filters.langs))})")
            params.extend(filters.langs)
        if filters.sections:
            clauses.append(f"section IN ({','.join('?' * len(filters.sections))})")
            params.extend(filters.sections)
        if filters.since:
            clauses.append("published_ts >= ?")
            params.append(filters.since.timestamp())
        if filters.until:
            clauses.append("published_ts <= ?")
            params.append(filters.until.timestamp())
        if filters.except_langs:
            marks = ",".join("?" * len(filters.except_langs))
            clauses.append(f"(lang IS NULL OR lang NOT IN ({marks}))")
            params.extend(filters.except_langs)
        if filters.window:
            clauses.append("(published_ts IS NULL OR published_ts BETWEEN ? AND ?)")
            params.extend(filters.window)
        clauses.append(f"{self._listed} = 1")  # eligible: may be listed under another article
        where = " AND ".join(clauses)
        rows = self._query(f"SELECT rowid FROM articles WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def stats(self) -> dict[str, object]:
        """Counts by language and section, and the date range."""
        by_lang = dict(self._query("SELECT coalesce(lang, ''), count(*) FROM articles GROUP BY 1"))
        by_section = dict(self._query("SELECT coalesce(section, ''), count(*) FROM articles GROUP BY 1"))
        first, last = self.date_range() or (None, None)
        dates = {
            name: datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None
            for name, ts in (("first_published", first), ("last_published", last))
        }
        return {"articles": len(self), "by_lang": by_lang, "by_section": by_section, **dates}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
