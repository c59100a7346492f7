"""One bundle: a FAISS index, an SQLite article store, the signals' vectors and manifest.json in a directory.

Its manifest lists every file with its size and checksum (stamped when it is published, publish.py);
loading checks them, and the models that made the vectors, before anything is served from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from embeddings.articles.rules import Rules
from embeddings.errors import BundleCorruptError, BundleMismatchError, BundleNotFoundError
from embeddings.index.columns import Columns
from embeddings.index.filters import Filters
from embeddings.index.lexical_index import LexicalIndex
from embeddings.index.store import ArticleStore, StoredArticle
from embeddings.index.vector_index import VectorIndex
from embeddings.vectors import LEX, MAIN, ModelSpec

FORMAT_VERSION = 4  # 3: lexical rows, reprint signatures of word shingles; 4: image_url, listed
READABLE_FORMATS = (3, 4)  # a store of format 3 reads as pictureless, every article listed
INDEX_FILE = "index.faiss"
STORE_FILE = "articles.sqlite"
REPRINTS_FILE = "reprints.npy"
NEIGHBOURS_FILE = "neighbours.npy"  # each article's nearest others by the main signal, precomputed
KEYS_FILE = "keys.npy"  # each article's title and content keys (index/columns.py), for the reprint tests
EXACT_SUBSET = 20_000  # filtered searches over at most this many articles scan their vectors directly
MANIFEST_FILE = "manifest.json"


def signal_file(name: str) -> str:
    """File name of a signal's vectors (row i is the article with FAISS id i + 1)."""
    return f"signal-{name}.npy"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Bundle:
    """A loaded bundle: index, store, signal vectors and manifest."""

    path: Path
    manifest: dict[str, Any]
    index: VectorIndex
    store: ArticleStore
    signals: dict[str, np.ndarray]
    reprints: np.ndarray  # MinHash signatures of each article's words, row i is FAISS id i + 1
    columns: Columns  # what ranking reads of each article, row i is FAISS id i + 1
    neighbours: np.ndarray | None = None  # int32 FAISS ids of each article's nearest others, 0 pads
    lexical: LexicalIndex | None = None  # the lexical signal's rows, when the bundle has it

    def vectors(self, name: str, rowids: np.ndarray) -> np.ndarray:
        """The `name` signal's vectors of the articles with FAISS ids `rowids`."""
        return self.signals[name][np.asarray(rowids, dtype=np.int64) - 1]

    def lexical_rows(self, rowids: np.ndarray) -> sp.csr_matrix:
        """The lexical rows of the articles with FAISS ids `rowids`."""
        assert self.lexical is not None
        return self.lexical.take(rowids)

    def lexical_cosines(self, rowids: np.ndarray, query: sp.csr_matrix) -> np.ndarray:
        """The lexical cosine of each article with FAISS ids `rowids` with `query`."""
        assert self.lexical is not None
        return self.lexical.cosines(rowids, query)

    def lexical_search(
        self, query: sp.csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """About the `k` articles lexically nearest `query`: (scores, FAISS ids), among `allowed`."""
        if self.lexical is None:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        return self.lexical.search(query, k, allowed)

    def signatures(self, rowids: np.ndarray) -> np.ndarray:
        """The reprint signatures of the articles with FAISS ids `rowids`."""
        return self.reprints[np.asarray(rowids, dtype=np.int64) - 1]

    def row_columns(self, rowids: np.ndarray) -> Columns:
        """The ranking columns of the articles with FAISS ids `rowids`."""
        return self.columns.take(np.asarray(rowids, dtype=np.int64) - 1)

    @property
    def version(self) -> str:
        """The bundle's version name."""
        return str(self.manifest["version"])

    @property
    def signal_names(self) -> frozenset[str]:
        """The signals whose vectors the bundle holds."""
        return frozenset(self.signals) | ({LEX} if self.lexical is not None else set())

    def __len__(self) -> int:
        return len(self.index)

    def get(self, article_id: str) -> StoredArticle | None:
        """The article with the publisher's id `article_id`, or None."""
        return self.store.get(article_id)

    def get_many(self, rowids: Sequence[int]) -> dict[int, StoredArticle]:
        """The records lists are made of, by FAISS id: articles without their bodies."""
        return self.store.get_many(rowids, bodies=False)

    def rowids_for(self, article_ids: Sequence[str]) -> list[int]:
        """FAISS ids of the given publisher ids (unknown ids are left out)."""
        return self.store.rowids_for(article_ids)

    def rules_for(self, article_id: str) -> Rules | None:
        """The editorial rules of `article_id`'s list, as the build folded them in."""
        return self.store.rules_for(article_id)

    def eligible(self, filters: Filters) -> np.ndarray:
        """FAISS ids of the articles that pass `filters`."""
        return self.store.eligible(filters)

    def languages(self) -> frozenset[str]:
        """The language codes of the articles ("" for articles without one)."""
        return self.store.languages()

    def date_range(self) -> tuple[float, float] | None:
        """Epoch seconds of the first and last dated articles, or None."""
        return self.store.date_range()

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        excluded: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` (scores, FAISS ids) for one main-signal vector, among `allowed` or all but `excluded`.

        A small `allowed` set is searched exactly over its own vectors: faster than a filtered pass
        over the whole index, and exact where a filtered graph search could come back short.
        """
        if allowed is not None and excluded is not None and len(excluded):
            allowed, excluded = np.setdiff1d(allowed, excluded), None
        if allowed is not None and len(allowed) <= EXACT_SUBSET and MAIN in self.signals:
            allowed = np.asarray(allowed, dtype=np.int64)
            scores = self.signals[MAIN][allowed - 1] @ np.asarray(query, dtype=np.float32)
            top = np.argsort(-scores, kind="stable")[:k]
            return scores[top].astype(np.float32), allowed[top]
        return self.index.search(query, k, allowed, excluded)

    def nearest(self, rowid: int, query: np.ndarray | None = None) -> tuple[np.ndarray, bool] | None:
        """The precomputed nearest others of row `rowid`, best first, and whether they are all others."""
        if self.neighbours is None:
            return None
        row: np.ndarray = self.neighbours[rowid - 1]
        found = np.asarray(row[row > 0], dtype=np.int64)
        return found, len(found) < row.shape[0]  # a short row: the corpus has no more articles

    def close(self) -> None:
        """Release the store's connection."""
        self.store.close()


def read_manifest(bundle_dir: Path) -> dict[str, Any]:
    """Parse a bundle's manifest.json."""
    path = bundle_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleCorruptError(f"{bundle_dir}: no {MANIFEST_FILE}") from exc
    except (OSError, ValueError) as exc:
        raise BundleCorruptError(f"{path}: unreadable manifest ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") not in READABLE_FORMATS:
        raise BundleCorruptError(f"{path}: not a bundle manifest of format {FORMAT_VERSION} (or 3)")
    return manifest


def check_model(manifest: dict[str, Any], expected: ModelSpec) -> None:
    """Refuse a bundle whose embeddings were made by another model or text setup."""
    stamped = manifest.get("model", {})
    for key, want in expected.as_dict().items():
        if stamped.get(key) != want:
            raise BundleMismatchError(
                f"bundle {manifest.get('version')} was built with {key}={stamped.get(key)!r}, "
                f"the service is configured with {key}={want!r}: rebuild it, or set the model as it was "
                "for that build (RELATED_MODEL, RELATED_FINE_TUNED, RELATED_ADAPTER, RELATED_BACKEND)"
            )


def check_signals(manifest: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    """Refuse a bundle that lacks a signal the scorer needs, or made it with another model."""
    stamped = manifest.get("signals", {})
    for name, spec in expected.items():
        if name not in stamped:
            raise BundleMismatchError(
                f"bundle {manifest.get('version')} has no {name!r} signal, which the configured scorer "
                f"uses: rebuild it with this scorer, or choose a scorer that needs only {sorted(stamped)}"
            )
        if stamped[name] != spec:
            raise BundleMismatchError(
                f"bundle {manifest.get('version')} made its {name!r} signal with {stamped[name]}, "
                f"the service is configured with {spec}: rebuild it"
            )


def _load_rows(path: Path, count: int, dtype: type[np.generic]) -> np.ndarray:
    try:
        # Mapped read-only: the processes serving one bundle share its pages.
        rows: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleCorruptError(f"cannot read {path}: {exc}") from exc
    if rows.ndim != 2 or len(rows) != count or rows.dtype != dtype:
        raise BundleCorruptError(
            f"{path}: {rows.shape} {rows.dtype}, expected {count} rows of {dtype.__name__}"
        )
    return rows


def load_bundle(
    bundle_dir: Path,
    expected: ModelSpec | None = None,
    verify: bool = True,
    signals: dict[str, dict[str, Any]] | None = None,
    lexical: bool = True,
) -> Bundle:
    """Load and check a bundle: files present and unchanged, counts consistent, models as expected.

    `lexical`: load the lexical rows too (about 8 KB an article with their postings); a service whose
    scorer does not use them leaves them on disk.
    """
    if not bundle_dir.is_dir():
        raise BundleNotFoundError(f"no bundle at {bundle_dir}")
    manifest = read_manifest(bundle_dir)
    if expected is not None:
        check_model(manifest, expected)
    if signals is not None:
        check_signals(manifest, signals)
    files = manifest.get("files", {})
    for name in sorted({INDEX_FILE, STORE_FILE, REPRINTS_FILE} | set(files)):
        path = bundle_dir / name
        if not path.is_file():
            raise BundleCorruptError(f"{bundle_dir}: {name} is missing")
        want = files.get(name, {})
        if path.stat().st_size != want.get("bytes"):
            raise BundleCorruptError(
                f"{path}: size {path.stat().st_size} differs from the manifest's {want.get('bytes')}"
            )
        if verify and file_sha256(path) != want.get("sha256"):
            raise BundleCorruptError(f"{path}: checksum differs from the manifest")
    index = VectorIndex.load(bundle_dir / INDEX_FILE)
    store = ArticleStore(bundle_dir / STORE_FILE)
    count = manifest.get("counts", {}).get("articles")
    if not (len(index) == len(store) == count):
        store.close()
        raise BundleCorruptError(
            f"{bundle_dir}: {len(index)} vectors, {len(store)} stored articles, manifest says {count}"
        )
    if index.dimension != manifest["model"]["dimension"]:
        store.close()
        raise BundleCorruptError(f"{bundle_dir}: index dimension {index.dimension} differs from the manifest")
    try:
        vectors = {
            name: _load_rows(bundle_dir / signal_file(name), len(index), np.float32)
            for name in manifest.get("signals", {})
            if name != LEX
        }
        reprints = _load_rows(bundle_dir / REPRINTS_FILE, len(index), np.uint32)
        neighbours = None
        if NEIGHBOURS_FILE in files:  # bundles built before precomputed lists have none
            neighbours = _load_rows(bundle_dir / NEIGHBOURS_FILE, len(index), np.int32)
        keys = None
        if KEYS_FILE in files:  # bundles built before it get their keys computed here
            keys = _load_rows(bundle_dir / KEYS_FILE, len(index), np.int64)
        columns = store.columns(keys)
        rows = None
        if lexical and LEX in manifest.get("signals", {}):
            try:
                rows = LexicalIndex.load(bundle_dir, len(index))
            except (OSError, ValueError) as exc:
                raise BundleCorruptError(f"{bundle_dir}: unreadable lexical rows ({exc})") from exc
    except BaseException:
        store.close()
        raise
    return Bundle(bundle_dir, manifest, index, store, vectors, reprints, columns, neighbours, rows)
