"""A scorer that uses the lexical signal, through the service: bundle rows, live writes, previews."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from embeddings.ranking.scorer import ScorerConfig, SignalTerm, save_scorer
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

AUTH = {"Authorization": "Bearer k"}
# The fake main encoder hashes trigrams into 64 dimensions: it hardly tells these stories apart. The
# names they share (Quwaiza, Harazat) are what the lexical signal sees.
NAMED = [
    {"id": "q1", "title": "Quwaiza bridge collapse", "body": "Harazat people saw the Quwaiza bridge fall"},
    {"id": "q2", "title": "Second day in Quwaiza", "body": "Harazat and Quwaiza families count the damage"},
]


def _settings(tmp_path: Path, make_settings: Callable[..., Settings]) -> Settings:
    scorer = ScorerConfig(
        name="main-and-lex",
        signals={
            "main": SignalTerm(mean=0.5, std=0.2, weight=0.2),
            "lex": SignalTerm(mean=0.05, std=0.1, weight=0.8),
        },
    )
    save_scorer(scorer, tmp_path / "scorer.json")
    settings = make_settings(
        scorer=str(tmp_path / "scorer.json"), api_keys="k", window_days=None, min_score=-1, rerank_depth=1
    )
    build_with(
        settings, write_jsonl(tmp_path / "rows.jsonl", [*corpus_rows(400), NAMED[0]]), HashingEncoder()
    )
    return settings


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["related"]]


def test_lexical_neighbours_are_found_in_the_bundle_the_writes_and_previews(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = _settings(tmp_path, make_settings)
    app = create_app(settings, fake_signals(HashingEncoder()))
    with TestClient(app) as client:
        written = {k: v for k, v in NAMED[1].items() if k != "id"}
        assert client.put("/v1/articles/q2", json=written, headers=AUTH).status_code == 200
        # A written article's list finds the bundle's, and the bundle's finds the written one.
        assert _ids(client.get("/v1/articles/q2/related", params={"k": 1})) == ["q1"]
        first = client.get("/v1/articles/q1/related", params={"k": 1, "explain": "true"})
        assert _ids(first) == ["q2"] and first.json()["related"][0]["explain"]["lex"] > 0.2
        preview = client.post("/v1/related", json={"title": "Quwaiza Harazat bridge", "k": 2})
        assert set(_ids(preview)) == {"q1", "q2"}
        # Deleted, it is gone from lexical searches too.
        assert client.delete("/v1/articles/q2", headers=AUTH).status_code == 200
        assert "q2" not in _ids(client.get("/v1/articles/q1/related", params={"k": 5}))
        assert client.put("/v1/articles/q2", json=written, headers=AUTH).status_code == 200
    # After a restart the replayed write is weighed with the bundle's IDF again.
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        assert _ids(client.get("/v1/articles/q2/related", params={"k": 1})) == ["q1"]
