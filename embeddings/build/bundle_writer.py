"""Writing a bundle: index, precomputed neighbours, vectors, signatures and store; checked, then published."""

from __future__ import annotations

import importlib.metadata
import logging
import shutil
import sqlite3
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.articles.article import Article
from embeddings.articles.rules import Rules
from embeddings.errors import BuildError
from embeddings.index.bundle import (
    INDEX_FILE,
    KEYS_FILE,
    NEIGHBOURS_FILE,
    REPRINTS_FILE,
    STORE_FILE,
    load_bundle,
    signal_file,
)
from embeddings.index.columns import Columns
from embeddings.index.lexical_index import LexicalIndex
from embeddings.index.publish import finalize, prune, publish, staging_dir
from embeddings.index.store import write_store
from embeddings.index.vector_index import INDEX_TYPES, VectorIndex, kind_for
from embeddings.settings import Settings
from embeddings.vectors import MAIN, ModelSpec

log = logging.getLogger(__name__)

NEIGHBOUR_MARGIN = 16  # neighbours stored beyond the rerank depth, for the ones filters drop


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in ("related-articles", "faiss-cpu", "sentence-transformers", "transformers", "torch", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


def write_bundle(
    settings: Settings,
    version: str,
    articles: Sequence[Article],
    signals: Mapping[str, np.ndarray],
    reprints: np.ndarray,
    main_spec: ModelSpec,
    signal_specs: dict[str, dict[str, Any]],
    extra: dict[str, Any],
    lexical: LexicalIndex | None = None,
    rules: Mapping[str, Rules] | None = None,
) -> tuple[Path, int]:
    """Write, check and publish a bundle of `articles` (row i + 1 each); return its path and size.

    The index, the precomputed neighbours, every signal, the reprint signatures and the store are
    written under a staging name, stamped and moved into place, loaded back as the service will load
    them, and only then published. The caller holds the build lock. `extra` goes into the manifest.
    """
    bundles = settings.bundles
    staging = staging_dir(bundles, version)
    try:
        rowids = np.arange(1, len(articles) + 1, dtype=np.int64)
        kind = kind_for(len(articles), settings.index_kind)
        index = VectorIndex.build(signals[MAIN], rowids, kind)
        index.save(staging / INDEX_FILE)
        # Every article's candidates, so that the service answers most lists by lookup.
        depth = settings.rerank_depth + NEIGHBOUR_MARGIN
        started = time.monotonic()
        neighbours = index.neighbours(signals[MAIN], rowids, depth)
        np.save(staging / NEIGHBOURS_FILE, neighbours, allow_pickle=False)
        log.info("neighbours: %d per article in %.1fs", depth, time.monotonic() - started)
        for name, vectors in signals.items():  # the dense ones (the lexical rows are saved below)
            np.save(staging / signal_file(name), vectors, allow_pickle=False)
        np.save(staging / REPRINTS_FILE, reprints, allow_pickle=False)
        if lexical is not None:
            lexical.save(staging)
        keys = Columns.keys_of([a.title for a in articles], [a.content_hash() for a in articles])
        np.save(staging / KEYS_FILE, keys, allow_pickle=False)
        count = write_store(staging / STORE_FILE, zip(rowids.tolist(), articles, strict=True), rules)
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
        final = finalize(staging, manifest)
    except (OSError, sqlite3.Error, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
        try:
            free = f"{shutil.disk_usage(bundles).free:,}"
        except OSError:
            free = "unknown"
        shutil.rmtree(staging, ignore_errors=True)
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise BuildError(
            f"cannot write bundle {version} ({first}; {free} bytes were left free): "
            "the published bundle is unchanged"
        ) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Check the finished bundle as the service will load it, before anyone can see it.
    try:
        load_bundle(final, main_spec, signals=signal_specs).close()
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    publish(bundles, final)
    prune(bundles, settings.keep_bundles)
    return final, count
