"""Relatedness evaluation against scored pairs: statistics and the pairs mode end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import InputError
from embeddings.evaluation.pairs import (
    ScoredPair,
    correlations,
    cross_validate,
    evaluate_pairs,
    fit_curves,
    fit_weighted_curves,
    fit_zmean,
    isotonic_curve,
    pair_cosines,
    pearson,
    read_pairs,
    spearman,
)
from embeddings.evaluation.retrieval import retrieval_corpus
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.scorer import Scorer, load_scorer
from embeddings.vectors import SIGNALS
from service.cli import main
from tests.support.corpus import write_jsonl
from tests.support.fakes import RefusingEncoder
from tests.support.pairs import PAIRS


def test_statistics_match_their_definitions() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 1000.0])) == pytest.approx(1.0)
    # Ties share their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3).
    assert spearman(np.array([1, 1, 2.0]), np.array([1, 2, 3.0])) == pytest.approx(0.8660254)


def test_pairs_mode_end_to_end(tmp_path: Path, encoders: SignalEncoders) -> None:
    pairs = read_pairs(write_jsonl(tmp_path / "p.jsonl", PAIRS))
    scorer = load_scorer("default")
    cosines = pair_cosines(pairs, encoders, scorer.signals, tmp_path / "cache.sqlite")
    result = evaluate_pairs(pairs, cosines, scorer)
    assert result["pairs"] == 6
    assert set(result["by_lang"]) == {"en", "ar-en"}
    assert set(result["signals"]) == set(scorer.signals)
    assert result["pearson"] > 0.8 and result["by_lang"]["ar-en"]["spearman"] > 0.8
    # The texts went through the cache: a second pass embeds nothing and gives the same cosines.
    refusing = SignalEncoders({name: RefusingEncoder(enc.spec) for name, enc in encoders.encoders.items()})
    again = pair_cosines(pairs, refusing, scorer.signals, tmp_path / "cache.sqlite")
    for name in scorer.signals:
        assert np.allclose(again[name], cosines[name])


def _synthetic() -> tuple[list[ScoredPair], dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    overall = rng.uniform(1, 4, size=300)
    pairs = [ScoredPair(("a", ""), ("b", ""), "en", float(o), f"g{i // 2}") for i, o in enumerate(overall)]
    # Two signals on different scales, both noisy and bent readings of the truth.
    cosines = {
        "main": 0.95 - 0.02 * overall**1.5 + rng.normal(0, 0.03, 300),
        "use": 0.8 - 0.2 * overall + rng.normal(0, 0.15, 300),
    }
    return pairs, cosines, overall


def test_zmean_fitting_is_label_free() -> None:
    pairs, cosines, overall = _synthetic()
    config = fit_zmean(pairs, cosines, "test")
    assert config.signals["main"].mean == pytest.approx(cosines["main"].mean())
    assert config.signals["use"].std == pytest.approx(cosines["use"].std())
    shuffled = [ScoredPair(p.side1, p.side2, p.lang, 2.5, p.group) for p in pairs]
    assert fit_zmean(shuffled, cosines, "test") == config
    combined = correlations(pairs, Scorer(config).combine(cosines))["pearson"]
    assert combined > max(pearson(c, -overall) for c in cosines.values())


def test_curves_are_increasing_and_cross_validated() -> None:
    pairs, cosines, overall = _synthetic()
    config = fit_curves(pairs, cosines, "test")
    for term in config.signals.values():
        assert term.curve is not None and 2 <= len(term.curve.x) <= 48
        assert np.all(np.diff(term.curve.y) > 0)
        assert term.curve.y[0] >= 0 and term.curve.y[-1] <= 1  # on the 0 (unrelated) to 1 scale
    scores = Scorer(config).combine(cosines)
    assert pearson(scores, -overall) > max(pearson(c, -overall) for c in cosines.values())
    cv = cross_validate(pairs, cosines, "curves", folds=5)
    assert cv["folds"] == 5 and cv["kind"] == "curves"
    assert 0.5 < cv["pearson"] <= pearson(scores, -overall) + 0.02  # held-out is not better than fitted
    weighted = fit_weighted_curves(pairs, cosines, "test")
    assert all(t.weight >= 0 for t in weighted.signals.values())


def test_isotonic_curve_pools_violators() -> None:
    curve = isotonic_curve(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 0.5, 0.3, 1.0]))
    assert curve.x == pytest.approx([0.1, 0.25, 0.4]) and curve.y == pytest.approx([0.0, 0.4, 1.0])
    with pytest.raises(InputError):
        isotonic_curve(np.array([0.1, 0.2]), np.array([1.0, 0.0]))


@pytest.mark.model  # the command loads the real models
def test_cli_writes_json(tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    out = tmp_path / "out.json"
    code = main(
        ["evaluate", "pairs", "--input", str(source), "--json", str(out), "--cache-dir", str(model_cache)]
    )
    assert code == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert {"pairs", "pearson", "spearman", "by_lang", "signals"} <= set(figures)
    assert "ar-en" in capsys.readouterr().out


@pytest.mark.model  # the command loads the real models
def test_cli_fit_writes_a_scorer_the_service_loads(tmp_path: Path, model_cache: Path) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    scorer_file, out = tmp_path / "scorer.json", tmp_path / "fit.json"
    args = ["--input", str(source), "--out", str(scorer_file), "--json", str(out), "--folds", "2"]
    assert main(["evaluate", "fit", *args, "--signals", "head,use", "--cache-dir", str(model_cache)]) == 0
    scorer = load_scorer(str(scorer_file))
    assert set(scorer.signals) == set(SIGNALS)
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert {"cross_validated", "fitted", "scorer"} <= set(figures)


def test_bad_pairs_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 1"):
        read_pairs(write_jsonl(tmp_path / "a.jsonl", [{"text1": "a", "text2": "b"}]))
    with pytest.raises(InputError, match="at least 3"):
        read_pairs(write_jsonl(tmp_path / "b.jsonl", PAIRS[:2]))


def test_the_development_pairs(tmp_path: Path, encoders: SignalEncoders, shared_data: Path) -> None:
    pairs = read_pairs(shared_data / "semeval2022_task8" / "train_pairs_hfl_sample.jsonl")
    assert len(pairs) == 2566 and sum(p.translated for p in pairs) == 972
    sample = pairs[::40]  # 65 pairs, every language
    scorer = load_scorer("default")
    cosines = pair_cosines(sample, encoders, scorer.signals, tmp_path / "cache.sqlite")
    result = evaluate_pairs(sample, cosines, scorer)
    assert result["pearson"] > 0.5 and result["pearson"] > result["signals"]["main"]["pearson"] - 0.05


def test_isotonic_curve_pools_tied_cosines() -> None:
    curve = isotonic_curve(np.array([0.1, 0.5, 0.5, 0.9]), np.array([0.0, 0.2, 0.8, 1.0]))
    assert curve.x == pytest.approx([0.1, 0.5, 0.9]) and curve.y == pytest.approx([0.0, 0.5, 1.0])


def test_isotonic_curve_on_heavily_tied_values_rises_strictly() -> None:
    # Cosines rounded to two decimals, noisy scores: the refit that once failed with "a curve's x
    # and y must both increase".
    rng = np.random.default_rng(0)
    x = np.round(rng.uniform(0.7, 1.0, 3000), 2)
    y = np.clip((x - 0.7) / 0.3 + rng.normal(0, 0.3, len(x)), 0, 1)
    curve = isotonic_curve(x, y, knots=48)
    assert len(curve.x) <= 48 and np.all(np.diff(curve.x) > 0) and np.all(np.diff(curve.y) > 0)
    with pytest.raises(InputError, match="two finite"):
        isotonic_curve(np.array([0.5, np.nan]), np.array([0.0, 1.0]))


def test_the_labels_join_a_story_through_chains_of_same_story_pairs(tmp_path: Path) -> None:
    rows = [
        {"pair_id": "1", "lang1": "en", "lang2": "en", "text1": "A", "text2": "B", "Overall": 1.0},
        {"pair_id": "2", "lang1": "en", "lang2": "en", "text1": "B", "text2": "C", "Overall": 1.5},
        {"pair_id": "3", "lang1": "en", "lang2": "de", "text1": "C", "text2": "D", "Overall": 3.5},
        {"pair_id": "4", "lang1": "de", "lang2": "de", "text1": "D", "text2": "E", "Overall": 1.0},
    ]
    pairs = read_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    assert [p.across for p in pairs] == [False, False, True, False]
    articles, queries = retrieval_corpus(pairs, [])
    title = {a.id: a.title for a in articles}
    assert {title[a.id]: a.lang for a in articles} == {"A": "en", "B": "en", "C": "en", "D": "de", "E": "de"}
    story = {(title[q.query_id], tuple(sorted(title[r] for r in q.relevant))): q for q in queries}
    assert {title[c] for c in story[("A", ("B",))].connected} == {"B", "C"}  # through B, not past 3.5
    assert {title[c] for c in story[("C", ("B",))].connected} == {"A", "B"}
    assert {title[c] for c in story[("D", ("E",))].connected} == {"E"}


def test_pair_cosines_of_the_lexical_signal_weigh_by_the_pairs_own_texts(tmp_path: Path) -> None:
    rows = [
        {
            "lang1": "en",
            "lang2": "en",
            "text1": "Floods hit Jeddah",
            "text2": "Floods hit Jeddah",
            "Overall": 1,
        },
        {
            "lang1": "en",
            "lang2": "en",
            "text1": "Floods hit Jeddah",
            "text2": "Jeddah floods",
            "Overall": 1.5,
        },
        {"lang1": "en", "lang2": "en", "text1": "Floods hit Jeddah", "text2": "Cup final won", "Overall": 4},
    ]
    pairs = read_pairs(write_jsonl(tmp_path / "p.jsonl", rows))
    lexical = pair_cosines(pairs, SignalEncoders({}), ["lex"], tmp_path / "cache.sqlite")["lex"]
    assert lexical[0] == pytest.approx(1.0, abs=1e-5) and 0.2 < lexical[1] < 0.9 and lexical[2] < 0.05
