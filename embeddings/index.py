"""The FAISS vector index: our int64 ids over normalized float32 vectors, inner product, exact search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import BundleCorruptError

INDEX_TYPE = "IDMap2,Flat"


def _faiss() -> Any:
    import faiss

    return faiss


class VectorIndex:
    """Exact inner-product search with ids of our own (IndexIDMap2 over IndexFlatIP)."""

    def __init__(self, index: Any) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray) -> VectorIndex:
        """Build an index of `vectors` [n, d] under the int64 `ids` [n]."""
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(ids):
            raise ValueError(f"vectors {vectors.shape} and ids {np.shape(ids)} do not match")
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
        if len(vectors):
            index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        return cls(index)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index written by `save`."""
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
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
        """Top-`k` (scores, ids) for one query vector, among `allowed` ids only or all but `excluded`."""
        faiss = _faiss()
        if allowed is not None and excluded is not None and len(excluded):
            allowed = np.setdiff1d(allowed, excluded)
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
        params = None if selector is None else faiss.SearchParameters(sel=selector)
        scores, ids = self._index.search(x, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]
