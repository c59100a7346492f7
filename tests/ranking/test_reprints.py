"""Reprint detection by shared words."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.ranking.reprints import PERMUTATIONS, overlap, signature, signatures, words

WIRE = (
    "أعلنت وزارة الصحة اليوم تسجيل حالات جديدة في المنطقة الشرقية وأكدت أن الفرق الطبية تتابع "
    "المخالطين وأن الوضع تحت السيطرة مع استمرار حملات التوعية في المدارس والمساجد والأسواق"
)


def test_words_fold_case_and_diacritics() -> None:
    assert words("Wadi SAFA, wadi safa!") == {"wadi", "safa"}
    assert words("مُحَافِظ") == words("محافظ") == {"محافظ"}
    assert words("!!!") == set()


def test_overlap_estimates_jaccard() -> None:
    rewrite = WIRE.replace("اليوم", "أمس").replace("الشرقية", "الغربية")  # 2 of 27 words changed
    other = (
        "ارتفاع أسعار النفط في الأسواق العالمية بعد قرار أوبك خفض الإنتاج "
        "وسط مخاوف من تباطؤ الطلب في الصين وأوروبا خلال الربع المقبل"
    )
    rows = signatures([WIRE, rewrite, other])
    assert rows.shape == (3, PERMUTATIONS) and rows.dtype == np.uint32
    got = overlap(rows[0], rows)[0]
    true_jaccard = len(words(WIRE) & words(rewrite)) / len(words(WIRE) | words(rewrite))
    assert got[0] == 1.0
    assert got[1] == pytest.approx(true_jaccard, abs=0.15)
    assert got[2] < 0.15
    assert np.array_equal(signature(WIRE), rows[0])  # stable: bundles store them


def test_short_texts_are_judged_otherwise() -> None:
    assert np.array_equal(signature("slash story one"), signature("!!! ???"))
    empty = signature("!!! ???")
    assert overlap(empty, np.stack([empty, signature(WIRE)])).tolist() == [[0.0, 0.0]]
    assert overlap(signature(WIRE), empty).tolist() == [[0.0]]


def test_overlap_matrix_matches_row_by_row() -> None:
    oil = "ارتفاع أسعار النفط في الأسواق العالمية بعد قرار أوبك خفض الإنتاج وسط مخاوف من تباطؤ الطلب"
    rows = signatures([WIRE, WIRE.replace("اليوم", "أمس"), "!!!", WIRE[:60] + " " + oil])
    matrix = overlap(rows, rows)
    assert matrix.shape == (4, 4) and np.allclose(matrix, matrix.T)
    for i, row in enumerate(rows):
        assert matrix[i].tolist() == overlap(row, rows)[0].tolist()
        expected = 0.0 if i == 2 else 1.0  # a text with no signature overlaps nothing, not even itself
        assert matrix[i, i] == expected
