"""Rendered related lists of indexed articles, kept across the writes that cannot change them.

An entry is a rendered list (a response body: the caller chooses the key and the rendering) made from one
snapshot. What a write can change is known from the list's candidates (ranking/pool.py): the rows they
were drawn from, and the main cosine an article needs to enter them. When a write makes the next
snapshot, an entry is dropped if the write touches its article, an id its rules name (a pin or a block: a
pin deleted and written again comes back), one of those rows, or puts an article at least that near in a
language the list admits (a list in its reader's languages that other languages did not fill in admits
those alone); the others are carried over to the new snapshot unchanged. A new bundle, a change of the
corpus's date range (the date window of undated articles) or a scorer with the lexical signal (whose
candidates the cosine does not bound) drop every entry, and so does a delete or replace of a bundle
article when the bundle's index is approximate (HNSW).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.live.corpus import Change
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
    ruled: frozenset[str]  # the ids its article's rules pin or block
    langs: frozenset[str] | None  # the languages an article must be in to enter them (None: any, or none)


class ListCache:
    """A bounded LRU of rendered lists, valid for one snapshot at a time; it follows the live corpus.

    `lexical`: the scorer uses the lexical signal, whose candidates the cosine does not bound.
    """

    def __init__(self, capacity: int, lexical: bool) -> None:
        self.capacity = capacity
        self.lexical = lexical
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, snapshot: Snapshot, key: Hashable) -> bytes | None:
        """The body cached for `key` if it was made for `snapshot` (or carried over to it)."""
        with self._lock:
            entry = self._entries.get(key) if snapshot is self._snapshot and self.capacity else None
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
            if snapshot is not self._snapshot:
                return  # made from a snapshot already replaced: it may be stale
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def follow(self, change: Change) -> None:
        """Move to the live corpus's new snapshot (a listener of LiveCorpus.subscribe)."""
        if change.writes is None or change.old is None or change.new is None:
            self.reset(change.new)
        else:
            self.advance(change.old, change.new, change.writes)

    def advance(self, old: Snapshot, new: Snapshot, writes: Sequence[Write]) -> int:
        """Move to `new`, made from `old` by `writes`, keeping the entries they cannot change.

        Returns how many entries were dropped. Any other move (a new bundle) drops them all.
        """
        with self._lock:
            carried = old is self._snapshot and not self.lexical and old.date_range() == new.date_range()
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
        put = [w for w in writes if w.op == "put"]
        keys = list(self._entries)
        entries = [self._entries[k] for k in keys]
        near: np.ndarray = np.zeros(len(entries), dtype=bool)
        if put:
            mains = np.stack([e.main for e in entries])
            reach = np.array([e.reach for e in entries], dtype=np.float32)
            vectors = np.stack([np.asarray(w.vectors[MAIN], dtype=np.float32) for w in put])
            close = (mains @ vectors.T) >= (reach - EPSILON)[:, None]
            # A put enters only the lists that admit its language: a mask per set of languages (few).
            langs = [w.article.lang if w.article is not None else None for w in put]
            for admitted in {e.langs for e in entries} - {None}:
                assert admitted is not None
                rows = np.fromiter((e.langs == admitted for e in entries), dtype=bool, count=len(entries))
                outside = np.fromiter((lang not in admitted for lang in langs), dtype=bool, count=len(put))
                close[np.ix_(rows, outside)] = False
            near = np.asarray(close.any(axis=1))
        return [
            key
            for key, entry, close in zip(keys, entries, near, strict=True)
            if close
            or entry.article_id in ids
            or not old_rows.isdisjoint(entry.rows)
            or not entry.ruled.isdisjoint(ids)
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
    rules = snapshot.rules_for(article_id)
    ruled = frozenset(rules.pin) | frozenset(rules.block) if rules else frozenset()
    langs = None if listing.langs is None else frozenset(listing.langs)
    return Entry(body, article_id, main, frozenset(int(r) for r in listing.rows), reach, ruled, langs)
