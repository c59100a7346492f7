"""Request validation at the edges: URLs, list caps, dates, strict numbers, media types, ids, log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from embeddings.articles.article import LANGUAGES
from embeddings.logs import JsonFormatter, TextFormatter
from embeddings.settings import Settings
from service.app import create_app
from service.schemas import (
    MAX_EXCLUDE,
    MAX_KEYWORD_LENGTH,
    MAX_KEYWORDS,
    MAX_LANGUAGES,
    MAX_SECTION_LENGTH,
    MAX_SECTIONS,
)
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

KEY = "limits-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
STORY = {"title": "harbour strike dockers walk out", "body": "harbour strike dockers news"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[TestClient]:
    """The app over the test corpus (sections world and economy) with hashing encoders and a key."""
    root = tmp_path_factory.mktemp("limits")
    settings = Settings(bundles=root / "bundles", cache_dir=model_cache, api_keys=KEY, window_days=None)
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(root / "rows.jsonl", corpus_rows()), encoder)
    with TestClient(create_app(settings, fake_signals(encoder))) as test_client:
        yield test_client


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return str(body["error"]["message"])


def _writes(client: TestClient) -> int:
    return int(client.get("/v1/index").json()["writes"]["last_seq"])


@pytest.mark.parametrize("encoded", ["%FF", "%FE", "%ED%A0%80", "%C3"])
def test_urls_that_are_not_utf8_are_refused(client: TestClient, encoded: str) -> None:
    before = _writes(client)
    message = _error(client.put(f"/v1/articles/req-{encoded}", json=STORY, headers=AUTH), 400, "invalid_url")
    assert "UTF-8" in message
    _error(client.get(f"/v1/articles/req-{encoded}"), 400, "invalid_url")
    _error(client.get(f"/v1/articles/a01/related?exclude=x{encoded}"), 400, "invalid_url")
    assert _writes(client) == before


def test_percent_encoded_utf8_ids_still_work(client: TestClient) -> None:
    put = client.put("/v1/articles/req-%D8%AE%D8%A8%D8%B1", json=STORY, headers=AUTH)
    assert put.status_code == 200 and put.json()["id"] == "req-خبر"
    assert client.get("/v1/articles/req-خبر").json()["title"] == STORY["title"]
    assert client.delete("/v1/articles/req-خبر", headers=AUTH).status_code == 200


def test_list_options_are_capped_in_queries(client: TestClient) -> None:
    related = "/v1/articles/a01/related"
    sections = [f"s{i}" for i in range(MAX_SECTIONS - 1)] + ["world"]
    listed = client.get(related, params={"section": ",".join(sections), "min_score": -1}).json()["related"]
    assert listed and {i["section"] for i in listed} == {"world"}  # a full list of sections still filters
    over = [f"s{i}" for i in range(MAX_SECTIONS + 1)]
    assert "at most" in _error(client.get(related, params={"section": ",".join(over)}), 422, "invalid_query")
    _error(client.get(related, params=[("section", s) for s in over]), 422, "invalid_request")
    _error(client.get(related, params={"section": "s" * (MAX_SECTION_LENGTH + 1)}), 422, "invalid_query")
    langs = sorted(LANGUAGES)
    assert client.get(related, params={"lang": ",".join(langs[:MAX_LANGUAGES])}).status_code == 200
    _error(client.get(related, params={"lang": ",".join(langs[: MAX_LANGUAGES + 1])}), 422, "invalid_query")
    ids = [f"e{i}" for i in range(MAX_EXCLUDE + 1)]
    assert client.get(related, params={"exclude": ",".join(ids[:MAX_EXCLUDE])}).status_code == 200
    _error(client.get(related, params={"exclude": ",".join(ids)}), 422, "invalid_query")


def test_list_options_are_capped_in_bodies(client: TestClient) -> None:
    preview = {"title": "harbour strike dockers", "min_score": -1}
    many = [f"s{i}" for i in range(95_000)]
    _error(client.post("/v1/related", json={**preview, "section": many}), 422, "invalid_request")
    _error(client.post("/v1/related", json={**preview, "section": ",".join(many)}), 422, "invalid_query")
    _error(client.post("/v1/related", json={**preview, "lang": ["en"] * 51}), 422, "invalid_request")
    _error(client.post("/v1/related", json={**preview, "exclude": many}), 422, "invalid_request")
    long_id = "x" * 257
    _error(client.post("/v1/related", json={**preview, "exclude": [long_id]}), 422, "invalid_request")
    sections = [*many[: MAX_SECTIONS - 1], "economy"]
    listed = client.post("/v1/related", json={**preview, "section": sections}).json()["related"]
    assert listed and {i["section"] for i in listed} == {"economy"}


def test_keywords_are_capped(client: TestClient) -> None:
    before = _writes(client)
    for keywords in (["k"] * (MAX_KEYWORDS + 1), ["k" * (MAX_KEYWORD_LENGTH + 1)]):
        put = client.put("/v1/articles/req-kw", json={**STORY, "keywords": keywords}, headers=AUTH)
        _error(put, 422, "invalid_request")
        batch = {"upsert": [{"id": "req-kw", **STORY, "keywords": keywords}]}
        _error(client.post("/v1/articles/batch", json=batch, headers=AUTH), 422, "invalid_request")
    assert _writes(client) == before
    longest = ["k" * MAX_KEYWORD_LENGTH]
    assert (
        client.put("/v1/articles/req-kw", json={**STORY, "keywords": longest}, headers=AUTH).status_code
        == 200
    )
    assert client.delete("/v1/articles/req-kw", headers=AUTH).status_code == 200


@pytest.mark.parametrize("date", [1700000000, "1700000000", "0999-12-31", "9999-12-31T23:59:59-05:00", True])
def test_dates_are_iso_8601_in_years_1000_to_9998_everywhere(client: TestClient, date: Any) -> None:
    for field in ("published_at", "since", "until"):
        response = client.post("/v1/related", json={"title": "harbour strike", field: date})
        _error(response, 422, "invalid_request")
    if not isinstance(date, bool):
        for field in ("since", "until"):
            _error(client.get("/v1/articles/a01/related", params={field: date}), 422, "invalid_request")
    put = client.put("/v1/articles/req-date", json={**STORY, "published_at": date}, headers=AUTH)
    _error(put, 422, "invalid_request")


def test_dates_in_range_are_taken(client: TestClient) -> None:
    window: dict[str, Any] = {"since": "2026-03-05", "until": "2026-03-10T23:59:59+00:00", "min_score": -1}
    listed = client.get("/v1/articles/a01/related", params={**window, "k": 50}).json()["related"]
    assert listed and all("2026-03-05" <= i["published_at"][:10] <= "2026-03-10" for i in listed)
    body = {"title": "harbour strike", "published_at": "2026-03-06T10:00:00+03:00", **window}
    assert client.post("/v1/related", json=body).status_code == 200


@pytest.mark.parametrize(
    ("field", "number"), [("k", 1), ("diversity", 0), ("window_days", 1), ("min_score", 0)]
)
def test_numbers_are_not_booleans(client: TestClient, field: str, number: int) -> None:
    _error(client.post("/v1/related", json={"title": "harbour strike", field: True}), 422, "invalid_request")
    assert client.post("/v1/related", json={"title": "harbour strike", field: number}).status_code == 200


@pytest.mark.parametrize(
    "title", ["\u200b", "\u200c\u200d\u200e\u200f", "\u2060", "\ufeff", " \u200b \u00ad "]
)
def test_titles_without_a_visible_character_are_refused(client: TestClient, title: str) -> None:
    before = _writes(client)
    _error(client.put("/v1/articles/req-zw", json={"title": title}, headers=AUTH), 422, "invalid_request")
    batch = {"upsert": [{"id": "req-zw", "title": title}]}
    _error(client.post("/v1/articles/batch", json=batch, headers=AUTH), 422, "invalid_request")
    _error(client.post("/v1/related", json={"title": title}), 422, "invalid_request")
    assert _writes(client) == before
    assert client.post("/v1/related", json={"title": f"{title}harbour"}).status_code == 200


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_bodies_must_be_sent_as_json(client: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(STORY).encode()
    for method, path in (("POST", "/v1/related"), ("PUT", "/v1/articles/req-ct")):
        response = client.request(method, path, content=body, headers={**headers, **AUTH})
        assert "application/json" in _error(response, 415, "unsupported_media_type")
    batch = json.dumps({"delete": ["req-ct"]}).encode()
    response = client.post("/v1/articles/batch", content=batch, headers={**headers, **AUTH})
    _error(response, 415, "unsupported_media_type")
    _error(client.put("/v1/articles/req-ct", content=body, headers=headers), 401, "unauthorized")


def test_json_media_types_are_taken(client: TestClient) -> None:
    body = json.dumps({"title": "harbour strike"}).encode()
    for content_type in (
        "application/json; charset=utf-8",
        "application/vnd.related+json",
        "Application/JSON",
    ):
        response = client.post("/v1/related", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, (content_type, response.text)


def test_deep_json_gets_the_error_shape(client: TestClient) -> None:
    json_headers = {"Content-Type": "application/json"}
    for body in (b"[" * 100_000, b'{"title": ' + b"[" * 100_000):
        response = client.post("/v1/related", content=body, headers=json_headers)
        assert "nested too deeply" in _error(response, 400, "invalid_body")
    not_utf8 = client.post("/v1/related", content=b'{"title": "\xff"}', headers=json_headers)
    assert "UTF-8" in _error(not_utf8, 400, "invalid_body")


def test_head_on_health_routes(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = client.head(path)
        assert response.status_code == 200 and response.content == b""
        assert response.headers["x-request-id"]


def test_ids_ending_in_related_are_written_as_one_segment(client: TestClient) -> None:
    before = _writes(client)
    assert client.put("/v1/articles/req/related", json=STORY, headers=AUTH).status_code == 405
    _error(client.get("/v1/articles/req/related/more"), 404, "not_found")  # names the %2F rule
    assert _writes(client) == before
    for ident in ("related", "req/related", "req/relatedness", "req/related/more"):
        path = "/v1/articles/" + quote(ident, safe="")
        assert client.put(path, json=STORY, headers=AUTH).status_code == 200
        assert client.get(path).json()["id"] == ident
        assert client.get(f"{path}/related").json()["article"]["id"] == ident
        assert client.delete(path, headers=AUTH).status_code == 200


def test_text_log_lines_cannot_be_forged(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    access = logging.getLogger("related_articles.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        client.get("/v1/articles/x%0AINFO%20forged:%20line%0D%1B[31m%C2%85%E2%80%A8/related")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "forged" in lines[0], lines
    assert "x\\nINFO forged: line\\r\\u001b[31m\\u0085\\u2028/related" in lines[0]


def test_json_log_lines_stay_one_line() -> None:
    message = "a\nb\rc\x1b\x85\u2028\u2029d"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (message,), None)
    line = JsonFormatter().format(record)
    assert len(line.splitlines()) == 1
    assert json.loads(line)["message"] == message


def test_diversity_one_with_the_floor_lists(client: TestClient) -> None:
    # Candidates under the floor score -inf; with diversity 1 their weighed score was 0 * -inf (NaN).
    response = client.get("/v1/articles/a01/related", params={"diversity": 1, "k": 4})
    assert response.status_code == 200, response.text
    body = client.post("/v1/related", json={**STORY, "diversity": 1}).json()
    assert "related" in body, body
