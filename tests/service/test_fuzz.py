"""A property-based fuzz of the HTTP API from its own OpenAPI schema (schemathesis): never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

ROWS = [
    {"id": f"a{i}", "title": f"story {i % 3} headline {i}", "lang": "en", "published_at": f"2026-03-0{i + 1}"}
    for i in range(6)
]
TALLY = {"cases": 0, "server_errors": 0, "writes": 0}
KEY = "fuzz-key"


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[TestClient]:
    """The real app over a small bundle (hashing encoders: the fuzz is about the HTTP layer)."""
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(bundles=root / "bundles", cache_dir=model_cache, api_keys=KEY)
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(root / "rows.jsonl", ROWS), encoder)
    with TestClient(create_app(settings, fake_signals(encoder))) as client:
        yield client
    print(
        f"\nfuzz: {TALLY['cases']} cases, {TALLY['server_errors']} server errors, "
        f"{TALLY['writes']} writes accepted"
    )


@pytest.mark.slow  # hundreds of generated requests on every route
def test_no_input_makes_a_server_error(fuzz_client: TestClient) -> None:
    schema = schemathesis.openapi.from_dict(fuzz_client.get("/openapi.json").json())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            allowed = ("method", "url", "params", "json", "headers", "content")
            kwargs = {k: v for k, v in kwargs.items() if k in allowed}
            write = kwargs["method"].upper() in {"PUT", "DELETE"} or kwargs["url"].endswith("/batch")
            if write:
                # Writes are fuzzed with a valid key: the 401 paths are tested on their own.
                kwargs["headers"] = {**(kwargs.get("headers") or {}), "Authorization": f"Bearer {KEY}"}
            response = fuzz_client.request(**kwargs)
            TALLY["cases"] += 1
            TALLY["writes"] += write and response.status_code == 200
            TALLY["server_errors"] += response.status_code >= 500
            assert response.status_code < 500, (kwargs, response.text)
            assert "x-request-id" in response.headers
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}  # the one error shape, whatever went wrong

        check()
    assert TALLY["cases"] >= 100
