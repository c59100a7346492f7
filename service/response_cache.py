"""Rendered related lists of indexed articles, kept across the writes that cannot change them.

An entry is the response body of `GET /v1/articles/{id}/related` (or `related.html`, the same list as
HTML) for one query string, made from one snapshot. What a write can change is known from the list's
candidates (ranking/pool.py): the rows they were drawn from, and the main cosine an article needs to
enter them. When a write makes the next snapshot, an entry is dropped if the write touches its
article, one of those rows, or puts an article at least that near; the others are carried over to the
new snapshot unchanged. A new bundle, a change of the corpus's date range (the date window of undated
articles) or a scorer with the lexical signal (whose candidates the cosine does not bound) drop every
entry, and so does a delete or replace of a bundle article when the bundle's index is approximate (HNSW).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from embeddings.live.overlay import Snapshot
from embeddings.live.writes import Write
from embeddings.ranking.listing import Listing
from embeddings.vectors import MAIN

# A cosine computed twice (at fill time, at a write) may differ in its last bits.
EPSILON = 1e-5


@dataclass(frozen=True)
class Entry:
    """One rendered list and what a write would have to touch to change it."""

    body: bytes
    article_id: str
    main: np.ndarray  # the article's main vector
    rows: frozenset[int]  # the rows its candidates were drawn from
    reach: float  # the main cosine an article needs to enter them (-inf: any)


class ResponseCache:
    """A bounded LRU of rendered lists, valid for one snapshot at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, snapshot: Snapshot, key: Hashable) -> bytes | None:
        """The body cached for `key` if it was made for `snapshot` (or carried over to it)."""
        with self._lock:
            entry = self._entries.get(key) if snapshot is self._snapshot else None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry.body

    def put(self, snapshot: Snapshot, key: Hashable, body: bytes, article_id: str, listing: Listing) -> None:
        """Keep `body`, the list made from `snapshot` for `key`, unless a write or a swap came since."""
        if not self.capacity:
            return
        entry = _entry(snapshot, body, article_id, listing)
        with self._lock:
            if self._snapshot is None:
                self._snapshot = snapshot
            if snapshot is not self._snapshot:
                return  # made from a snapshot already replaced: it may be stale
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def advance(self, old: Snapshot, new: Snapshot, writes: Sequence[Write], lexical: bool) -> int:
        """Move to `new`, made from `old` by `writes`, keeping the entries they cannot change.

        Returns how many entries were dropped. Any other move (a new bundle) drops them all.
        """
        with self._lock:
            carried = old is self._snapshot and not lexical and old.date_range() == new.date_range()
            if not carried:
                dropped = len(self._entries)
                self._entries.clear()
            else:
                doomed = self._touched(old, writes)
                for key in doomed:
                    del self._entries[key]
                dropped = len(doomed)
            self._snapshot = new
            return dropped

    def reset(self, snapshot: Snapshot | None) -> None:
        """Drop everything: `snapshot` is from another bundle (or there is none)."""
        with self._lock:
            self._entries.clear()
            self._snapshot = snapshot

    def _touched(self, old: Snapshot, writes: Sequence[Write]) -> list[Hashable]:
        """Keys of the entries whose list `writes` can change (the caller holds the lock)."""
        if not self._entries:
            return []
        ids = {w.article_id for w in writes}
        # A rules write changes its article's own list alone: its article's row is no candidate's news.
        old_rows = set(old.rowids_for(sorted({w.article_id for w in writes if w.op != "rules"})))
        if old.bundle.manifest.get("index", {}).get("kind") == "hnsw" and any(
            r <= old.base for r in old_rows
        ):
            # An approximate search over other tombstones may find other neighbours: lists that came
            # from it are not bounded by their reach any more.
            return list(self._entries)
        puts = [np.asarray(w.vectors[MAIN], dtype=np.float32) for w in writes if w.op == "put"]
        keys = list(self._entries)
        entries = [self._entries[k] for k in keys]
        near: np.ndarray = np.zeros(len(entries), dtype=bool)
        if puts:
            mains = np.stack([e.main for e in entries])
            reach = np.array([e.reach for e in entries], dtype=np.float32)
            near = np.asarray(((mains @ np.stack(puts).T) >= (reach - EPSILON)[:, None]).any(axis=1))
        return [
            key
            for key, entry, close in zip(keys, entries, near, strict=True)
            if close or entry.article_id in ids or not old_rows.isdisjoint(entry.rows)
        ]


