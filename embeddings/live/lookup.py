"""Finding articles of the live corpus by their URL or by words of their title.

The bundle's URLs are hashed once per bundle, at the first lookup: a sorted array of 64-bit keys of
their canonical forms and the rows holding them (16 bytes an article; about 15 µs an URL to make).
A lookup then checks the few rows with its key, less the tombstones of deleted or replaced rows, and
the articles written since the bundle, whose canonical URLs are kept per snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np

from embeddings.articles.urls import canonical_url, url_key
from embeddings.index.bundle import Bundle
from embeddings.index.store import StoredArticle
from embeddings.live.overlay import Snapshot


class BundleUrls:
    """The canonical URL keys of one bundle's articles, sorted, with their rows."""

    def __init__(self, keys: np.ndarray, rowids: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")  # rows of one key stay in row order
        self.keys = keys[order]
        self.rowids = rowids[order]

    @classmethod
    def of(cls, bundle: Bundle) -> BundleUrls:
        """Hash every URL of `bundle`'s store."""
        keys: list[int] = []
        rowids: list[int] = []
        after = 0
        while chunk := bundle.store.urls(after):
            for rowid, url in chunk:
                keys.append(url_key(url))
                rowids.append(rowid)
            after = chunk[-1][0]
        return cls(np.array(keys, dtype=np.int64), np.array(rowids, dtype=np.int64))

    def rows(self, key: int) -> np.ndarray:
        """The rows whose URL has `key` (a hash: the caller checks the URLs)."""
        start = int(np.searchsorted(self.keys, key, side="left"))
        end = int(np.searchsorted(self.keys, key, side="right"))
        return self.rowids[start:end]


class UrlFinder:
    """Finds the live article with a URL; one per service, holding the current bundle's keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bundle: tuple[Bundle, BundleUrls] | None = None
        self._overlay: tuple[Snapshot, dict[str, str]] | None = None
        self._canonical: dict[str, str] = {}  # written articles' URLs, as given -> canonical

    def bundle_urls(self, bundle: Bundle) -> BundleUrls:
        """The keys of `bundle`'s URLs, made at the first call for it."""
        with self._lock:  # one build of a bundle's keys, whoever asks first
            if self._bundle is None or self._bundle[0] is not bundle:
                self._bundle = None  # the old bundle's keys go before the new ones are made
                self._bundle = (bundle, BundleUrls.of(bundle))
                self._canonical.clear()
            return self._bundle[1]

    def _written(self, snapshot: Snapshot) -> dict[str, str]:
        """Canonical URL -> id of the articles written over the bundle (the latest write wins)."""
        with self._lock:
            if self._overlay is not None and self._overlay[0] is snapshot:
                return self._overlay[1]
            found: dict[str, tuple[int, str]] = {}
            for article_id, rowid in snapshot.ids.items():
                article = snapshot.get(article_id)
                if article is None or not article.url:
                    continue
                canonical = self._canonical.get(article.url)
                if canonical is None:
                    canonical = self._canonical[article.url] = canonical_url(article.url)
                if canonical not in found or found[canonical][0] < rowid:
                    found[canonical] = (rowid, article_id)
            written = {url: article_id for url, (_, article_id) in found.items()}
            self._overlay = (snapshot, written)
            return written

    def find(self, snapshot: Snapshot, url: str) -> StoredArticle | None:
        """The article of `snapshot` at `url`, compared canonically: the latest written one, else the
        bundle's first (by row) that was not deleted or replaced since."""
        canonical = canonical_url(url)
        written = self._written(snapshot).get(canonical)
        if written is not None:
            return snapshot.get(written)
        rows = self.bundle_urls(snapshot.bundle).rows(url_key(url))
        if len(snapshot.tombstones):
            rows = rows[~np.isin(rows, snapshot.tombstones)]
        if not len(rows):
            return None
        stored = snapshot.bundle.store.get_many(rows.tolist(), bodies=False)
        for rowid in sorted(stored):
            article = stored[rowid]
            if article.url and canonical_url(article.url) == canonical:
                return snapshot.get(article.id)
        return None


def with_title(snapshot: Snapshot, words: str, limit: int) -> list[StoredArticle]:
    """Up to `limit` live articles whose title holds `words` (ASCII letters in any case), newest first:
    those written since the bundle, then the bundle's (an SQL LIKE, a scan of its titles)."""
    folded = _ascii_lower(words)
    written = sorted(
        (a for a in _written_articles(snapshot) if folded in _ascii_lower(a.title)),
        key=lambda a: (a.published_at is None, -(a.published_at.timestamp() if a.published_at else 0)),
    )[:limit]
    if len(written) >= limit:
        return written
    # Tombstoned rows are dropped after the query: asking for that many more keeps `limit` live ones.
    rows = snapshot.bundle.store.with_title(words, limit - len(written) + len(snapshot.tombstones))
    dropped = set(snapshot.tombstones.tolist())
    from_bundle = [a for a in rows if a.rowid not in dropped][: limit - len(written)]
    return written + from_bundle


def _written_articles(snapshot: Snapshot) -> Iterator[StoredArticle]:
    for article_id in snapshot.ids:
        article = snapshot.get(article_id)
        if article is not None:
            yield article


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """Lower-cased as SQLite's LIKE compares: ASCII letters only."""
    return text.translate(_ASCII_LOWER)
