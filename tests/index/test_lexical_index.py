"""The bundle's lexical rows: saved, loaded, checked, searched by their postings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.index.lexical_index import DATA_FILE, INDPTR_FILE, QUERY_TERMS, LexicalIndex, cosines
from embeddings.model.lexical import LexicalModel, counts

TEXTS = [
    "Floods in Jeddah: rescue teams evacuate Al-Safa district after heavy rain",
    "Floods in Jeddah: a bridge collapses in Quwaiza, traffic stops",
    "Oil prices rise after the OPEC meeting in Vienna",
    "The central bank keeps its interest rate unchanged",
    "Quwaiza residents count the damage of the Jeddah floods",
]


def index_of(texts: list[str]) -> tuple[LexicalIndex, LexicalModel]:
    """The lexical index of `texts`, and its model."""
    matrix = counts(texts)
    model = LexicalModel.fit(matrix)
    return LexicalIndex(model.weigh(matrix), model.idf), model


def test_search_finds_the_articles_sharing_rare_names(tmp_path: Path) -> None:
    index, model = index_of(TEXTS)
    query = model.vectors(["Damage in Quwaiza after the Jeddah floods"])
    scores, ids = index.search(query, 3)
    assert ids[0] == 5 and set(ids[:3]) == {1, 2, 5}
    assert list(scores) == sorted(scores, reverse=True)
    exact = cosines(index.take(ids), query)
    assert np.allclose(exact, scores, atol=1e-5)  # a short query reads every n-gram
    scores, ids = index.search(query, 3, allowed=np.array([1, 3, 4]))
    assert ids[0] == 1 and set(ids) <= {1, 3, 4}
    assert index.search(model.vectors([""]), 3)[1].size == 0


def test_long_queries_read_their_heaviest_ngrams_only() -> None:
    long_text = " ".join(TEXTS) * 3
    index, model = index_of([*TEXTS, long_text])
    query = model.vectors([long_text])
    assert query.nnz > QUERY_TERMS
    _, ids = index.search(query, 1)
    assert ids[0] == 6


def test_save_load_and_refuse_damaged_rows(tmp_path: Path) -> None:
    index, _ = index_of(TEXTS)
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path, len(TEXTS))
    assert (loaded.rows != index.rows).nnz == 0 and np.array_equal(loaded.idf, index.idf)
    with pytest.raises(ValueError, match="rows"):
        LexicalIndex.load(tmp_path, len(TEXTS) + 1)
    np.save(tmp_path / DATA_FILE, index.rows.data[:-1])
    with pytest.raises(ValueError, match="rows"):
        LexicalIndex.load(tmp_path, len(TEXTS))
    index.save(tmp_path)
    np.save(tmp_path / INDPTR_FILE, index.rows.indptr.astype(np.float64))
    with pytest.raises(ValueError):
        LexicalIndex.load(tmp_path, len(TEXTS))
