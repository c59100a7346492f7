"""The FAISS index wrapper, checked against exact answers on seeded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import BundleCorruptError
from embeddings.index.vector_index import EXACT_MAX_ARTICLES, VectorIndex, kind_for


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


def test_the_kind_follows_the_corpus_size_unless_overridden() -> None:
    assert kind_for(EXACT_MAX_ARTICLES) == "flat" and kind_for(EXACT_MAX_ARTICLES + 1) == "hnsw"
    assert kind_for(10, "hnsw") == "hnsw" and kind_for(10**7, "flat") == "flat"


def test_an_hnsw_index_finds_what_exact_search_finds(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(50, 32))
    vectors = (centres[rng.integers(0, 50, 3000)] + 0.3 * rng.normal(size=(3000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 3001, dtype=np.int64)
    VectorIndex.build(vectors, ids, "hnsw").save(tmp_path / "h.faiss")
    graph, exact = VectorIndex.load(tmp_path / "h.faiss"), VectorIndex.build(vectors, ids)
    assert graph.kind == "hnsw" and exact.kind == "flat" and len(graph) == 3000
    hits = 0
    for q in range(0, 3000, 30):
        hits += len(set(graph.search(vectors[q], 10)[1]) & set(exact.search(vectors[q], 10)[1]))
    assert hits / (100 * 10) >= 0.98  # recall@10
    allowed, excluded = ids[::5], ids[:1000]
    assert set(graph.search(vectors[0], 20, allowed)[1]) <= set(allowed)
    few = ids[::40]  # 2.5%: the walk is widened, so that the filtered search does not come back short
    _, found = graph.search(vectors[0], 67, few)
    exact_found = exact.search(vectors[0], 67, few)[1]
    assert len(found) == 67 and len(set(found) & set(exact_found)) >= 0.9 * 67
    assert not set(graph.search(vectors[0], 50, excluded=excluded)[1]) & set(excluded)
