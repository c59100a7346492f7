"""The lexical signal's model: normalization, hashed 4-grams, the corpus's IDF."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.model.lexical import FEATURES, LexicalModel, counts, normalize

CORPUS = [
    "Floods in Jeddah: rescue teams evacuate Al-Safa district",
    "Floods in Jeddah: a bridge collapses in Quwaiza",
    "Oil prices rise after the OPEC meeting in Vienna",
    "The central bank keeps its interest rate unchanged",
]


def test_normalize_unifies_arabic_letter_forms_and_case() -> None:
    assert normalize("أحمد إبراهيم آل") == normalize("احمد ابراهيم ال")
    assert normalize("مُحَافِظ") == "محافظ"  # diacritics
    assert normalize("مـــحافظ") == "محافظ"  # tatweel
    assert normalize("مستشفى") == normalize("مستشفي")  # alef maqsura
    assert normalize("مدرسة") == normalize("مدرسه")  # taa marbuta
    assert normalize("مؤتمر رئيس") == normalize("موتمر رييس")  # hamza on waw and ya
    assert normalize("JEDDAH Floods") == "jeddah floods"
    assert normalize("Ｆｌｏｏｄ") == "flood"  # NFKC


def test_vectors_are_unit_rows_weighted_by_the_corpus() -> None:
    model = LexicalModel.fit(counts(CORPUS))
    assert model.idf.shape == (FEATURES,) and model.idf.dtype == np.float32
    rows = model.vectors(CORPUS)
    assert rows.shape == (4, FEATURES)
    assert np.allclose(np.sqrt(rows.multiply(rows).sum(axis=1)).A.ravel(), 1.0)
    similarity = (rows @ rows.T).toarray()
    assert similarity[0, 1] > 0.2 > similarity[0, 2]  # the two flood stories share their names
    # A text written later is weighed with the same IDF: the same vector as in the corpus.
    again = LexicalModel(model.idf.copy()).vectors([CORPUS[1]])
    assert np.allclose(again.toarray(), rows[1].toarray())
    # Rare n-grams weigh more than common ones.
    common = counts(["in the"]).indices
    rare = counts(["Quwaiza"]).indices
    assert model.idf[rare].mean() > model.idf[common].mean()


def test_unseen_and_empty_texts() -> None:
    model = LexicalModel.fit(counts(CORPUS))
    empty = model.vectors(["", "  "])
    assert empty.nnz == 0
    unseen = model.vectors(["Zanzibar"])
    assert unseen.nnz > 0 and float(unseen.multiply(unseen).sum()) == pytest.approx(1.0)
