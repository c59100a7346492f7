"""Reprint detection by shared text: shingle containment."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.ranking.reprints import (
    NO_SIGNATURE,
    PERMUTATIONS,
    WIDTH,
    containment,
    shingles,
    signature,
    signatures,
    words,
)

WIRE = (
    "أعلنت وزارة الصحة اليوم تسجيل حالات جديدة في المنطقة الشرقية وأكدت أن الفرق الطبية تتابع "
    "المخالطين وأن الوضع تحت السيطرة مع استمرار حملات التوعية في المدارس والمساجد والأسواق"
)
OIL = (
    "ارتفاع أسعار النفط في الأسواق العالمية بعد قرار أوبك خفض الإنتاج "
    "وسط مخاوف من تباطؤ الطلب في الصين وأوروبا خلال الربع المقبل"
)


def follow_up(district: str, detail: str, figure: int) -> str:
    """A flood follow-up on one template: shared opening and closing, its own district and facts."""
    return (
        "سيول جدة: فرق الدفاع المدني تواصل أعمال الإنقاذ والإخلاء منذ ساعات الصباح الباكر "
        f"في حي {district} حيث {detail} وبلغ عدد المتضررين {figure} أسرة بحسب الحصر الأولي للجنة الميدانية "
        "ودعت الجهات المختصة السكان إلى الابتعاد عن مجاري الأودية وعدم المجازفة بعبور الطرق المغمورة"
    )


def test_words_and_shingles_fold_case_and_diacritics() -> None:
    assert words("Wadi SAFA, wadi safa!") == {"wadi", "safa"}
    assert words("مُحَافِظ") == words("محافظ") == {"محافظ"}
    assert shingles("One two THREE") == {"one two", "two three"}
    assert shingles("word") == set()


def test_a_copy_is_contained_and_an_other_story_is_not() -> None:
    copy = WIRE.replace("اليوم", "أمس")  # one word changed
    longer = WIRE + " " + OIL  # the wire story republished inside a longer piece
    rows = signatures([WIRE, copy, longer, OIL])
    assert rows.shape == (4, WIDTH) and rows.dtype == np.uint32
    got = containment(rows[0], rows)[0]
    assert got[0] == 1.0
    assert got[1] > 0.85  # two of 28 word pairs touched by the change
    assert got[2] > 0.8  # all of the shorter text is in the longer one
    assert got[3] < 0.15
    assert np.array_equal(signature(WIRE), rows[0])  # stable: bundles store them
    assert rows[0, PERMUTATIONS] == len(shingles(WIRE))


def test_template_follow_ups_are_not_copies() -> None:
    stories = [
        follow_up(
            "الصفا", "غمرت المياه الطوابق الأرضية لعشرات المنازل وانقطعت الكهرباء عن شارع التحلية", 120
        ),
        follow_up("قويزة", "انهار جسر صغير فوق مجرى السيل وتعطلت حركة المرور على طريق الحرمين", 45),
        follow_up("الحرازات", "علقت سيارات عدة في نفق الطريق الدائري الشرقي ونقل سائقان إلى المستشفى", 300),
    ]
    shared_words = len(words(stories[0]) & words(stories[1])) / len(words(stories[0]))
    assert 0.65 < shared_words < 0.8  # they share most of their words
    matrix = containment(signatures(stories), signatures(stories))
    assert np.all(matrix[~np.eye(3, dtype=bool)] < 0.85)


def test_short_texts_have_no_signature() -> None:
    assert np.array_equal(signature("slash story one"), NO_SIGNATURE)
    empty = signature("!!! ???")
    assert containment(empty, np.stack([empty, signature(WIRE)])).tolist() == [[0.0, 0.0]]
    assert containment(signature(WIRE), empty).tolist() == [[0.0]]


def test_containment_matrix_matches_row_by_row() -> None:
    rows = signatures([WIRE, WIRE.replace("اليوم", "أمس"), "!!!", WIRE[:60] + " " + OIL])
    matrix = containment(rows, rows)
    assert matrix.shape == (4, 4) and np.allclose(matrix, matrix.T)
    for i, row in enumerate(rows):
        assert matrix[i].tolist() == containment(row, rows)[0].tolist()
        expected = 0.0 if i == 2 else 1.0  # a text with no signature contains nothing, not even itself
        assert matrix[i, i] == pytest.approx(expected)


def test_a_short_text_against_a_long_one_is_no_copy_by_chance() -> None:
    rng = np.random.default_rng(1)
    vocabulary = [f"w{i}" for i in range(5000)]
    long_text = " ".join(rng.choice(vocabulary, 1000))
    false_copies = 0
    for _ in range(200):
        own = " ".join(rng.choice(vocabulary, 12))  # a brief sharing about half its word pairs
        start = int(rng.integers(0, 980))
        brief = " ".join(long_text.split()[start : start + 10]) + " " + own
        false_copies += containment(signature(brief), signature(long_text))[0, 0] >= 0.85
    assert false_copies == 0
