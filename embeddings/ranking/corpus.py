"""What a related list is searched in: a bundle, or a bundle with the live writes laid over it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from embeddings.articles.rules import Rules
from embeddings.index.columns import Columns
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle


class Corpus(Protocol):
    """The searchable articles, their stored records and vectors, by FAISS-style integer row ids."""

    @property
    def version(self) -> str:
        """The bundle version the corpus is based on."""
        ...

    @property
    def signal_names(self) -> frozenset[str]:
        """The signals whose vectors the corpus holds."""
        ...

    def __len__(self) -> int: ...

    def get(self, article_id: str) -> StoredArticle | None:
        """The article with the publisher's id `article_id`, or None."""
        ...

    def get_many(self, rowids: Sequence[int]) -> dict[int, StoredArticle]:
        """The records lists are made of, by row id (bodies may be left empty)."""
        ...

    def rowids_for(self, article_ids: Sequence[str]) -> list[int]:
        """Row ids of the given publisher ids (unknown ids are left out)."""
        ...

    def rules_for(self, article_id: str) -> Rules | None:
        """The editorial rules of `article_id`'s list, or None."""
        ...

    def eligible(self, filters: Filters) -> np.ndarray:
        """Row ids of the articles that pass `filters`."""
        ...

    def languages(self) -> frozenset[str]:
        """The language codes of the articles ("" for articles without one)."""
        ...

    def date_range(self) -> tuple[float, float] | None:
        """Epoch seconds of the first and last dated articles, or None."""
        ...

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, row ids) by main-signal inner product, optionally among `allowed` only."""
        ...

    def nearest(self, rowid: int, query: np.ndarray) -> tuple[np.ndarray, bool] | None:
        """Precomputed nearest others of `rowid` (main vector `query`), or None.

        Returns their row ids, and whether they are every other article (a small corpus). The ids
        hold every article at least as near as the farthest of them.
        """
        ...

    def vectors(self, name: str, rowids: np.ndarray) -> np.ndarray:
        """The `name` signal's vectors of the given rows."""
        ...

    def lexical_rows(self, rowids: np.ndarray) -> sp.csr_matrix:
        """The lexical signal's rows (unit-norm sparse TF-IDF) of the given rows."""
        ...

    def lexical_cosines(self, rowids: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        """The lexical cosine of each given row with `query` (a one-row matrix made with the corpus's IDF)."""
        ...

    def lexical_search(
        self, query: sp.csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """About the top-`k` (scores, row ids) by lexical cosine, optionally among `allowed` only."""
        ...

    def signatures(self, rowids: np.ndarray) -> np.ndarray:
        """The reprint signatures of the given rows."""
        ...

    def row_columns(self, rowids: np.ndarray) -> Columns:
        """The ranking columns (language, section, date, title and content keys) of the given rows."""
        ...
