"""Retrieval and list statistics of the service's lists, through the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from embeddings.ranking.scorer import load_scorer
from service.cli import main
from tests.support.corpus import write_jsonl
from tests.support.pairs import PAIRS

pytestmark = pytest.mark.model  # every command here loads the real models


def test_cli_retrieval_ranks_the_same_story_first(
    tmp_path: Path, model_cache: Path, sample_rows: list[dict[str, Any]]
) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    distractors = write_jsonl(tmp_path / "d.jsonl", [r for r in sample_rows if r["lang"] == "en"][:12])
    out = tmp_path / "r.json"
    args = ["--input", str(source), "--distractors", str(distractors), "--json", str(out)]
    assert main(["evaluate", "retrieval", *args, "--cache-dir", str(model_cache)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["queries"] == 8  # four pairs scored <= 1.5, each side in turn
    assert figures["corpus"] == 10 + 12  # ten distinct pair sides and the distractors
    names = list(figures["rankers"])
    assert names[0] == "baseline: cosine, no policy" and len(names) == 5
    assert sum(name.endswith("(cross-validated)") for name in names) == 2  # the fitted scorer, twice
    # The English distractors hold the sample's own report of the rate cut, which shares more words with
    # one side than the other side's paraphrase does: a list may rank it first (labels are incomplete).
    for name, ranker in figures["rankers"].items():
        assert ranker["recall@1"] >= 0.5 and ranker["recall@4"] >= 0.75, (name, ranker)
        assert ranker["recall@1_story"] >= ranker["recall@1"]
        assert set(ranker["by_relation"]) == {"same language", "across languages"}
        assert set(ranker["by_lang"]) == {"en", "ar-en"}


def test_cli_fit_ranking_writes_a_calibrated_scorer(
    tmp_path: Path, model_cache: Path, sample_rows: list[dict[str, Any]]
) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    distractors = write_jsonl(tmp_path / "d.jsonl", [r for r in sample_rows if r["lang"] == "en"][:12])
    scorer_file, out = tmp_path / "scorer.json", tmp_path / "fit.json"
    args = ["--input", str(source), "--distractors", str(distractors), "--out", str(scorer_file)]
    args += ["--json", str(out), "--folds", "2", "--signals", "main,lex", "--cache-dir", str(model_cache)]
    assert main(["evaluate", "fit", "--kind", "ranking", *args]) == 0
    scorer = load_scorer(str(scorer_file))
    assert scorer.config.fitted_on["kind"] == "ranking" and scorer.config.output is not None
    assert set(scorer.signals) <= {"main", "lex"} and "main" in scorer.signals
    figures = json.loads(out.read_text(encoding="utf-8"))
    lists = figures["cross_validated"]["lists"]
    assert lists["queries"] == 8 and 0 <= lists["recall@1"] <= 1
    assert set(figures["baselines"]) == {"main", "lex"}
    assert main(["evaluate", "fit", "--kind", "curves", *args]) == 1  # lex needs a corpus


def test_cli_lists_reports_list_statistics(sample_bundles: Path, model_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "lists.json"
    args = ["--bundles", str(sample_bundles), "--queries", "40", "--json", str(out)]
    assert main(["evaluate", "lists", *args, "--cache-dir", str(model_cache)]) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    service = figures["rankers"]["service: scorer ranking-main-use-lex, default policies"]
    assert service["lists"] == 40 and service["share_lists_shorter_than_k"] == 0.0
    unshaped = figures["rankers"]["scorer ranking-main-use-lex, no policy"]
    assert service["share_results_in_query_language"] > unshaped["share_results_in_query_language"]
    assert service["median_age_gap_days"] is not None
    by_lang = service["other_language_by_query_language"]
    assert sum(fig["results"] for fig in by_lang.values()) == service["results"]
    other = sum(fig["share"] * fig["results"] for fig in by_lang.values()) / service["results"]
    assert other == pytest.approx(1 - service["share_results_in_query_language"], abs=1e-3)
