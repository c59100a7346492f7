"""Embedding a build's articles: every signal, through the embedding cache, by an engine of chunks."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from embeddings.articles.article import Article
from embeddings.articles.text import article_text
from embeddings.errors import BuildError
from embeddings.live.writes import Write
from embeddings.model.cache import EmbeddingCache
from embeddings.model.encoders import Encoder
from embeddings.model.signals import SignalEncoders
from embeddings.settings import Settings
from embeddings.vectors import MAIN

log = logging.getLogger(__name__)

EMBED_CHUNK = 256  # articles embedded between two cache writes: an interrupted build keeps its work


# Embeds chunks of texts: yields (chunk number, the chunk's vectors) once for every chunk, in any order.
ChunkEmbedder = Callable[[Iterable[Sequence[str]]], Iterator[tuple[int, np.ndarray]]]


class Engine(Protocol):
    """Who embeds a build's texts: this process, or the workers of a distributed engine."""

    def embedder(self, signal: str, encoder: Encoder) -> ChunkEmbedder:
        """A function embedding chunks of texts exactly as `encoder` (the signal's) does."""
        ...


def local_embedder(encoder: Encoder, batch_size: int) -> ChunkEmbedder:
    """Embed the chunks here, one after another."""

    def embed(chunks: Iterable[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
        for number, texts in enumerate(chunks):
            yield number, encoder.encode(list(texts), batch_size=batch_size)

    return embed


def embed_articles(
    articles: list[Article],
    encoder: Encoder,
    cache: EmbeddingCache,
    batch_size: int,
    progress: bool,
    label: str = "embedding",
    embed: ChunkEmbedder | None = None,
) -> tuple[np.ndarray, int, int]:
    """Vectors for `articles` in order, embedding uncached texts only: (vectors, embedded, cache hits).

    The texts go in chunks of EMBED_CHUNK to `embed` (default: this process), and every chunk's vectors
    are cached as they come back. Every engine gets the very same chunks, so they get the same vectors.
    """
    hashes = [a.content_hash() for a in articles]
    cached = cache.get_many(hashes)
    hits = sum(h in cached for h in hashes)
    todo = [i for i, h in enumerate(hashes) if h not in cached]
    todo = list({hashes[i]: i for i in todo}.values())  # identical texts are embedded once
    chunks = [todo[start : start + EMBED_CHUNK] for start in range(0, len(todo), EMBED_CHUNK)]
    texts = ([article_text(articles[i].title, articles[i].body) for i in chunk] for chunk in chunks)
    bar = tqdm(
        total=len(todo),
        unit="article",
        desc=label,
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    try:
        for number, vectors in (embed or local_embedder(encoder, batch_size))(texts):
            chunk_hashes = [hashes[i] for i in chunks[number]]
            if vectors.shape != (len(chunk_hashes), encoder.spec.dimension):
                raise BuildError(
                    f"{label}: chunk {number} came back with vectors of shape {vectors.shape}, "
                    f"not {(len(chunk_hashes), encoder.spec.dimension)}"
                )
            cache.put_many(chunk_hashes, vectors)
            cached.update(zip(chunk_hashes, vectors, strict=True))
            bar.update(len(chunk_hashes))
    finally:
        bar.close()
    lost = sum(hashes[i] not in cached for i in todo)
    if lost:
        raise BuildError(f"{label}: {lost} of {len(todo)} texts came back without a vector")
    dim = encoder.spec.dimension
    out = np.stack([cached[h] for h in hashes]) if hashes else np.zeros((0, dim), dtype=np.float32)
    return out.astype(np.float32, copy=False), len(todo), hits


def seed_cache(cache: EmbeddingCache, name: str, spec: dict[str, Any], writes: list[Write]) -> None:
    """Put the logged vectors of writes made with this very encoder into the cache, unless there."""
    logged = {
        w.article.content_hash(): w.vectors[name]
        for w in writes
        if w.article is not None and w.specs.get(name) == spec
    }
    cached = cache.get_many(list(logged))
    missing = [h for h in logged if h not in cached]
    if missing:
        cache.put_many(missing, np.stack([logged[h] for h in missing]))


def embed_signals(
    articles: list[Article],
    encoders: SignalEncoders,
    settings: Settings,
    progress: bool,
    logged: list[Write] | None = None,
    engine: Engine | None = None,
) -> tuple[dict[str, np.ndarray], int, int]:
    """Every signal's vectors; counts (texts embedded, cache hits) are the main signal's."""
    out: dict[str, np.ndarray] = {}
    counts = (0, 0)
    for name, encoder in encoders.encoders.items():
        cache = EmbeddingCache(settings.resolved_embedding_cache(), encoder.spec)
        started = time.monotonic()
        try:
            seed_cache(cache, name, encoder.spec.as_dict(), logged or [])
            vectors, embedded, reused = embed_articles(
                articles,
                encoder,
                cache,
                settings.batch_size,
                progress,
                label=f"embedding ({name})",
                embed=engine.embedder(name, encoder) if engine else None,
            )
        finally:
            cache.close()
        log.info(
            "signal %s: embedded %d texts in %.1fs (%d from the cache)",
            name,
            embedded,
            time.monotonic() - started,
            reused,
        )
        out[name] = vectors
        if name == MAIN:
            counts = (embedded, reused)
    return out, *counts
