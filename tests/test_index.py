"""The FAISS index wrapper, checked against exact answers on seeded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import BundleCorruptError
from embeddings.index import VectorIndex


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors, np.arange(300, dtype=np.int64) * 3 + 11


def test_search_matches_brute_force(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, ids = data
    index = VectorIndex.build(vectors, ids)
    query = vectors[42]
    scores, found = index.search(query, 10)
    expected = np.argsort(-(vectors @ query))[:10]
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, (vectors @ query)[expected], rtol=1e-5)


def test_search_within_allowed_ids(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, ids = data
    index = VectorIndex.build(vectors, ids)
    allowed = ids[::7]
    _, found = index.search(vectors[0], 5, allowed)
    assert set(found) <= set(allowed)
    rows = np.arange(0, 300, 7)
    expected = rows[np.argsort(-(vectors[rows] @ vectors[0]))[:5]]
    np.testing.assert_array_equal(found, ids[expected])
    assert len(index.search(vectors[0], 50, allowed[:3])[1]) == 3


def test_save_load_reconstruct(tmp_path: Path, data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, ids = data
    VectorIndex.build(vectors, ids).save(tmp_path / "i.faiss")
    index = VectorIndex.load(tmp_path / "i.faiss")
    assert len(index) == 300 and index.dimension == 16
    np.testing.assert_array_equal(index.reconstruct(int(ids[5])), vectors[5])
    np.testing.assert_array_equal(index.ids(), ids)


def test_load_refuses_garbage(tmp_path: Path) -> None:
    path = tmp_path / "i.faiss"
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(BundleCorruptError):
        VectorIndex.load(path)
