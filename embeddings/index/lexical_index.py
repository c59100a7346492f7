"""The bundle's lexical vectors: sparse TF-IDF rows, and a search over their postings.

The rows are stored as the three arrays of a CSR matrix; loading adds the transposed (CSC) view, whose
columns are the postings of each n-gram. A search reads the postings of the query's heaviest
n-grams only, as Elasticsearch's more-like-this keeps a query's top terms: the few candidates it
returns are then scored exactly on their full rows.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import scipy.sparse as sp

QUERY_TERMS = 64  # n-grams of a query whose postings a search reads
DATA_FILE, INDICES_FILE, INDPTR_FILE, IDF_FILE = (
    "lexical-data.npy",
    "lexical-indices.npy",
    "lexical-indptr.npy",
    "lexical-idf.npy",
)
FILES = (DATA_FILE, INDICES_FILE, INDPTR_FILE, IDF_FILE)


class LexicalIndex:
    """Unit-norm sparse rows (row i is the article with row id i + 1) and their postings."""

    def __init__(self, rows: sp.csr_matrix, idf: np.ndarray) -> None:
        self.rows = rows
        self.idf = idf
        self._postings = sp.csc_matrix(rows)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def save(self, directory: Path) -> None:
        """Write the rows and the IDF as .npy files."""
        np.save(directory / DATA_FILE, self.rows.data.astype(np.float32), allow_pickle=False)
        np.save(directory / INDICES_FILE, self.rows.indices.astype(np.int32), allow_pickle=False)
        np.save(directory / INDPTR_FILE, self.rows.indptr.astype(np.int64), allow_pickle=False)
        np.save(directory / IDF_FILE, self.idf.astype(np.float32), allow_pickle=False)

    @classmethod
    def load(cls, directory: Path, count: int) -> LexicalIndex:
        """Read what `save` wrote; ValueError when the arrays do not make `count` rows."""
        data, indices, indptr, idf = (np.load(directory / name, allow_pickle=False) for name in FILES)
        types = (data.dtype, indices.dtype, indptr.dtype, idf.dtype)
        if types != (np.float32, np.int32, np.int64, np.float32) or idf.ndim != 1:
            raise ValueError(f"the lexical arrays have the types {types}, not float32, int32, int64, float32")
        if indptr.shape != (count + 1,) or indptr[0] != 0 or not indptr[-1] == len(data) == len(indices):
            raise ValueError(f"the lexical rows do not make {count} rows")
        if len(indices) and (indices.min() < 0 or indices.max() >= len(idf)):
            raise ValueError("the lexical rows name columns past the IDF's")
        return cls(sp.csr_matrix((data, indices, indptr), shape=(count, len(idf))), idf)

    def take(self, rowids: np.ndarray) -> sp.csr_matrix:
        """The rows of the given row ids."""
        picked: sp.csr_matrix = self.rows[np.asarray(rowids, dtype=np.int64) - 1]
        return picked

    def cosines(self, rowids: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        """The cosine of each given row with `query`."""
        return cosines(self.take(rowids), query)

    def search(
        self, query: sp.csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """About the `k` rows nearest `query` (one row), by its heaviest n-grams: (scores, row ids)."""
        terms, weights = top_terms(query)
        if not len(terms) or k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = np.asarray(self._postings[:, terms] @ weights, dtype=np.float32).ravel()
        if allowed is not None:
            keep = np.asarray(allowed, dtype=np.int64) - 1
            scores, positions = scores[keep], keep
        else:
            positions = np.arange(len(scores))
        hit = np.flatnonzero(scores > 0)
        if len(hit) > k:
            hit = hit[np.argpartition(-scores[hit], k)[:k]]
        hit = hit[np.argsort(-scores[hit], kind="stable")]
        return scores[hit], (positions[hit] + 1).astype(np.int64)


_scratch = threading.local()


def top_terms(query: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The columns and weights of the query's QUERY_TERMS heaviest n-grams (all of a short query)."""
    weights, terms = query.data, query.indices
    if len(terms) > QUERY_TERMS:
        top = np.argpartition(-weights, QUERY_TERMS)[:QUERY_TERMS]
        weights, terms = weights[top], terms[top]
    return terms, weights


def truncated(query: sp.csr_matrix) -> sp.csr_matrix:
    """The query cut to its heaviest n-grams: what a search scores with."""
    terms, weights = top_terms(query)
    order = np.argsort(terms)
    return sp.csr_matrix(
        (weights[order], terms[order], np.array([0, len(terms)])), shape=query.shape, dtype=np.float32
    )


def _dense_query(query: sp.csr_matrix, width: int) -> np.ndarray:
    """`query` scattered into this thread's dense vector (the caller zeroes its entries again)."""
    # For 80 SaudiNewsNet rows a product with the dense query takes 0.05 ms, the sparse product
    # (rows @ query.T) 1.4 ms.
    dense = getattr(_scratch, "dense", None)
    if dense is None or dense.shape[0] != width:
        dense = _scratch.dense = np.zeros(width, dtype=np.float32)
    dense[query.indices] = query.data
    return dense


def cosines(rows: sp.csr_matrix, query: sp.csr_matrix) -> np.ndarray:
    """Each row's cosine with `query` (one unit-norm row)."""
    dense = _dense_query(query, rows.shape[1])
    try:
        return np.asarray(rows @ dense, dtype=np.float64).ravel()
    finally:
        dense[query.indices] = 0.0
