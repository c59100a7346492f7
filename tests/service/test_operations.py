"""Operations: Prometheus metrics, request ids, JSON logs, CORS."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from embeddings.logs import JsonFormatter
from embeddings.settings import Settings
from service.app import create_app
from service.middleware import REQUEST_ID, RequestIdFilter
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

ROWS = [{"id": f"a{i}", "title": f"story {i % 3} headline {i}", "lang": "en"} for i in range(6)]


def _client(tmp_path: Path, make_settings: Callable[..., Settings], **kw: Any) -> TestClient:
    settings = make_settings(**kw)
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", ROWS), encoder)
    return TestClient(create_app(settings, fake_signals(encoder)))


def _value(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels include `labels`."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        metric, _, rest = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if metric == name and labels.items() <= found.items():
            return float(value)
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_count_requests_errors_and_short_lists(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with _client(tmp_path, make_settings, min_score=-1.0) as client:  # no floor over fake cosines
        client.get("/v1/articles/a1/related", params={"k": 2})
        client.get("/v1/articles/a1/related", params={"k": 50})  # only 5 others: a short list
        client.get("/v1/articles/nope/related")
        client.get("/v1/articles/%D8%AE%D8%A8%D8%B1/related")  # an escaped id: routed as the others
        client.get("/v1/articles/a%2Fb/story")
        text = client.get("/metrics").text
    route = "/v1/articles/{article_id}/related"
    count = _value(text, "related_request_duration_seconds_count", route=route, method="GET", status="200")
    assert count == 2
    assert _value(text, "related_errors_total", route=route, status="404") == 2
    story = "/v1/articles/{article_id}/story"
    assert _value(text, "related_errors_total", route=story, status="404") == 1
    assert _value(text, "related_short_lists_total") == 1
    assert _value(text, "related_index_articles") == 6
    assert _value(text, "related_bundle_loaded") == 1
    assert 0 <= _value(text, "related_bundle_age_seconds") < 3600


def test_request_ids_are_echoed_or_made(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    with _client(tmp_path, make_settings) as client:
        given = client.get("/healthz", headers={"X-Request-ID": "cms-123.a_b"})
        assert given.headers["x-request-id"] == "cms-123.a_b"
        made = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
        assert client.get("/nope").headers["x-request-id"]  # errors carry one too


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord("related_articles.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    token = REQUEST_ID.set("req-7")
    try:
        RequestIdFilter().filter(record)
    finally:
        REQUEST_ID.reset(token)
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x" and line["request_id"] == "req-7" and line["status"] == 200
    assert line["level"] == "info" and line["logger"] == "related_articles.access" and "time" in line


def test_cors_only_for_configured_origins(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    with _client(tmp_path, make_settings, cors_origins="https://news.example.com") as client:
        allowed = client.get("/healthz", headers={"Origin": "https://news.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://news.example.com"
        other = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers
        preflight = client.options(
            "/v1/articles/a1",
            headers={"Origin": "https://news.example.com", "Access-Control-Request-Method": "PUT"},
        )
        assert preflight.status_code == 200 and "x-request-id" in preflight.headers
    (tmp_path / "b").mkdir()
    with _client(tmp_path / "b", make_settings, bundles=tmp_path / "b" / "bundles") as client:
        plain = client.get("/healthz", headers={"Origin": "https://news.example.com"})
        assert "access-control-allow-origin" not in plain.headers  # no origins configured: no CORS


def test_bad_bodies_and_parameters_get_clear_errors(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    with _client(tmp_path, make_settings, max_request_bytes=4096) as client:
        json_headers = {"content-type": "application/json"}
        not_utf8 = client.post("/v1/related", content=b'{"title": "\xff\xfe"}', headers=json_headers)
        assert not_utf8.status_code == 400 and not_utf8.json()["error"]["code"] == "invalid_body"
        big = json.dumps({"title": "x", "body": "a" * 5000})
        too_large = client.post("/v1/related", content=big, headers=json_headers)
        assert too_large.status_code == 413 and too_large.json()["error"]["code"] == "too_large"
        assert too_large.headers["x-request-id"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
            yield big[:3000].encode()
            yield big[3000:].encode()

        streamed = client.post("/v1/related", content=chunks(), headers=json_headers)
        assert streamed.status_code == 413
        assert client.post("/v1/related", json={"title": "story 1"}).status_code == 200
        typo = client.get("/v1/articles/a1/related", params={"kk": 3})
        assert typo.status_code == 422 and "kk" in typo.json()["error"]["message"]
