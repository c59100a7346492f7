"""The FAISS vector index: our int64 ids over normalized float32 vectors, inner product.

Exact search (a flat index) while the corpus is small enough for it to meet the latency budget, an
HNSW graph beyond: `kind_for` chooses, and the `index_kind` setting overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from embeddings.errors import BundleCorruptError

IndexKind = Literal["flat", "hnsw"]
INDEX_TYPES: dict[str, str] = {"flat": "IDMap2,Flat", "hnsw": "IDMap2,HNSW32,Flat"}
HNSW_M = 32  # graph degree
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128  # recall@10 >= 0.98 against exact search (benchmarks/index_scale.py)
HNSW_EF_MAX = 4096
# One exact search on one core took 1.0 ms over 15.6k vectors and 14 ms over 100k (p50, 384
# dimensions, benchmarks/index_scale.py): exact stays under about 5 ms up to 50k; beyond, HNSW.
EXACT_MAX_ARTICLES = 50_000


def kind_for(count: int, override: str = "auto") -> IndexKind:
    """The index kind for a corpus of `count` articles ('auto': exact while it is fast enough)."""
    if override in ("flat", "hnsw"):
        return override  # type: ignore[return-value]
    return "flat" if count <= EXACT_MAX_ARTICLES else "hnsw"


def _faiss() -> Any:
    import faiss

    return faiss


class VectorIndex:
    """Inner-product search with ids of our own: IndexIDMap2 over a flat index or an HNSW graph."""

    def __init__(self, index: Any) -> None:
        self._index = index
        inner = _faiss().downcast_index(index.index)
        self.kind: IndexKind = "hnsw" if hasattr(inner, "hnsw") else "flat"

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, kind: IndexKind = "flat") -> VectorIndex:
        """Build an index of `vectors` [n, d] under the int64 `ids` [n]."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise ValueError(f"vectors {vectors.shape} and ids {np.shape(ids)} do not match")
        if kind == "hnsw":
            graph = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            index = faiss.IndexIDMap2(graph)
        else:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        if len(vectors):
            index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index written by `save`."""
        faiss = _faiss()
        try:
            # The vectors stay in the file, mapped: worker processes share one copy in the page cache.
            index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as exc:
            raise BundleCorruptError(f"cannot read the FAISS index {path}: {exc}") from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise BundleCorruptError(f"{path}: expected an IndexIDMap2, got {type(index).__name__}")
        return cls(index)

    def save(self, path: Path) -> None:
        """Write the index to `path`."""
        _faiss().write_index(self._index, str(path))

    @property
    def dimension(self) -> int:
        """Vector dimension."""
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        """All ids in the index, in insertion order."""
        ids: np.ndarray = _faiss().vector_to_array(self._index.id_map).astype(np.int64)
        return ids

    def neighbours(self, vectors: np.ndarray, ids: np.ndarray, depth: int, block: int = 2048) -> np.ndarray:
        """Each of `ids`' `depth` nearest other ids, best first (0 pads short rows), searched in blocks."""
        faiss = _faiss()
        out = np.zeros((len(ids), depth), dtype=np.int32)
        params = (
            faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, depth + 1))
            if self.kind == "hnsw"
            else None
        )
        for start in range(0, len(ids), block):
            queries = np.ascontiguousarray(vectors[start : start + block], dtype=np.float32)
            _, found = self._index.search(queries, depth + 1, params=params)
            for row, (own, hits) in enumerate(zip(ids[start : start + block], found, strict=True)):
                others = hits[(hits != own) & (hits >= 0)][:depth]
                out[start + row, : len(others)] = others
        return out

    def reconstruct(self, ident: int) -> np.ndarray:
        """The stored vector of `ident`."""
        return np.asarray(self._index.reconstruct(int(ident)), dtype=np.float32)

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, ids) for one query vector, among `allowed` ids only or all but `excluded`.

        Give one of the two: an `allowed` set takes precedence (take the excluded ids out of it first).
        """
        faiss = _faiss()
        pool = len(self) if allowed is None else min(len(self), len(allowed))
        if allowed is None and excluded is not None:
            pool -= len(excluded)
        k = min(k, pool)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        x = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        elif excluded is not None and len(excluded):
            inner = faiss.IDSelectorBatch(np.ascontiguousarray(excluded, dtype=np.int64))
            selector = faiss.IDSelectorNot(inner)
            selector.referenced = inner  # the wrapper does not keep its argument alive
        if self.kind == "hnsw":
            # A filter hides most of the graph from the walk: widen it by the share hidden.
            share = 1.0 if allowed is None else len(self) / max(1, len(allowed))
            ef = min(HNSW_EF_MAX, int(max(HNSW_EF_SEARCH, k) * share))
            params = faiss.SearchParametersHNSW(efSearch=ef)
            if selector is not None:
                params.sel = selector
        else:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(x, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]
