"""The batch rebuild: read and validate an archive, embed (reusing the cache), write and publish a bundle."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from embeddings import bundle as bundles_mod
from embeddings.articles import Article, ReadResult, input_files, read_articles
from embeddings.cache import EmbeddingCache
from embeddings.columns import Columns
from embeddings.errors import BuildError, InvalidArticlesError
from embeddings.index import INDEX_TYPES, VectorIndex, kind_for
from embeddings.model import Encoder, ModelSpec
from embeddings.reprints import signatures as reprint_signatures
from embeddings.settings import Settings
from embeddings.signals import MAIN, SignalEncoders
from embeddings.store import write_store
from embeddings.text import article_text
from embeddings.writes import Write, WriteLog, fold

log = logging.getLogger(__name__)

NEIGHBOUR_MARGIN = 16  # neighbours stored beyond the rerank depth, for the ones filters drop
EMBED_CHUNK = 256  # articles embedded between two cache writes: an interrupted build keeps its work


@dataclass
class BuildReport:
    """What a build read, indexed, rejected and how long it took."""

    version: str
    path: str
    read: int
    indexed: int
    rejected: int
    embedded: int  # distinct texts embedded by this build
    reused: int  # articles whose vector was already in the cache
    seconds: float
    rejects_file: str | None

    def summary(self) -> str:
        """One line for people."""
        extra = f", rejects in {self.rejects_file}" if self.rejects_file else ""
        return (
            f"read {self.read}, indexed {self.indexed}, rejected {self.rejected}{extra}; "
            f"embedded {self.embedded} texts, {self.reused} articles from the cache; "
            f"bundle {self.version} published in {self.seconds:.1f}s"
        )


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("related-articles", "faiss-cpu", "sentence-transformers", "transformers", "torch", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def _input_checksum(input_path: Path) -> dict[str, Any]:
    files = input_files(input_path)
    sums = {f.name: bundles_mod.file_sha256(f) for f in files}
    combined = (
        sums[files[0].name] if len(files) == 1 else hashlib.sha256(json.dumps(sums).encode()).hexdigest()
    )
    return {"name": input_path.name, "files": sums, "sha256": combined}


def _write_rejects(path: Path, result: ReadResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in result.rejected_rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


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


def _seed(cache: EmbeddingCache, name: str, spec: dict[str, Any], writes: list[Write]) -> None:
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


def _embed_signals(
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
            _seed(cache, name, encoder.spec.as_dict(), logged or [])
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


def write_bundle(
    settings: Settings,
    version: str,
    articles: Sequence[Article],
    signals: Mapping[str, np.ndarray],
    reprints: np.ndarray,
    main_spec: ModelSpec,
    signal_specs: dict[str, dict[str, Any]],
    extra: dict[str, Any],
) -> tuple[Path, int]:
    """Write, check and publish a bundle of `articles` (row i + 1 each); return its path and size.

    The index, the precomputed neighbours, every signal, the reprint signatures and the store are
    written under a staging name, stamped and moved into place, loaded back as the service will load
    them, and only then published. The caller holds the build lock. `extra` goes into the manifest.
    """
    bundles = settings.bundles
    staging = bundles_mod.staging_dir(bundles, version)
    try:
        rowids = np.arange(1, len(articles) + 1, dtype=np.int64)
        kind = kind_for(len(articles), settings.index_kind)
        index = VectorIndex.build(signals[MAIN], rowids, kind)
        index.save(staging / bundles_mod.INDEX_FILE)
        # Every article's candidates, so that the service answers most lists by lookup.
        depth = settings.rerank_depth + NEIGHBOUR_MARGIN
        started = time.monotonic()
        neighbours = index.neighbours(signals[MAIN], rowids, depth)
        np.save(staging / bundles_mod.NEIGHBOURS_FILE, neighbours, allow_pickle=False)
        log.info("neighbours: %d per article in %.1fs", depth, time.monotonic() - started)
        for name, vectors in signals.items():
            np.save(staging / bundles_mod.signal_file(name), vectors, allow_pickle=False)
        np.save(staging / bundles_mod.REPRINTS_FILE, reprints, allow_pickle=False)
        keys = Columns.keys_of([a.title for a in articles], [a.content_hash() for a in articles])
        np.save(staging / bundles_mod.KEYS_FILE, keys, allow_pickle=False)
        count = write_store(staging / bundles_mod.STORE_FILE, zip(rowids.tolist(), articles, strict=True))
        manifest: dict[str, Any] = {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": main_spec.as_dict(),
            "signals": signal_specs,
            "index": {
                "type": INDEX_TYPES[kind],
                "kind": kind,
                "metric": "inner_product",
                "neighbours": depth,
            },
            **extra,
            "counts": {"articles": count, **extra.get("counts", {})},
            "libraries": _library_versions(),
        }
        final = bundles_mod.finalize(staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Check the finished bundle as the service will load it, before anyone can see it.
    try:
        bundles_mod.load_bundle(final, main_spec, signals=signal_specs).close()
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    bundles_mod.publish(bundles, final)
    bundles_mod.prune(bundles, settings.keep_bundles)
    return final, count


@contextlib.contextmanager
def _engine(settings: Settings, version: str, progress: bool) -> Iterator[Engine | None]:
    """The configured engine, started for this build and stopped after it (None: this process)."""
    if settings.engine == "local":
        yield None
        return
    from embeddings.ray_engine import RayEngine

    with RayEngine(settings, version, progress) as engine:
        yield engine


def build_bundle(
    settings: Settings,
    input_path: Path,
    encoders_factory: Callable[[], SignalEncoders],
    field_map: dict[str, str] | None = None,
    progress: bool = True,
) -> BuildReport:
    """Run a whole build and publish its bundle; the live bundle is untouched unless this succeeds."""
    started = time.monotonic()
    bundles = settings.bundles
    version = bundles_mod.new_version()
    with bundles_mod.build_lock(bundles):
        bundles_mod.prune(bundles, settings.keep_bundles)  # clears staging dirs of builds that died
        result = read_articles(input_path, field_map)
        log.info(
            "read %d rows from %s: %d valid, %d invalid",
            result.rows_read,
            input_path,
            len(result.articles),
            len(result.errors),
        )
        rejects_file: Path | None = None
        if result.errors:
            if not settings.skip_invalid:
                raise InvalidArticlesError(str(input_path), result.errors)
            rejects_file = settings.rejects or bundles / "rejects" / f"{version}.jsonl"
            _write_rejects(rejects_file, result)
            for err in result.errors:
                log.warning("skipped %s", err)
        log_path = settings.resolved_write_log()
        write_log = WriteLog(log_path, create=False) if log_path.exists() else None
        try:
            folded = fold(result.articles, write_log)
        finally:
            if write_log is not None:
                write_log.close()
        articles = folded.articles
        if folded.through:
            log.info(
                "folded in the write log through #%d: %d puts, %d deletes",
                folded.through,
                len(folded.puts),
                folded.deletes,
            )
        if not articles:
            raise BuildError(f"{input_path}: no valid articles to index")

        encoders = encoders_factory()
        with _engine(settings, version, progress) as engine:
            signals, embedded, reused = _embed_signals(
                articles, encoders, settings, progress, folded.puts, engine
            )

        texts = [article_text(a.title, a.body) for a in articles]
        final, count = write_bundle(
            settings,
            version,
            articles,
            signals,
            reprint_signatures(texts),
            encoders.main.spec,
            encoders.specs(),
            {
                "counts": {
                    "read": result.rows_read,
                    "rejected": len(result.errors),
                    "embedded": embedded,
                    "reused": reused,
                },
                "input": _input_checksum(input_path),
                # The service replays the logged writes after this one over the bundle.
                "writes": {
                    "log_id": folded.log_id,
                    "folded_through": folded.through,
                    "puts": len(folded.puts),
                    "deletes": folded.deletes,
                },
                "engine": settings.engine,
                "build_seconds": round(time.monotonic() - started, 3),
            },
        )

    report = BuildReport(
        version=version,
        path=str(final),
        read=result.rows_read,
        indexed=count,
        rejected=len(result.errors),
        embedded=embedded,
        reused=reused,
        seconds=round(time.monotonic() - started, 3),
        rejects_file=str(rejects_file) if rejects_file else None,
    )
    log.info("build summary: %s", json.dumps(asdict(report)))
    return report