def _entry(snapshot: Snapshot, body: bytes, article_id: str, listing: Listing) -> Entry:
    """The entry of a list, its reach lowered to the bundle's farthest stored neighbour of the article.

    The lookup of precomputed neighbours takes every written article at least that near, even when
    deletes have made the candidates stop short of it.
    """
    (rowid,) = snapshot.rowids_for([article_id])
    main = np.asarray(snapshot.vectors(MAIN, np.array([rowid]))[0], dtype=np.float32)
    reach = listing.reach
    stored = snapshot.bundle.nearest(rowid) if rowid <= snapshot.base else None
    if stored is not None and len(stored[0]) and not stored[1]:
        farthest = float(snapshot.bundle.vectors(MAIN, stored[0][-1:])[0] @ main)
        reach = min(reach, farthest)
    return Entry(body, article_id, main, frozenset(int(r) for r in listing.rows), reach)


class CachedLists:
    """Pure ASGI middleware: a related list (JSON or HTML) rendered for the served snapshot goes out at once.

    The key is the request's raw path and query string, as the route stored it; anything else (a
    miss, another route, no bundle yet) goes on to the app. Cheaper than routing and validating the
    request again: on the demo, 9,566 cached lists a second against 1,694 /healthz (benchmarks/wrk_serving).
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # the app's state: its `live` is set in the lifespan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _kind(scope["path"]) if scope["type"] == "http" else None
        if (
            kind is not None
            and scope["method"] == "GET"
            and not _has_body(scope)  # one with a body goes on, to BodyLimit's 413 or the route
        ):
            live = getattr(self.state, "live", None)
            # Other processes' writes first; applying them takes locks, so never on the event loop.
            loaded = None
            if live is not None:
                loaded = await run_in_threadpool(live.current) if live.behind() else live.loaded
            body = None if loaded is None else live.responses.get(loaded.snapshot, list_key(scope))  # type: ignore[union-attr]
            if body is not None:
                route, kind_headers = kind
                scope["route"] = route  # for the access log and the metrics
                headers = [*kind_headers, (b"content-length", b"%d" % len(body))]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    return any(
        (key == b"content-length" and value.strip() not in (b"", b"0")) or key == b"transfer-encoding"
        for key, value in headers
    )


def list_key(scope: Scope) -> tuple[bytes, bytes]:
    """The cache key of a related request: its raw path and query string."""
    return bytes(scope.get("raw_path") or scope["path"].encode()), bytes(scope.get("query_string", b""))


@dataclass(frozen=True)
class _Route:
    path: str


RELATED_ROUTE = _Route("/v1/articles/{article_id:path}/related")
RELATED_HTML_ROUTE = _Route("/v1/articles/{article_id:path}/related.html")
# The HTML list loads nothing but its pictures, and runs nothing.
HTML_CSP = (
    "default-src 'none'; img-src http: https:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)
HTML_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", HTML_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
]
_KINDS = {
    "/related": (RELATED_ROUTE, [(b"content-type", b"application/json")]),
    "/related.html": (RELATED_HTML_ROUTE, HTML_HEADERS),
}


def _kind(path: str) -> tuple[_Route, list[tuple[bytes, bytes]]] | None:
    """The route and headers of a list the cache may hold at `path` (an article's), or None."""
    if not path.startswith("/v1/articles/"):
        return None
    return _KINDS.get(path[path.rfind("/") :])
