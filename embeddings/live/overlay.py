"""Live writes over an immutable bundle: copy-on-write snapshots that searches never see half-changed.

A `Snapshot` is the bundle plus the articles written since it was built (the overlay, searched by
brute force) less the bundle articles that were deleted or replaced since (tombstones). A write never
changes a snapshot: `apply` returns a new one, and the service swaps one reference. Overlay rows get
the row ids after the bundle's last (bundle rows are 1..N).

The overlay's arrays are shared between successive snapshots and only ever written past the end of
the newest snapshot, where no reader looks; they double in size when full, leaving old snapshots
their old arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from embeddings.articles.rules import Rules
from embeddings.articles.text import article_text
from embeddings.index.bundle import Bundle
from embeddings.index.columns import Columns
from embeddings.index.filters import Filters
from embeddings.index.lexical_index import cosines, truncated
from embeddings.index.store import StoredArticle
from embeddings.live.rows import OverlayRows, stored
from embeddings.live.writes import Write
from embeddings.model.lexical import LexicalModel
from embeddings.vectors import LEX, MAIN


@dataclass(frozen=True)
class Snapshot:
    """The bundle with the writes after its build laid over it; immutable."""

    bundle: Bundle
    rows: OverlayRows
    n: int  # overlay rows, live or replaced
    alive: np.ndarray  # bool [n]: overlay rows not replaced or deleted since
    ids: dict[str, int]  # live overlay article id -> row id
    tombstones: np.ndarray  # sorted bundle row ids deleted or replaced
    dropped: frozenset[str]  # their article ids
    last_seq: int  # the last write applied
    pending: int  # writes applied over the bundle (not folded into it yet)
    lexical_model: LexicalModel | None = None  # the bundle's IDF, which weighs the writes' lexical rows
    rules: Mapping[str, Rules] = field(default_factory=dict)  # lists' rules written since (empty: cleared)

    @classmethod
    def of(cls, bundle: Bundle, dims: dict[str, int], last_seq: int = 0) -> Snapshot:
        """The bundle alone; `dims` are the dimensions of the signals writes carry."""
        rows = OverlayRows(dims, bundle.reprints.shape[1])
        empty = np.zeros(0, dtype=np.int64)
        model = None if bundle.lexical is None else LexicalModel(bundle.lexical.idf)
        return cls(bundle, rows, 0, np.zeros(0, dtype=bool), {}, empty, frozenset(), last_seq, 0, model)

    @property
    def base(self) -> int:
        """The bundle's last row id; overlay row i has row id base + 1 + i."""
        return len(self.bundle.index)

    def apply(self, writes: Sequence[Write]) -> Snapshot:
        """A new snapshot with `writes` applied in order (this one is left as it was)."""
        if not writes:
            return self
        ids = dict(self.ids)
        dropped = set(self.dropped)
        tombstones = set(self.tombstones.tolist())
        puts = [w for w in writes if w.op == "put"]
        rows = self.rows.grown(self.n, self.n + len(puts))
        alive = np.zeros(self.n + len(puts), dtype=bool)
        alive[: self.n] = self.alive
        n = self.n
        rules = dict(self.rules)
        for w in writes:
            if w.op == "rules":
                rules[w.article_id] = w.rules or Rules()
                continue
            old = ids.pop(w.article_id, None)
            if old is not None:
                alive[old - self.base - 1] = False
            elif w.article_id not in dropped:
                found = self.bundle.store.rowids_for([w.article_id])
                if found:
                    tombstones.add(found[0])
                    dropped.add(w.article_id)
            if w.op == "put":
                rowid = self.base + 1 + n
                rows.put(n, stored(rowid, w), w, self._lexical_row(w))
                alive[n] = True
                ids[w.article_id] = rowid
                n += 1
        return Snapshot(
            self.bundle,
            rows,
            n,
            alive[:n],
            ids,
            np.array(sorted(tombstones), dtype=np.int64),
            frozenset(dropped),
            max(self.last_seq, max(w.seq for w in writes)),
            self.pending + len(writes),
            self.lexical_model,
            rules,
        )

    def _lexical_row(self, write: Write) -> sp.csr_matrix | None:
        """A put's lexical row, weighted by the bundle's IDF (None when the bundle has no such signal)."""
        if self.lexical_model is None or write.article is None:
            return None
        return self.lexical_model.vectors([article_text(write.article.title, write.article.body)])

    @cached_property
    def _overlay_lexical(self) -> sp.csr_matrix:
        """The overlay rows' lexical rows as one matrix (rows of replaced articles included)."""
        width = self.lexical_model.idf.shape[0] if self.lexical_model is not None else 1
        rows = self.rows.lexical[: self.n]
        if not rows:
            return sp.csr_matrix((0, width), dtype=np.float32)
        return sp.csr_matrix(sp.vstack(rows, format="csr"), dtype=np.float32)

    # The Corpus protocol.

    @property
    def version(self) -> str:
        """The bundle's version."""
        return self.bundle.version

    @property
    def signal_names(self) -> frozenset[str]:
        """The signals both the bundle and the writes carry."""
        carried = set(self.rows.vectors) | ({LEX} if self.lexical_model is not None else set())
        return self.bundle.signal_names & frozenset(carried)

    def __len__(self) -> int:
        return self.base - len(self.tombstones) + int(self.alive.sum())

    def _overlay(self, rowid: int) -> StoredArticle:
        return self.rows.articles[rowid - self.base - 1]

    def get(self, article_id: str) -> StoredArticle | None:
        """The article with the publisher's id `article_id`, or None."""
        rowid = self.ids.get(article_id)
        if rowid is not None:
            return self._overlay(rowid)
        if article_id in self.dropped:
            return None
        return self.bundle.store.get(article_id)

    def rules_for(self, article_id: str) -> Rules | None:
        """The editorial rules of `article_id`'s list (written since the build, or folded into it)."""
        written = self.rules.get(article_id)
        if written is not None:
            return written or None
        return self.bundle.rules_for(article_id)

    def get_many(self, rowids: Sequence[int]) -> dict[int, StoredArticle]:
        """The records lists are made of, by row id (deleted or replaced ones are left out)."""
        in_bundle = np.array([int(r) for r in rowids if r <= self.base], dtype=np.int64)
        if len(self.tombstones):
            in_bundle = in_bundle[~np.isin(in_bundle, self.tombstones)]
        found = self.bundle.get_many(in_bundle.tolist())
        for r in rowids:
            if r > self.base and r - self.base - 1 < self.n and self.alive[r - self.base - 1]:
                found[int(r)] = self._overlay(int(r))
        return found

    def rowids_for(self, article_ids: Sequence[str]) -> list[int]:
        """Row ids of the given publisher ids (unknown, deleted and replaced ones are left out)."""
        out = [self.ids[i] for i in article_ids if i in self.ids]
        rest = [i for i in article_ids if i not in self.ids and i not in self.dropped]
        return out + self.bundle.store.rowids_for(rest)

    def _overlay_mask(self, filters: Filters) -> np.ndarray:
        """Which overlay rows are live and pass `filters`."""
        mask: np.ndarray = self.alive & self.rows.columns.take(slice(0, self.n)).admits(filters)
        return mask

    def eligible(self, filters: Filters) -> np.ndarray:
        """Row ids of the live articles that pass `filters`."""
        in_bundle = self.bundle.store.eligible(filters)
        if len(self.tombstones):
            in_bundle = in_bundle[~np.isin(in_bundle, self.tombstones)]
        added = self.base + 1 + np.flatnonzero(self._overlay_mask(filters))
        return np.concatenate([in_bundle, added.astype(np.int64)])

    def languages(self) -> frozenset[str]:
        """The language codes of the articles ("" for articles without one)."""
        written = self.rows.columns.lang[: self.n][self.alive]
        return self.bundle.store.languages() | frozenset(str(lang) for lang in written)

    def date_range(self) -> tuple[float, float] | None:
        """Epoch seconds of the first and last dated articles, or None."""
        ranges = [r for r in [self.bundle.store.date_range()] if r is not None]
        ts = self.rows.columns.ts[: self.n][self.alive]
        ts = ts[~np.isnan(ts)]
        if len(ts):
            ranges.append((float(ts.min()), float(ts.max())))
        if not ranges:
            return None
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, row ids): the bundle's FAISS search merged with a brute-force overlay search."""
        if self.n == 0 and not len(self.tombstones):
            return self.bundle.search(query, k, allowed)
        in_bundle = None if allowed is None else allowed[allowed <= self.base]
        scores, ids = self.bundle.search(query, k, in_bundle, self.tombstones)
        mask = self.alive.copy()
        if allowed is not None:
            mask &= np.isin(self.base + 1 + np.arange(self.n), allowed)
        positions = np.flatnonzero(mask)
        if not len(positions):
            return scores, ids
        added = self.rows.vectors[MAIN][positions] @ np.asarray(query, dtype=np.float32)
        scores = np.concatenate([scores, added.astype(np.float32)])
        ids = np.concatenate([ids, (self.base + 1 + positions).astype(np.int64)])
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order], ids[order]

    def nearest(self, rowid: int, query: np.ndarray) -> tuple[np.ndarray, bool] | None:
        """The bundle's precomputed nearest others of `rowid` less tombstones, with the overlay's.

        The overlay (the writes since the build) is searched by brute force. Every live overlay row at
        least as near as the bundle's farthest stored neighbour joins the list, so that the list
        still holds every article down to that distance.
        """
        if rowid > self.base:
            return None
        stored = self.bundle.nearest(rowid)
        if stored is None:
            return None
        found, exhaustive = stored
        query = np.asarray(query, dtype=np.float32)
        floor = (
            -np.inf
            if exhaustive or not len(found)
            else float(self.bundle.vectors(MAIN, found[-1:])[0] @ query)
        )
        if len(self.tombstones):
            found = found[~np.isin(found, self.tombstones)]
        positions = np.flatnonzero(self.alive)
        if len(positions):
            cosines = self.rows.vectors[MAIN][positions] @ query
            near = positions[cosines >= floor]
            found = np.concatenate([found, self.base + 1 + near.astype(np.int64)])
        return found, exhaustive

    def _split(self, rowids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row ids as int64, and which of them are overlay rows."""
        rowids = np.asarray(rowids, dtype=np.int64)
        return rowids, rowids > self.base

    def vectors(self, name: str, rowids: np.ndarray) -> np.ndarray:
        """The `name` signal's vectors of the given rows."""
        rowids, added = self._split(rowids)
        if not added.any():
            return self.bundle.vectors(name, rowids)
        return _merged_rows(
            added,
            self.bundle.vectors(name, rowids[~added]),
            self.rows.vectors[name][rowids[added] - self.base - 1],
        )

    def row_columns(self, rowids: np.ndarray) -> Columns:
        """The ranking columns of the given rows."""
        rowids, added = self._split(rowids)
        if not added.any():
            return self.bundle.row_columns(rowids)
        return Columns.merged(
            added,
            self.bundle.row_columns(rowids[~added]),
            self.rows.columns.take(rowids[added] - self.base - 1),
        )

    def lexical_rows(self, rowids: np.ndarray) -> sp.csr_matrix:
        """The lexical rows of the given rows."""
        rowids, added = self._split(rowids)
        if not added.any():
            return self.bundle.lexical_rows(rowids)
        base_rows = self.bundle.lexical_rows(rowids[~added])
        overlay_rows = self._overlay_lexical[rowids[added] - self.base - 1]
        order = np.concatenate([np.flatnonzero(~added), np.flatnonzero(added)])
        stacked = sp.vstack([base_rows, overlay_rows], format="csr")
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        picked: sp.csr_matrix = stacked[inverse]
        return picked

    def lexical_cosines(self, rowids: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        """The lexical cosine of each given row with `query`."""
        rowids, added = self._split(rowids)
        if not added.any():
            return self.bundle.lexical_cosines(rowids, query)
        out = np.empty(len(rowids), dtype=np.float64)
        out[~added] = self.bundle.lexical_cosines(rowids[~added], query)
        out[added] = cosines(self._overlay_lexical[rowids[added] - self.base - 1], query)
        return out

    def lexical_search(
        self, query: sp.csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """About the `k` live articles lexically nearest `query`: the bundle's search and the overlay's."""
        in_bundle = None if allowed is None else allowed[allowed <= self.base]
        scores, ids = self.bundle.lexical_search(query, k + len(self.tombstones), in_bundle)
        if len(self.tombstones):
            keep = ~np.isin(ids, self.tombstones)
            scores, ids = scores[keep], ids[keep]
        mask = self.alive.copy()
        if allowed is not None:
            mask &= np.isin(self.base + 1 + np.arange(self.n), allowed)
        positions = np.flatnonzero(mask)
        if len(positions) and self.lexical_model is not None:
            # Scored as the bundle's search scores its rows, by the query's heaviest n-grams.
            added = cosines(self._overlay_lexical[positions], truncated(query)).astype(np.float32)
            scores = np.concatenate([scores, added])
            ids = np.concatenate([ids, (self.base + 1 + positions).astype(np.int64)])
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order], ids[order]

    def signatures(self, rowids: np.ndarray) -> np.ndarray:
        """The reprint signatures of the given rows."""
        rowids, added = self._split(rowids)
        if not added.any():
            return self.bundle.signatures(rowids)
        return _merged_rows(
            added,
            self.bundle.signatures(rowids[~added]),
            self.rows.signatures[rowids[added] - self.base - 1],
        )


def _merged_rows(pick: np.ndarray, unpicked: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """Rows from `picked` where the mask `pick` is set and from `unpicked` elsewhere, in order."""
    out = np.empty((len(pick), *picked.shape[1:]), dtype=picked.dtype)
    out[~pick] = unpicked
    out[pick] = picked
    return out
