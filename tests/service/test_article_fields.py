"""An article's picture (`image_url`) and `listed: false`, from the build input and from writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

KEY = "key-one"
AUTH = {"Authorization": f"Bearer {KEY}"}
PICTURE = "https://example.com/pictures/a01.jpg"


@pytest.fixture
def client(tmp_path: Path, make_settings: Callable[..., Settings]) -> TestClient:
    """A fake-encoder bundle where a01 has a picture and a05 is unlisted."""
    rows = corpus_rows()
    rows[1]["image_url"] = PICTURE
    rows[5]["listed"] = False
    settings = make_settings(api_keys=KEY, window_days=None)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows), HashingEncoder())
    return TestClient(create_app(settings, fake_signals(HashingEncoder())))


def _listed_anywhere(client: TestClient, article_id: str, **params: Any) -> list[str]:
    """The ids whose list (k=20) holds `article_id`."""
    out = []
    for i in range(24):
        response = client.get(f"/v1/articles/a{i:02d}/related", params={"k": 20, **params})
        assert response.status_code == 200, response.text
        if article_id in [r["id"] for r in response.json()["related"]]:
            out.append(f"a{i:02d}")
    return out


def test_a_picture_goes_from_the_input_to_every_answer(client: TestClient) -> None:
    with client:
        assert client.get("/v1/articles/a01").json()["image_url"] == PICTURE
        lists = _listed_anywhere(client, "a01")
        assert lists
        items = client.get(f"/v1/articles/{lists[0]}/related", params={"k": 20}).json()["related"]
        assert next(r for r in items if r["id"] == "a01")["image_url"] == PICTURE
        written = {"title": "harbour strike", "image_url": "http://example.com/p.png"}
        assert client.put("/v1/articles/n1", json=written, headers=AUTH).status_code == 200
        assert client.get("/v1/articles/n1").json()["image_url"] == "http://example.com/p.png"
        for bad in ("javascript:alert(1)", "/relative.png", "ftp://example.com/p.png", "https:// x"):
            refused = client.put("/v1/articles/n2", json={"title": "t", "image_url": bad}, headers=AUTH)
            assert refused.status_code == 422, bad


def test_an_unlisted_article_is_readable_has_a_list_and_is_in_no_other(client: TestClient) -> None:
    with client:
        assert client.get("/v1/articles/a05").json()["listed"] is False
        assert client.get("/v1/articles/a05/related").json()["related"]  # its own list
        assert _listed_anywhere(client, "a05") == []
        assert _listed_anywhere(client, "a05", section="economy") == []  # the filtered path too
        assert _listed_anywhere(client, "a09")  # a listed one of the same topic is listed
        body = {"title": "unlisted sponsored piece", "listed": False}
        assert client.put("/v1/articles/a09", json=body, headers=AUTH).status_code == 200
        assert _listed_anywhere(client, "a09") == []  # a write unlists it at once
        assert client.put("/v1/articles/a09", json={"title": "back"}, headers=AUTH).status_code == 200
        assert client.get("/v1/articles/a09").json()["listed"] is True
        preview = client.post("/v1/related", json={"title": "a05 topic words", "k": 20}).json()
        assert "a05" not in [r["id"] for r in preview["related"]]
