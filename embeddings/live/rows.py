"""The overlay's rows: articles written since the bundle was built, in arrays that grow by doubling."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from embeddings.index.columns import Columns
from embeddings.index.store import StoredArticle
from embeddings.live.writes import Write


def stored(article_rowid: int, write: Write) -> StoredArticle:
    """The stored record of a put."""
    a = write.article
    assert a is not None
    return StoredArticle(
        rowid=article_rowid,
        id=a.id,
        title=a.title,
        body=a.body,
        url=a.url,
        lang=a.lang,
        published_at=a.published_at,
        section=a.section,
        keywords=a.keywords,
        source=a.source,
        content_hash=a.content_hash(),
        image_url=a.image_url,
        listed=a.listed,
    )


class OverlayRows:
    """Growable column storage of overlay rows; rows [0, n) of a snapshot never change."""

    def __init__(self, dims: dict[str, int], words: int, capacity: int = 64) -> None:
        self.vectors = {name: np.zeros((capacity, d), dtype=np.float32) for name, d in dims.items()}
        self.signatures = np.zeros((capacity, words), dtype=np.uint32)
        self.columns = Columns.empty(capacity)
        self.articles: list[StoredArticle] = []
        self.lexical: list[sp.csr_matrix] = []  # one row per article, when the bundle has the signal

    @property
    def capacity(self) -> int:
        return len(self.columns)

    def grown(self, n: int, need: int) -> OverlayRows:
        """Storage with room for `need` rows holding rows [0, n): self, or a copy twice as large."""
        if need <= self.capacity:
            return self
        capacity = max(need, 2 * self.capacity)
        bigger = OverlayRows(
            {name: v.shape[1] for name, v in self.vectors.items()}, self.signatures.shape[1], capacity
        )
        for name, v in self.vectors.items():
            bigger.vectors[name][:n] = v[:n]
        bigger.signatures[:n] = self.signatures[:n]
        bigger.columns = Columns.concat([self.columns.take(slice(0, n)), Columns.empty(capacity - n)])
        bigger.articles = self.articles[:n]
        bigger.lexical = self.lexical[:n]
        return bigger

    def put(self, at: int, article: StoredArticle, write: Write, lexical: sp.csr_matrix | None) -> None:
        """Write one row at position `at` (past the end of every snapshot)."""
        for name, v in self.vectors.items():
            v[at] = write.vectors[name]
        self.signatures[at] = write.signature
        self.columns.put(
            at,
            article.lang,
            article.section,
            article.published_at,
            article.title,
            article.content_hash,
            article.listed,
        )
        del self.articles[at:]
        self.articles.append(article)
        if lexical is not None:
            del self.lexical[at:]
            self.lexical.append(lexical)
