"""A persistent embedding cache keyed by model and content hash, so rebuilds embed only what changed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from embeddings.errors import CacheError
from embeddings.vectors import ModelSpec


def model_key(spec: ModelSpec) -> str:
    """A short key for everything that changes a vector: model, dimension, prefix, length."""
    return hashlib.sha256(json.dumps(spec.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _reported(path: Path) -> Iterator[None]:
    """SQLite's errors (a damaged file, a full disk) as one CacheError naming the file and the way out."""
    try:
        yield
    except sqlite3.Error as exc:
        raise CacheError(
            f"embedding cache {path}: {exc} (it is only a cache: delete it, or set "
            "RELATED_EMBEDDING_CACHE elsewhere, and the build embeds everything again)"
        ) from exc


class EmbeddingCache:
    """SQLite table of float32 vectors by (model key, content hash)."""

    def __init__(self, path: Path, spec: ModelSpec) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with _reported(path):
            self._conn = sqlite3.connect(path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors ("
                " model TEXT NOT NULL, content_hash TEXT NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model, content_hash)) WITHOUT ROWID"
            )
        self._model = model_key(spec)
        self._dim = spec.dimension

    def get_many(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the given content hashes (missing ones are left out)."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            with _reported(self.path):
                rows = self._conn.execute(
                    f"SELECT content_hash, vector FROM vectors WHERE model = ? AND content_hash IN ({marks})",
                    [self._model, *chunk],
                ).fetchall()
            for digest, blob in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape == (self._dim,):
                    found[digest] = vector
        return found

    def put_many(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors (one row each) under their content hashes, durably."""
        rows = [
            (self._model, h, np.asarray(v, dtype=np.float32).tobytes())
            for h, v in zip(hashes, vectors, strict=True)
        ]
        with _reported(self.path), self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
