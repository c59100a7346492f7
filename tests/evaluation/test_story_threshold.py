"""The story threshold's measurement: F1 by threshold, its choice, and the cross-validation by group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.evaluation.pairs import ScoredPair, pair_cosines, read_pairs
from embeddings.evaluation.story_threshold import (
    GRID,
    UNRELATED,
    choose_threshold,
    cross_validate_threshold,
    f_by_threshold,
    same_story,
)
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.scorer import load_scorer


def _pairs(overall: list[float], lang: str = "en") -> list[ScoredPair]:
    return [ScoredPair(("t", ""), ("u", ""), lang, o, f"g{i}") for i, o in enumerate(overall)]


def test_f_by_threshold_matches_its_definition() -> None:
    scores = np.array([0.9, 0.8, 0.6, 0.3])
    labels = np.array([True, False, True, False])
    f1 = dict(zip(GRID, f_by_threshold(scores, labels, beta=1.0), strict=True))
    f05 = dict(zip(GRID, f_by_threshold(scores, labels), strict=True))
    # At 0.7: kept 0.9 and 0.8, one of two right (precision 1/2), one of two found (recall 1/2).
    assert f1[0.7] == pytest.approx(0.5)
    # At 0.5: three kept, both found: precision 2/3, recall 1.
    assert f1[0.5] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert f1[0.95] == 0.0  # nothing kept
    # F0.5 weighs precision more: (1 + 1/4) P R / (P / 4 + R), at 0.5 with P 2/3 and R 1.
    assert f05[0.5] == pytest.approx(1.25 * (2 / 3) / ((2 / 3) / 4 + 1))


def test_the_threshold_separates_separable_scores() -> None:
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.uniform(0.6, 0.9, 40), rng.uniform(0.1, 0.4, 60)])
    labels = np.arange(100) < 40
    threshold = choose_threshold(scores, labels)
    assert scores[~labels].max() < threshold <= scores[labels].min()


def test_cross_validation_judges_each_fold_at_a_threshold_chosen_without_it() -> None:
    rng = np.random.default_rng(2)
    overall = list(rng.choice([1.0, 2.0, 3.0, 4.0], 400))
    pairs = _pairs(overall[:200], "en") + _pairs(overall[200:], "de")
    pairs = [ScoredPair(p.side1, p.side2, p.lang, p.overall, f"{p.lang}-{p.group}") for p in pairs]
    scores = (4.0 - np.array(overall)) / 3.0 + rng.normal(0, 0.1, 400)
    result = cross_validate_threshold(pairs, scores, cut=2.0, folds=5)
    labels = same_story(pairs, 2.0)
    assert len(result["fold_thresholds"]) == 5
    assert result["threshold"] == choose_threshold(scores, labels)
    overall_figures = result["cross_validated"]
    assert overall_figures["pairs"] == 400 and overall_figures["same_story"] == int(labels.sum())
    # Between scores centred on 2/3 (Overall 2, the last same-story value) and 1/3 (Overall 3).
    assert 1 / 3 < result["threshold"] < 2 / 3
    assert overall_figures["precision"] > 0.8 and overall_figures["recall"] > 0.8
    assert set(result["by_lang"]) == {"en", "de"}
    assert sum(result["by_lang"][lang]["kept"] for lang in ("en", "de")) == overall_figures["kept"]


def test_the_shipped_threshold_keeps_same_story_pairs_and_not_unrelated_ones(
    tmp_path: Path, encoders: SignalEncoders, shared_data: Path
) -> None:
    pairs = read_pairs(shared_data / "semeval2022_task8" / "train_pairs_hfl_sample.jsonl")[::40]  # 65
    scorer = load_scorer("default")
    assert scorer.config.story_threshold is not None
    kept = (
        scorer.combine(
            pair_cosines(pairs, encoders, scorer.signals, tmp_path / "c.sqlite"),
            np.array([p.across for p in pairs], dtype=bool),
        )
        >= scorer.config.story_threshold
    )
    same, unrelated = same_story(pairs), np.array([p.overall >= UNRELATED for p in pairs])
    assert same.any() and unrelated.any()
    assert kept[same].mean() > 0.5 > kept[unrelated].mean()
