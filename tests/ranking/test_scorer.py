"""The relatedness scorer, as pure logic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import ModelError
from embeddings.ranking.scorer import (
    Across,
    Curve,
    Scorer,
    ScorerConfig,
    SignalTerm,
    across_languages,
    load_scorer,
    save_scorer,
)


def test_scorer_standardizes_and_weighs() -> None:
    config = ScorerConfig(
        name="t",
        signals={
            "main": SignalTerm(mean=0.8, std=0.1, weight=0.25),
            "use": SignalTerm(mean=0.4, std=0.2, weight=0.75, curve=Curve(x=[0.2, 0.6], y=[0.0, 1.0])),
        },
        intercept=0.1,
    )
    scorer = Scorer(config)
    relatedness = scorer.combine({"main": np.array([0.9, 0.8, 0.8]), "use": np.array([0.5, 0.1, 0.05])})
    # 0.1 + 0.25 * z_main + 0.75 * curve(use): z_main = 1, 0, 0; curve = 0.75, 0 (flat below 0.2), 0
    assert relatedness == pytest.approx([0.9125, 0.1, 0.1], abs=1e-3)
    assert relatedness[1] > relatedness[2]  # flat ends still order the cosines


def test_output_curve_calibrates_without_reordering() -> None:
    signals = {
        "main": SignalTerm(mean=0.8, std=0.1, weight=0.5),
        "lex": SignalTerm(mean=0.1, std=0.1, weight=0.5),
    }
    raw = Scorer(ScorerConfig(name="raw", signals=signals))
    calibrated = Scorer(
        ScorerConfig(name="c", signals=signals, output=Curve(x=[-1.0, 0.0, 2.0], y=[0.0, 0.2, 0.9]))
    )
    assert calibrated.signals == ("main", "lex") and calibrated.dense == ("main",)
    cosines = {"main": np.array([0.7, 0.8, 0.95, 0.99]), "lex": np.array([0.0, 0.1, 0.3, 0.9])}
    sums = raw.combine(cosines)  # -1, 0, 1.75, 4.95
    scores = calibrated.combine(cosines)
    assert list(np.argsort(scores)) == list(np.argsort(sums)) == [0, 1, 2, 3]
    assert scores[:3] == pytest.approx([0.0, 0.2, 0.2 + 0.7 * 1.75 / 2], abs=1e-3)
    assert scores[3] == pytest.approx(0.9, abs=1e-3)  # flat past the curve's end, still ordered


def test_scorer_files(tmp_path: Path) -> None:
    shipped = load_scorer("default")
    assert (
        set(shipped.signals) == {"main", "use", "lex"}
        and shipped.config.across is not None
        and shipped.config.fitted_on["pairs"] > 1000
    )
    cosine = load_scorer("cosine")
    raw = np.array([0.5, 0.8, 0.85, 0.9, 0.99])
    assert list(np.argsort(cosine.combine({"main": raw}))) == [0, 1, 2, 3, 4]  # ranks as the cosine
    assert set(cosine.signals) == {"main"}
    save_scorer(shipped.config, tmp_path / "s.json")
    assert load_scorer(str(tmp_path / "s.json")).config == shipped.config
    (tmp_path / "bad.json").write_text(
        '{"name": "x", "signals": {"use": {"mean": 0, "std": 1, "weight": 1}}}'
    )
    with pytest.raises(ModelError, match="main"):
        load_scorer(str(tmp_path / "bad.json"))
    with pytest.raises(ModelError, match="cannot load scorer"):
        load_scorer(str(tmp_path / "missing.json"))


def test_pairs_across_languages_take_their_own_weights_and_curve() -> None:
    signals = {
        "main": SignalTerm(mean=0.8, std=0.1, weight=0.5),
        "lex": SignalTerm(mean=0.1, std=0.1, weight=0.5),
    }
    config = ScorerConfig(
        name="relations",
        signals=signals,
        output=Curve(x=[-2.0, 2.0], y=[0.0, 1.0]),
        across=Across(weights={"main": 1.0}, output=Curve(x=[-1.0, 1.0], y=[0.0, 1.0])),
    )
    scorer = Scorer(config)
    cosines = {"main": np.array([0.9, 0.9]), "lex": np.array([0.5, 0.5])}
    same, other = scorer.combine(cosines, np.array([False, True]))
    # same: 0.5 * 1 + 0.5 * 4 = 2.5, past the curve's end; across: the main z-score alone, 1
    assert same == pytest.approx(1.0, abs=1e-3) and other == pytest.approx(1.0, abs=1e-3)
    lexical_only = {"main": np.array([0.8, 0.8]), "lex": np.array([0.2, 0.2])}
    same, other = scorer.combine(lexical_only, np.array([False, True]))
    # same: 0.5 * 0 + 0.5 * 1 = 0.5 on the curve: 0.625; across: the main z-score 0 on its curve: 0.5
    assert same == pytest.approx(0.625, abs=1e-3) and other == pytest.approx(0.5, abs=1e-3)
    assert list(scorer.combine(lexical_only)) == pytest.approx([0.625, 0.625], abs=1e-3)  # no mask: same
    with pytest.raises(ValueError, match="signals the scorer does not have"):
        ScorerConfig(name="x", signals=signals, across=Across(weights={"use": 1.0}))


def test_across_languages_needs_both_languages_known() -> None:
    langs = np.array(["ar", "en", "", "ar"], dtype=object)
    assert list(across_languages("ar", langs)) == [False, True, False, False]
    assert not across_languages(None, langs).any() and not across_languages("", langs).any()
