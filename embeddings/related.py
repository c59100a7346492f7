"""Related lists: nearest neighbours in a bundle, filtered, without the article itself or copies of it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from embeddings.bundle import Bundle
from embeddings.errors import ArticleNotFoundError, InvalidQueryError
from embeddings.store import Filters, StoredArticle

SEARCH_MARGIN = 16  # extra candidates fetched for the ones filtering will drop
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class RelatedQuery:
    """What a caller asks of a related list."""

    k: int = 4
    filters: Filters = field(default_factory=Filters)
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.filters.since and self.filters.until and self.filters.since > self.filters.until:
            raise InvalidQueryError("since is after until")


@dataclass(frozen=True)
class Hit:
    """One related article and its similarity to the query."""

    article: StoredArticle
    score: float


def title_key(title: str) -> str:
    """A title reduced to its words, for spotting reprints with different punctuation or case."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


@dataclass(frozen=True)
class _Origin:
    """The query's own identity, to keep it and its copies out of its list."""

    rowid: int | None
    content_hash: str | None
    title_key: str | None


class RelatedFinder:
    """Finds related articles in one bundle."""

    def __init__(self, bundle: Bundle, duplicate_threshold: float) -> None:
        self.bundle = bundle
        self.duplicate_threshold = duplicate_threshold

    def for_article(self, article_id: str, query: RelatedQuery) -> tuple[StoredArticle, list[Hit]]:
        """The article with `article_id` and its related list."""
        article = self.bundle.store.get(article_id)
        if article is None:
            raise ArticleNotFoundError(article_id)
        vector = self.bundle.index.reconstruct(article.rowid)
        origin = _Origin(article.rowid, article.content_hash, title_key(article.title))
        return article, self._related(vector, query, origin)

    def for_vector(
        self,
        vector: np.ndarray,
        query: RelatedQuery,
        title: str | None = None,
        content_hash: str | None = None,
    ) -> list[Hit]:
        """The related list of an article that is not in the bundle (given its vector)."""
        origin = _Origin(None, content_hash, title_key(title) if title else None)
        return self._related(vector, query, origin)

    def _is_copy(self, hit: StoredArticle, score: float, origin: _Origin) -> bool:
        return (
            score >= self.duplicate_threshold
            or hit.content_hash == origin.content_hash
            or (bool(origin.title_key) and title_key(hit.title) == origin.title_key)
        )

    def _related(self, vector: np.ndarray, query: RelatedQuery, origin: _Origin) -> list[Hit]:
        index, store = self.bundle.index, self.bundle.store
        excluded = set(store.rowids_for(list(query.exclude)))
        if origin.rowid is not None:
            excluded.add(origin.rowid)
        allowed: np.ndarray | None = None
        if query.filters.active():
            allowed = store.eligible(query.filters)
            if excluded:
                allowed = allowed[~np.isin(allowed, list(excluded))]
            if len(allowed) == 0:
                return []
        pool = len(index) if allowed is None else len(allowed)
        want = query.k + len(excluded) + SEARCH_MARGIN
        while True:
            scores, ids = index.search(vector, want, allowed)
            hits = self._select(scores, ids, query.k, excluded, origin)
            # Stop once the list is full or every candidate has been seen.
            if len(hits) >= query.k or len(ids) >= pool or want >= pool:
                return hits
            want *= 4

    def _select(
        self, scores: np.ndarray, ids: np.ndarray, k: int, excluded: set[int], origin: _Origin
    ) -> list[Hit]:
        candidates = [(float(s), int(i)) for s, i in zip(scores, ids, strict=True) if int(i) not in excluded]
        articles = self.bundle.store.get_many([i for _, i in candidates])
        hits: list[Hit] = []
        kept_vectors: list[np.ndarray] = []
        seen_hashes: set[str] = set()
        seen_titles: set[str] = set()
        for score, ident in candidates:
            article = articles.get(ident)
            if article is None or self._is_copy(article, score, origin):
                continue
            # Reprints of one another collapse into the first (best-scored) of them.
            key = title_key(article.title)
            if article.content_hash in seen_hashes or (key and key in seen_titles):
                continue
            vector = self.bundle.index.reconstruct(ident)
            if kept_vectors and float(np.max(np.stack(kept_vectors) @ vector)) >= self.duplicate_threshold:
                continue
            kept_vectors.append(vector)
            seen_hashes.add(article.content_hash)
            seen_titles.add(key)
            hits.append(Hit(article, score))
            if len(hits) == k:
                break
        return hits
