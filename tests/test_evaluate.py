"""Relatedness evaluation against scored pairs: statistics and the pairs mode end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import InputError
from embeddings.evaluate import evaluate_pairs, pearson, read_pairs, spearman
from embeddings.model import SentenceTransformerEncoder
from service.cli import main
from tests.conftest import write_jsonl


def test_statistics_match_their_definitions() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert spearman(np.array([1, 2, 3, 4.0]), np.array([10, 20, 30, 1000.0])) == pytest.approx(1.0)
    # Ties share their mean rank: ranks (1.5, 1.5, 3) against (1, 2, 3).
    assert spearman(np.array([1, 1, 2.0]), np.array([1, 2, 3.0])) == pytest.approx(0.8660254)


PAIRS = [
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Central bank cuts interest rates by half a point",
        "text2": "The central bank lowered its key rate by 50 basis points",
        "Overall": 1.0,
    },
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Central bank cuts interest rates by half a point",
        "text2": "Local football club wins the national cup final",
        "Overall": 4.0,
    },
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Wildfire forces thousands to flee in the north",
        "text2": "Thousands evacuated as forest fire spreads across northern hills",
        "Overall": 1.3,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "حريق غابات يجبر الآلاف على الفرار",
        "text1": "امتد الحريق في الشمال.",
        "title2": "Wildfire forces thousands to flee",
        "text2": "The fire spread in the north.",
        "Overall": 1.0,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "حريق غابات يجبر الآلاف على الفرار",
        "text1": "امتد الحريق في الشمال.",
        "title2": "New smartphone goes on sale",
        "text2": "The phone costs 500 dollars.",
        "Overall": 4.0,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "افتتاح معرض الكتاب",
        "text1": "افتتح المعرض أبوابه اليوم.",
        "title2": "Book fair opens its doors",
        "text2": "Publishers from 30 countries attend.",
        "Overall": 1.5,
    },
]


def test_pairs_mode_end_to_end(tmp_path: Path, encoder: SentenceTransformerEncoder) -> None:
    result = evaluate_pairs(read_pairs(write_jsonl(tmp_path / "p.jsonl", PAIRS)), encoder)
    assert result["pairs"] == 6
    assert set(result["by_lang"]) == {"en", "ar-en"}
    assert result["pearson"] > 0.8 and result["by_lang"]["ar-en"]["spearman"] > 0.8


def test_cli_writes_json(tmp_path: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    out = tmp_path / "out.json"
    code = main(
        ["evaluate", "pairs", "--input", str(source), "--json", str(out), "--cache-dir", str(model_cache)]
    )
    assert code == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert {"pairs", "pearson", "spearman", "by_lang"} <= set(figures)
    assert "ar-en" in capsys.readouterr().out


def test_bad_pairs_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="line 1"):
        read_pairs(write_jsonl(tmp_path / "a.jsonl", [{"text1": "a", "text2": "b"}]))
    with pytest.raises(InputError, match="at least 3"):
        read_pairs(write_jsonl(tmp_path / "b.jsonl", PAIRS[:2]))
