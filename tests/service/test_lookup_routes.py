"""The related list by URL (canonical addresses, written articles at once) and the search of titles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from embeddings.articles.article import MAX_URL_LENGTH
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

KEY = "key-one"
AUTH = {"Authorization": f"Bearer {KEY}"}


def page(article_id: str) -> str:
    """The sample address of a fake-corpus article."""
    return f"https://news.example.com/world/{article_id}"


@pytest.fixture
def client(tmp_path: Path, make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """A fake-encoder bundle whose articles have addresses; a02 and a03 share one (spelt two ways)."""
    rows = corpus_rows()
    for row in rows:
        row["url"] = page(row["id"]) + "/"
    rows[3]["url"] = "HTTPS://NEWS.example.com:443" + "/world/a02?utm_source=feed"
    settings = make_settings(api_keys=KEY, window_days=None)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows), HashingEncoder())
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        yield client


def test_the_list_by_url_is_the_list_by_id(client: TestClient) -> None:
    by_id = client.get("/v1/articles/a05/related", params={"k": 3, "explain": "true"})
    for spelling in (page("a05"), "https://News.Example.com/world/a05/?fbclid=x&utm_medium=y#top"):
        by_url = client.get("/v1/related", params={"url": spelling, "k": 3, "explain": "true"})
        assert by_url.status_code == 200, by_url.text
        assert by_url.content == by_id.content
    filtered = {"lang": "en", "section": "world", "exclude": "a04"}
    by_id = client.get("/v1/articles/a00/related", params=filtered).json()
    assert client.get("/v1/related", params={"url": page("a00"), **filtered}).json() == by_id


def test_two_articles_at_one_url_give_the_first(client: TestClient) -> None:
    found = client.get("/v1/related", params={"url": page("a02")}).json()
    assert found["article"]["id"] == "a02"
    assert client.delete("/v1/articles/a02", headers=AUTH).status_code == 200
    assert client.get("/v1/related", params={"url": page("a02")}).json()["article"]["id"] == "a03"


def test_unknown_and_bad_urls(client: TestClient) -> None:
    missing = client.get("/v1/related", params={"url": page("a99")})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "url_not_found"
    assert "a99" in missing.json()["error"]["message"]
    for bad in ("/world/a01", "javascript:alert(1)", ""):
        assert client.get("/v1/related", params={"url": bad}).status_code == 422, bad
    assert client.get("/v1/related").status_code == 422
    unknown = client.get("/v1/related", params={"url": page("a01"), "kk": 2})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "invalid_query"
    html = client.get("/v1/related.html", params={"url": page("a99")})
    assert html.status_code == 404 and html.json()["error"]["code"] == "url_not_found"


def test_one_url_limit_for_writes_and_lookups(client: TestClient) -> None:
    base = "https://news.example.com/long/"
    longest = base + "x" * (MAX_URL_LENGTH - len(base))
    written = client.put("/v1/articles/long", json={"title": "t", "url": longest}, headers=AUTH)
    assert written.status_code == 200, written.text
    found = client.get("/v1/related", params={"url": longest})
    assert found.status_code == 200, found.text
    assert found.json()["article"]["id"] == "long"
    refused = client.put("/v1/articles/longer", json={"title": "t", "url": longest + "x"}, headers=AUTH)
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert message.startswith("body.url:") and f"at most {MAX_URL_LENGTH} characters" in message, message
    assert client.get("/v1/articles/longer").status_code == 404
    assert client.get("/v1/related", params={"url": longest + "x"}).status_code == 422


def test_writes_are_found_by_url_at_once(client: TestClient) -> None:
    new = {
        "title": "harbour strike dockers walk out again",
        "url": "https://news.example.com/live/n1?utm_id=5",
    }
    assert client.put("/v1/articles/n1", json=new, headers=AUTH).status_code == 200
    found = client.get("/v1/related", params={"url": "https://news.example.com/live/n1/"})
    assert found.status_code == 200 and found.json()["article"]["id"] == "n1"
    # A bundle article moved to another address: found at the new one only.
    moved = {"title": "harbour strike dockers report 1", "url": "https://news.example.com/moved/a01"}
    assert client.put("/v1/articles/a01", json=moved, headers=AUTH).status_code == 200
    assert client.get("/v1/related", params={"url": page("a01")}).status_code == 404
    assert client.get("/v1/related", params={"url": moved["url"]}).json()["article"]["id"] == "a01"
    # A written article given a bundle article's address wins over it; deleted, the bundle's is back.
    taken = {"title": "central bank rates follow-up", "url": page("a06")}
    assert client.put("/v1/articles/n2", json=taken, headers=AUTH).status_code == 200
    assert client.get("/v1/related", params={"url": page("a06")}).json()["article"]["id"] == "n2"
    assert client.delete("/v1/articles/n2", headers=AUTH).status_code == 200
    assert client.get("/v1/related", params={"url": page("a06")}).json()["article"]["id"] == "a06"
    for gone in ("n1", "a01"):
        assert client.delete(f"/v1/articles/{gone}", headers=AUTH).status_code == 200
    assert client.get("/v1/related", params={"url": new["url"]}).status_code == 404
    assert client.get("/v1/related", params={"url": moved["url"]}).status_code == 404


def test_the_bundle_urls_are_hashed_once_per_bundle(client: TestClient) -> None:
    finder = client.app.state.urls  # type: ignore[attr-defined]
    assert client.get("/v1/related", params={"url": page("a07")}).status_code == 200
    made = finder.bundle_urls(client.app.state.corpus.snapshot().bundle)  # type: ignore[attr-defined]
    assert len(made.keys) == 24
    for i in range(3):
        body = {"title": f"desert locust swarm {i}", "url": f"https://news.example.com/n/{i}"}
        assert client.put(f"/v1/articles/w{i}", json=body, headers=AUTH).status_code == 200
        assert client.get("/v1/related", params={"url": body["url"]}).json()["article"]["id"] == f"w{i}"
    assert finder.bundle_urls(client.app.state.corpus.snapshot().bundle) is made  # type: ignore[attr-defined]


def _titles(client: TestClient, q: str, **params: object) -> list[str]:
    response = client.get("/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["results"]]


def test_search_titles(client: TestClient) -> None:
    assert _titles(client, "locust") == [
        "a22",
        "a18",
        "a14",
        "a06",
        "a02",
        "a10",
    ]  # newest first, undated last
    assert _titles(client, "LOCUST swarm", k=2) == ["a22", "a18"]
    assert _titles(client, "report 1") == [
        "a19",
        "a18",
        "a17",
        "a16",
        "a14",
        "a13",
        "a12",
        "a11",
        "a01",
        "a10",
    ]
    assert _titles(client, "100%") == []  # LIKE's wildcards are searched for as they are
    assert _titles(client, "rep_rt") == []
    for short in ("ab", "   a  "):
        refused = client.get("/v1/search", params={"q": short})
        assert refused.status_code == 422
    assert client.get("/v1/search", params={"q": "locust", "k": 51}).status_code == 422
    assert client.get("/v1/search", params={"q": "locust", "lang": "ar"}).status_code == 422


@pytest.mark.parametrize("q", ["%00%00%00", "loc%00ust", "%01%02%03", "locust%7F", "%C2%85%C2%85%C2%85"])
def test_search_refuses_control_characters(client: TestClient, q: str) -> None:
    """NUL and the other control characters are no words of a title (issue 21, defect 5)."""
    refused = client.get(f"/v1/search?q={q}")
    assert refused.status_code == 422, refused.text
    assert "control characters" in refused.json()["error"]["message"]


def test_search_sees_writes_and_deletes(client: TestClient) -> None:
    body = {"title": "Desert LOCUST swarm reaches the coast", "lang": "en", "url": "https://x.example/l"}
    assert client.put("/v1/articles/n1", json=body, headers=AUTH).status_code == 200
    assert client.delete("/v1/articles/a22", headers=AUTH).status_code == 200
    renamed = {"title": "a quiet day"}
    assert client.put("/v1/articles/a18", json=renamed, headers=AUTH).status_code == 200
    assert _titles(client, "locust") == ["n1", "a14", "a06", "a02", "a10"]
    found = client.get("/v1/search", params={"q": "locust", "k": 1}).json()["results"]
    assert found == [
        {
            "id": "n1",
            "title": body["title"],
            "url": body["url"],
            "lang": "en",
            "published_at": None,
            "section": None,
            "image_url": None,
            "listed": True,
        }
    ]
