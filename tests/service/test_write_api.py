"""The write API over HTTP: keys, visibility, deletes, batches, bad input, restarts, rebuilds, concurrency."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from embeddings.index.bundle import read_manifest
from embeddings.live.write_log import open_log
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.pg_cluster import Cluster
from tests.support.wait import wait_for

KEY = "key-one"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _app(settings: Settings) -> FastAPI:
    return create_app(settings, fake_signals(HashingEncoder()))


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[..., Settings]) -> Settings:
    """A fake-encoder bundle of the test corpus, with two API keys."""
    settings = make_settings(api_keys=f"{KEY}, key-two", window_days=None, reload_interval=0.05)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    return settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_log(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The settings with the SQLite log beside the bundles, then with a PostgreSQL log."""
    if request.param == "sqlite":
        return settings
    cluster: Cluster = request.getfixturevalue("postgresql")
    return settings.model_copy(update={"write_log": cluster.new_database()})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client of a running app."""
    with TestClient(_app(settings)) as client:
        yield client


def _related(client: TestClient, ident: str, **params: Any) -> list[str]:
    response = client.get(f"/v1/articles/{ident}/related", params={"k": 10, **params})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["related"]]


def _log_seq(settings: Settings) -> int:
    log = open_log(settings.resolved_write_log())
    try:
        return log.last_seq()
    finally:
        log.close()


STORY = {"title": "harbour strike dockers walk out", "body": "harbour strike dockers harbour strike news"}


def test_writes_need_a_valid_key(client: TestClient, settings: Settings) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        for response in (
            client.put("/v1/articles/n1", json=STORY, headers=headers),
            client.delete("/v1/articles/a01", headers=headers),
            client.post("/v1/articles/batch", json={"delete": ["a01"]}, headers=headers),
            client.put("/v1/articles/n1", json={"title": ""}, headers=headers),  # 401 before validation
        ):
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert _log_seq(settings) == 0
    for key in (KEY, "key-two"):  # both keys of a rotation work
        response = client.put("/v1/articles/n1", json=STORY, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
    assert client.get("/v1/articles/a01/related").status_code == 200  # reads need no key


def test_without_configured_keys_every_write_is_refused(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    with TestClient(_app(settings)) as client:
        response = client.put("/v1/articles/n1", json=STORY, headers=AUTH)
        assert response.status_code == 401 and "RELATED_API_KEYS" in response.json()["error"]["message"]


def test_a_put_is_listed_as_soon_as_it_returns_and_a_delete_never_again(client: TestClient) -> None:
    assert "n1" not in _related(client, "a00")
    put = client.put("/v1/articles/n1", json={**STORY, "lang": "ar"}, headers=AUTH)
    assert put.status_code == 200
    assert put.json() | {"bundle": None} == {
        "id": "n1",
        "op": "put",
        "seq": 1,
        "existed": False,
        "bundle": None,
        "writes_pending": 1,
    }
    assert "n1" in _related(client, "a00")
    assert client.get("/v1/articles/n1").json()["title"] == STORY["title"]
    assert client.get("/v1/articles/a00/related").headers["cache-control"] == "no-store"
    assert _related(client, "n1")[0] in {"a00", "a04", "a08", "a12", "a16", "a20"}  # its own story
    preview = client.post("/v1/related", json={"title": "dockers walk out, harbour strike goes on", "k": 10})
    assert "n1" in [r["id"] for r in preview.json()["related"]]

    # Replace: the new text is what is matched, and the id appears once.
    again = client.put("/v1/articles/n1", json={"title": "central bank rates rise"}, headers=AUTH)
    assert again.json()["existed"] is True
    every = {"lang_policy": "any"}  # n1 has no language now: under a01 it would only fill a short list
    assert "n1" not in _related(client, "a00", **every) and "n1" in _related(client, "a01", **every)

    for ident in ("n1", "a01"):  # a written article and one from the bundle
        gone = client.delete(f"/v1/articles/{ident}", headers=AUTH)
        assert gone.status_code == 200 and gone.json()["existed"] is True
        assert client.get(f"/v1/articles/{ident}").status_code == 404
        assert client.get(f"/v1/articles/{ident}/related").status_code == 404
        for query in ("a05", "a09", "a13"):
            assert ident not in _related(client, query, lang_policy="any")
            assert ident not in _related(client, query, lang="ar,en,fr", section="world,economy")
        preview = client.post("/v1/related", json={"title": "central bank rates", "k": 50})
        assert ident not in [r["id"] for r in preview.json()["related"]]
    unknown = client.delete("/v1/articles/never-seen", headers=AUTH)
    assert unknown.status_code == 200 and unknown.json()["existed"] is False


def test_a_batch_is_applied_whole_or_not_at_all(client: TestClient, settings: Settings) -> None:
    batch = {
        "upsert": [{"id": f"b{i}", **STORY} for i in range(3)] + [{"id": "a02", "title": "desert locust x"}],
        "delete": ["a00", "a04"],
    }
    bad = {**batch, "upsert": [*batch["upsert"], {"id": "b9", "title": "ok", "lang": "xx"}]}
    response = client.post("/v1/articles/batch", json=bad, headers=AUTH)
    assert response.status_code == 422 and _log_seq(settings) == 0
    assert client.get("/v1/articles/b0").status_code == 404

    response = client.post("/v1/articles/batch", json=batch, headers=AUTH)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["id"], r["op"], r["existed"]) for r in results] == [
        ("b0", "put", False),
        ("b1", "put", False),
        ("b2", "put", False),
        ("a02", "put", True),
        ("a00", "delete", True),
        ("a04", "delete", True),
    ]
    assert [r["seq"] for r in results] == list(range(1, 7))
    related = _related(client, "a08")
    assert {"b0", "b1", "b2"} & set(related) and not {"a00", "a04"} & set(related)

    repeated = {"upsert": [{"id": "c", "title": "t"}], "delete": ["c"]}
    assert client.post("/v1/articles/batch", json=repeated, headers=AUTH).status_code == 422
    assert client.post("/v1/articles/batch", json={}, headers=AUTH).status_code == 422
    assert _log_seq(settings) == 6


def test_a_batch_over_the_limit_is_refused(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api_keys=KEY, max_batch=3)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    with TestClient(_app(settings)) as client:
        response = client.post("/v1/articles/batch", json={"delete": ["a", "b", "c", "d"]}, headers=AUTH)
        assert response.status_code == 422 and "at most 3" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("n1", "{not json", 422),
        ("n1", b'{"title": "\xff"}', 400),
        ("n1", {}, 422),
        ("n1", {"title": ""}, 422),
        ("n1", {"title": "   "}, 422),
        ("n1", {"title": "t", "published_at": "yesterday"}, 422),
        ("n1", {"title": "t", "published_at": 1700000000}, 422),
        ("n1", {"title": "t", "published_at": "9999-12-31T23:59:59-05:00"}, 422),
        ("n1", {"title": "t", "published_at": "0001-01-01T00:00:00+05:00"}, 422),
        ("n1", {"title": "t", "lang": "zz"}, 422),
        ("n1", {"title": "t", "lang": "english"}, 422),
        ("n1", {"title": "t", "colour": "red"}, 422),
        ("n1", {"title": "t", "keywords": "not a list"}, 422),
        ("x" * 257, {"title": "t"}, 422),
        ("bad%00id", {"title": "t"}, 422),
        ("bad%0Aid", {"title": "t"}, 422),  # a line break is a control character
    ],
)
def test_bad_writes_get_a_4xx_and_change_nothing(
    client: TestClient, settings: Settings, path: str, body: Any, status: int
) -> None:
    before = client.get("/v1/index").json()["writes"]
    if isinstance(body, str | bytes):
        headers = {**AUTH, "Content-Type": "application/json"}
        response = client.put(f"/v1/articles/{path}", content=body, headers=headers)
    else:
        response = client.put(f"/v1/articles/{path}", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"}
    assert _log_seq(settings) == 0 and client.get("/v1/index").json()["writes"] == before


def test_acknowledged_writes_are_replayed_after_a_restart(any_log: Settings) -> None:
    settings = any_log
    with TestClient(_app(settings)) as client:
        client.put("/v1/articles/n1", json=STORY, headers=AUTH)
        client.delete("/v1/articles/a00", headers=AUTH)
    with TestClient(_app(settings)) as client:
        assert client.get("/v1/articles/n1").json()["title"] == STORY["title"]
        assert client.get("/v1/articles/a00").status_code == 404
        assert "n1" in _related(client, "a04") and "a00" not in _related(client, "a04")
        assert client.get("/v1/index").json()["writes"]["pending"] == 2
        metrics = client.get("/metrics").text
        assert "related_writes_pending 2.0" in metrics


def test_a_rebuild_folds_the_writes_in_and_keeps_those_made_during_it(
    tmp_path: Path, any_log: Settings
) -> None:
    settings = any_log
    archive = write_jsonl(tmp_path / "rows.jsonl", corpus_rows())
    encoder = HashingEncoder()
    with TestClient(_app(settings)) as client:
        client.put("/v1/articles/early", json=STORY, headers=AUTH)
        client.delete("/v1/articles/a00", headers=AUTH)
        stop = threading.Event()
        acknowledged: list[str] = []

        def keep_writing() -> None:
            # Writes land before, during and after the build reads the log, and around the swap.
            i = 0
            while not stop.is_set() or i < 5:
                ident = f"during-{i}"
                if client.put(f"/v1/articles/{ident}", json=STORY, headers=AUTH).status_code == 200:
                    acknowledged.append(ident)
                i += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            report = build_with(settings, archive, encoder)
            wait_for(lambda: client.get("/readyz").json()["bundle"] == report.version, what="the swap")
            swapped = len(acknowledged)
            wait_for(lambda: len(acknowledged) > swapped, what="a write acknowledged after the swap")
        finally:
            stop.set()
            writer.join()
        manifest = read_manifest(Path(report.path))
        assert manifest["writes"]["folded_through"] >= 2
        assert client.get("/readyz").json()["bundle"] == report.version
        assert client.get("/v1/articles/early").status_code == 200
        assert client.get("/v1/articles/a00").status_code == 404  # the archive still has it
        missing = [i for i in acknowledged if client.get(f"/v1/articles/{i}").status_code != 200]
        assert acknowledged and not missing
        pending = client.get("/v1/index").json()["writes"]["pending"]
        assert pending > 0 and pending == _log_seq(settings) - manifest["writes"]["folded_through"]


def test_readers_never_see_half_a_batch(client: TestClient) -> None:
    """A batch rewrites three articles with one generation number; every list shows one generation."""
    group = ["g-a", "g-b", "g-c"]
    words = ["alpha", "beta", "gamma"]

    def batch(generation: int) -> dict[str, Any]:
        return {
            "upsert": [
                {
                    "id": ident,
                    "title": f"locust swarm {word} generation {generation}",
                    "body": f"desert locust swarm {word} {word} farmers",
                    "lang": "ar",
                }
                for ident, word in zip(group, words, strict=True)
            ]
        }

    assert client.post("/v1/articles/batch", json=batch(0), headers=AUTH).status_code == 200
    stop = time.monotonic() + 3.0
    statuses: list[int] = []
    torn: list[list[str]] = []

    def write() -> None:
        generation = 1
        while time.monotonic() < stop:
            statuses.append(
                client.post("/v1/articles/batch", json=batch(generation), headers=AUTH).status_code
            )
            generation += 1

    def read() -> None:
        while time.monotonic() < stop:
            response = client.get("/v1/articles/a02/related", params={"k": 20, "lang_policy": "any"})
            statuses.append(response.status_code)
            titles = [r["title"] for r in response.json().get("related", []) if r["id"] in group]
            if len({t.rsplit(" ", 1)[-1] for t in titles}) > 1 or len(titles) not in (0, 3):
                torn.append(titles)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(write), *(pool.submit(read) for _ in range(3))]:
            future.result()
    assert statuses and all(s == 200 for s in statuses)
    assert not torn


def test_ids_with_padding_are_refused_everywhere(client: TestClient, settings: Settings) -> None:
    for response in (
        client.put("/v1/articles/%20y%20", json=STORY, headers=AUTH),
        client.delete("/v1/articles/y%20", headers=AUTH),
        client.post("/v1/articles/batch", json={"upsert": [{"id": " y", **STORY}]}, headers=AUTH),
        client.post("/v1/articles/batch", json={"delete": ["y "]}, headers=AUTH),
    ):
        assert response.status_code == 422 and "whitespace" in response.text
    assert _log_seq(settings) == 0


def test_large_bodies_only_with_a_key(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api_keys=KEY, max_request_bytes=4096, max_write_bytes=1 << 20)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    batch = {"upsert": [{"id": f"big{i}", "title": f"big {i}", "body": "word " * 200} for i in range(20)]}
    with TestClient(_app(settings)) as client:
        assert client.post("/v1/articles/batch", json=batch).status_code == 413
        assert (
            client.post("/v1/articles/batch", json=batch, headers={"Authorization": "Bearer no"}).status_code
            == 413
        )
        assert client.post("/v1/related", json={"title": "x" * 5000}).status_code == 413
        assert client.post("/v1/related", json={"title": "x" * 5000}, headers=AUTH).status_code == 413
        assert client.post("/v1/articles/batch", json=batch, headers=AUTH).status_code == 200


def test_superseded_writes_are_compacted_away(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        for i in range(5):
            client.put("/v1/articles/n1", json={**STORY, "title": f"version {i}"}, headers=AUTH)
        client.put("/v1/articles/n2", json=STORY, headers=AUTH)
        client.delete("/v1/articles/n2", headers=AUTH)
    with TestClient(_app(settings)) as client:  # the restart compacts the log
        assert client.get("/v1/articles/n1").json()["title"] == "version 4"
        assert client.get("/v1/articles/n2").status_code == 404
        assert client.get("/v1/index").json()["writes"]["pending"] == 2
    log = open_log(settings.resolved_write_log())
    assert [(w.op, w.article_id, w.seq) for w in log.read()] == [("put", "n1", 5), ("delete", "n2", 7)]
    log.close()
