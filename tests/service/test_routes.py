"""Every route and error of the HTTP API, through the app factory and its lifespan."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from embeddings.index.bundle import INDEX_FILE
from embeddings.index.publish import current_target, publish
from embeddings.model.signals import SignalEncoders
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.wait import wait_for


@pytest.fixture(scope="module")
def client(sample_bundles: Path, model_cache: Path, encoders: SignalEncoders) -> Iterator[TestClient]:
    settings = Settings(bundles=sample_bundles, cache_dir=model_cache)
    with TestClient(create_app(settings, encoders)) as test_client:
        yield test_client


def _story(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {str(r["id"]): str(r["story"]) for r in rows}


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_related_lists_the_same_story(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    story = _story(sample_rows)
    # The README's example: the first report of the assassination attempt.
    original = next(r for r in sample_rows if r["story"] == "wadi-safa-governor-attack")
    response = client.get(f"/v1/articles/{original['id']}/related", params={"k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    copies = [r["id"] for r in sample_rows if r.get("copy_of") == original["id"]]
    assert body["article"] == {
        "id": original["id"],
        "title": original["title"],
        "url": original["url"],
        "copies": copies,  # its republished copy, left out of the list
    }
    related = body["related"]
    assert len(related) == 4
    # In its language first: the three Arabic reports of the story above the floor, then a report in
    # another language fills the list, marked as such; across languages, four reports of the story.
    assert [story[item["id"]] for item in related] == [original["story"]] * 4
    assert [(item["lang"] == "ar", item["other_language"]) for item in related] == [(True, False)] * 3 + [
        (False, True)
    ]
    across = client.get(f"/v1/articles/{original['id']}/related", params={"k": 4, "lang_policy": "any"})
    assert [story[item["id"]] for item in across.json()["related"]] == [original["story"]] * 4
    fields = {
        "id",
        "title",
        "url",
        "published_at",
        "lang",
        "section",
        "image_url",
        "score",
        "copies",
        "other_language",
        "explain",
    }
    assert set(related[0]) == fields
    assert all(item["explain"] is None for item in related)
    assert body["scorer"] == "ranking-main-use-lex"


def test_never_the_article_itself_nor_a_copy(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    copies = [r for r in sample_rows if r.get("copy_of")]
    assert copies
    for copy in copies:
        for ident, other in ((copy["id"], copy["copy_of"]), (copy["copy_of"], copy["id"])):
            related = client.get(f"/v1/articles/{ident}/related", params={"k": 10}).json()["related"]
            listed = {item["id"] for item in related}
            assert ident not in listed and other not in listed


def test_k_results_when_the_corpus_holds_them(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    ident = sample_rows[0]["id"]
    everything = {"min_score": -1}  # no relatedness floor: every article may be listed
    assert (
        len(client.get(f"/v1/articles/{ident}/related", params={"k": 50, **everything}).json()["related"])
        == 50
    )
    assert len(client.get(f"/v1/articles/{ident}/related", params=everything).json()["related"]) == 4
    floored = client.get(f"/v1/articles/{ident}/related", params={"k": 50, "explain": "true"}).json()
    assert all(i["explain"]["relatedness"] >= 0.15 for i in floored["related"])


def test_filters(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    ident = next(r["id"] for r in sample_rows if r["lang"] == "ar")
    # No relatedness floor here: the filters alone decide which articles may be listed.
    only_fr = client.get(
        f"/v1/articles/{ident}/related", params={"k": 5, "lang": "fr", "min_score": -1}
    ).json()["related"]
    assert len(only_fr) == 5 and {i["lang"] for i in only_fr} == {"fr"}
    floored = client.get(
        f"/v1/articles/{ident}/related", params={"k": 5, "lang": "fr", "explain": "true"}
    ).json()["related"]
    assert len(floored) <= 5 and all(i["explain"]["relatedness"] >= 0.15 for i in floored)
    two = client.get(
        f"/v1/articles/{ident}/related",
        params=[("k", "8"), ("lang", "fr"), ("lang", "en"), ("min_score", "-1")],
    ).json()
    assert {i["lang"] for i in two["related"]} == {"fr", "en"}
    comma = client.get(
        f"/v1/articles/{ident}/related", params={"k": 8, "lang": "fr,en", "min_score": -1}
    ).json()
    assert comma["related"] == two["related"]
    section = sample_rows[5]["section"]
    by_section = client.get(
        f"/v1/articles/{ident}/related", params={"k": 3, "section": section, "min_score": -1}
    ).json()["related"]
    assert by_section and {i["section"] for i in by_section} == {section}
    window = {"k": 50, "since": "2026-03-05T00:00:00Z", "until": "2026-03-10T23:59:59+00:00", "min_score": -1}
    dated = client.get(f"/v1/articles/{ident}/related", params=window).json()["related"]
    assert dated and all("2026-03-05" <= i["published_at"][:10] <= "2026-03-11" for i in dated)
    first = client.get(f"/v1/articles/{ident}/related", params={"k": 3, "min_score": -1}).json()["related"]
    excluded = [first[0]["id"], first[1]["id"]]
    without = {"k": 3, "exclude": ",".join(excluded), "min_score": -1}
    after = client.get(f"/v1/articles/{ident}/related", params=without).json()
    assert not {i["id"] for i in after["related"]} & set(excluded)
    assert after["related"][0]["id"] == first[2]["id"]
    none = client.get(f"/v1/articles/{ident}/related", params={"lang": "de", "lang_policy": "same"}).json()
    assert none["related"] == []
    filled = client.get(f"/v1/articles/{ident}/related", params={"lang": "de"}).json()["related"]
    assert len(filled) == 4 and all(i["other_language"] for i in filled)  # no German: all fill in
    unknown = client.get(f"/v1/articles/{ident}/related", params={"lang": "zz"})
    assert unknown.status_code == 422 and "ISO 639-1" in unknown.json()["error"]["message"]


def test_preview_of_an_unindexed_article(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    story = _story(sample_rows)
    source = next(r for r in sample_rows if r["lang"] == "ar" and not r.get("copy_of"))
    payload = {"title": source["title"], "body": source["body"], "k": 3}
    body = client.post("/v1/related", json=payload).json()
    assert body["article"] is None
    ids = [i["id"] for i in body["related"]]
    assert len(ids) == 3 and source["id"] not in ids  # its own text is a copy of it
    assert [story[i] for i in ids] == [source["story"]] * 3
    only_en = client.post(
        "/v1/related", json={**payload, "lang": ["en"], "lang_policy": "same", "exclude": [ids[0]]}
    ).json()["related"]
    assert only_en and {i["lang"] for i in only_en} == {"en"}


def test_get_article_index_and_health(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    row = sample_rows[3]
    article = client.get(f"/v1/articles/{row['id']}").json()
    assert article["title"] == row["title"] and article["keywords"] == row["keywords"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["articles"] == len(sample_rows)
    index = client.get("/v1/index").json()
    assert index["manifest"]["counts"]["articles"] == len(sample_rows)
    assert index["stats"]["by_lang"]["ar"] > index["stats"]["by_lang"]["en"]
    assert client.get("/openapi.json").json()["paths"]["/v1/articles/{article_id}/related"]
    assert client.get("/docs").status_code == 200


def test_errors_have_one_shape(client: TestClient) -> None:
    _assert_error(client.get("/v1/articles/no-such-id/related"), 404, "article_not_found")
    _assert_error(client.get("/v1/articles/no-such-id"), 404, "article_not_found")
    _assert_error(client.get("/no/such/route"), 404, "not_found")
    for params in ({"k": 0}, {"k": 51}, {"k": "four"}, {"since": "yesterday"}):
        _assert_error(client.get("/v1/articles/x/related", params=params), 422, "invalid_request")
    err = _assert_error(
        client.get("/v1/articles/x/related", params={"since": "2026-03-10", "until": "2026-03-01"}),
        422,
        "invalid_query",
    )
    assert "since is after until" in err["message"]
    _assert_error(client.post("/v1/related", json={"body": "no title"}), 422, "invalid_request")
    _assert_error(client.post("/v1/related", json={"title": "t", "colour": "red"}), 422, "invalid_request")
    _assert_error(
        client.post("/v1/related", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    _assert_error(client.get("/v1/articles/" + "x" * 300 + "/related"), 422, "invalid_request")
    _assert_error(client.delete("/v1/index"), 405, "method_not_allowed")


def test_not_ready_then_hot_swap_then_refusal(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(reload_interval=0.05)
    encoder = HashingEncoder()
    rows = [{"id": f"a{i}", "title": f"story {i % 3} headline {i}"} for i in range(10)]
    with TestClient(create_app(settings, fake_signals(encoder))) as client:
        err = _assert_error(client.get("/readyz"), 503, "not_ready")
        assert "no bundle published" in err["message"]
        _assert_error(client.get("/v1/articles/a1/related"), 503, "not_ready")

        build_with(settings, write_jsonl(tmp_path / "a.jsonl", rows), encoder)
        wait_for(lambda: client.get("/readyz").status_code == 200)
        first = client.get("/readyz").json()["bundle"]
        assert client.get("/v1/articles/a1/related").status_code == 200

        build_with(
            settings, write_jsonl(tmp_path / "b.jsonl", [*rows, {"id": "new", "title": "fresh"}]), encoder
        )
        wait_for(lambda: client.get("/readyz").json()["bundle"] != first)
        assert client.get("/v1/articles/new").status_code == 200

        # A damaged bundle published by hand is refused: the old one keeps serving, /readyz says why.
        live = current_target(settings.bundles)
        assert live is not None
        broken = live.parent / "99999999T000000Z-broken"
        shutil.copytree(live, broken)
        (broken / INDEX_FILE).write_bytes(b"garbage")
        publish(settings.bundles, broken)
        wait_for(lambda: client.get("/readyz").json()["last_error"] is not None)
        ready = client.get("/readyz").json()
        assert ready["bundle"] == live.name and "refused bundle" in ready["last_error"]
        assert client.get("/v1/articles/new/related").status_code == 200


def test_requests_in_flight_survive_a_swap(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    import threading

    # No response cache: every answer is a list made from the bundle loaded at that moment.
    settings = make_settings(reload_interval=0.01, response_cache=0)
    encoder = HashingEncoder()
    rows = [{"id": f"a{i}", "title": f"story {i % 5} headline {i}"} for i in range(200)]
    source = write_jsonl(tmp_path / "a.jsonl", rows)
    build_with(settings, source, encoder)
    answers: list[tuple[int, str | None]] = []  # status, bundle version
    stop = threading.Event()
    with TestClient(create_app(settings, fake_signals(encoder))) as client:

        def hammer() -> None:
            while not stop.is_set():
                response = client.get("/v1/articles/a7/related", params={"k": 5})
                bundle = response.json().get("bundle") if response.status_code == 200 else None
                answers.append((response.status_code, bundle))

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for worker in workers:
            worker.start()
        wait_for(lambda: answers, what="a first answer")
        for _ in range(5):
            build_with(settings, source, encoder)
        last = current_target(settings.bundles)
        assert last is not None
        wait_for(lambda: (200, last.name) in answers, what="an answer from the last bundle")
        stop.set()
        for worker in workers:
            worker.join()
    assert {status for status, _ in answers} == {200}
    assert len({bundle for _, bundle in answers}) >= 2  # answered across at least one swap


def _fake_app_with(
    tmp_path: Path, make_settings: Callable[..., Settings], rows: list[dict[str, Any]], **kw: Any
) -> tuple[Settings, HashingEncoder, FastAPI]:
    settings = make_settings(**kw)
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows), encoder)
    return settings, encoder, create_app(settings, fake_signals(encoder))


def test_ids_with_slashes_and_unicode(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    rows = [
        {"id": "2026/03/a", "title": "slash story one"},
        {"id": "خبر-١", "title": "slash story two"},
        {"id": "x", "title": "other"},
    ]
    _, _, app = _fake_app_with(tmp_path, make_settings, rows)
    with TestClient(app) as client:
        assert client.get("/v1/articles/2026%2F03%2Fa").json()["id"] == "2026/03/a"
        assert client.get("/v1/articles/2026%2f03%2fa/story").json()["article"]["id"] == "2026/03/a"
        unencoded = client.get("/v1/articles/2026/03/a")
        assert unencoded.status_code == 404 and "%2F" in unencoded.json()["error"]["message"]
        assert client.get("/v1/articles/x").json()["id"] == "x"
        related = client.get("/v1/articles/2026%2F03%2Fa/related", params={"k": 2, "min_score": -1}).json()
        assert related["article"]["id"] == "2026/03/a" and len(related["related"]) == 2
        assert client.get("/v1/articles/خبر-١/related").json()["article"]["id"] == "خبر-١"


def test_titles_without_words_are_not_copies_of_each_other(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    rows = [{"id": f"p{i}", "title": "!!!", "body": f"body {i}"} for i in range(6)]
    _, _, app = _fake_app_with(tmp_path, make_settings, rows, min_score=-1.0)  # no floor: fake cosines
    with TestClient(app) as client:
        assert len(client.get("/v1/articles/p0/related", params={"k": 4}).json()["related"]) == 4
        preview = client.post(
            "/v1/related", json={"title": "!!!", "body": "body 9", "lang": "de,it", "lang_policy": "same"}
        ).json()
        assert preview["related"] == []


def test_a_pruned_bundle_keeps_serving_and_refusals_are_reported(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    rows = [{"id": f"a{i}", "title": f"story {i % 3} headline {i}"} for i in range(10)]
    settings, _, app = _fake_app_with(tmp_path, make_settings, rows, keep_bundles=1, reload_interval=0.05)
    with TestClient(app) as client:
        served = client.get("/readyz").json()["bundle"]
        other = HashingEncoder(name="test/another-model")
        for _ in range(2):  # built with another model: refused, and the served version is pruned
            build_with(settings, write_jsonl(tmp_path / "b.jsonl", rows), other)
        assert not (settings.bundles / "versions" / served).exists()
        wait_for(lambda: client.get("/readyz").json()["last_error"] is not None)
        ready = client.get("/readyz").json()
        assert ready["bundle"] == served and "test/another-model" in ready["last_error"]
        for _ in range(20):
            assert client.get("/v1/articles/a3/related").status_code == 200


def test_unexpected_errors_keep_the_error_shape(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    rows = [{"id": f"a{i}", "title": f"headline {i}"} for i in range(5)]
    _, _, app = _fake_app_with(tmp_path, make_settings, rows)
    with TestClient(app, raise_server_exceptions=False) as client:
        app.state.corpus.snapshot().bundle.store.close()  # the store fails under the route
        response = client.get("/v1/articles/a1", headers={"X-Request-ID": "fault-1"})
        _assert_error(response, 500, "internal_error")
        assert response.headers["x-request-id"] == "fault-1"
        assert response.headers["cache-control"] == "no-store"


def test_explain_and_policy_parameters(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    french = [r for r in sample_rows if r["lang"] == "fr" and not r.get("copy_of")]
    row = max(french, key=lambda r: datetime.fromisoformat(r["published_at"]))  # the latest has a past
    params: dict[str, Any] = {"k": 4, "explain": "true", "lang_policy": "same", "past_only": "true"}
    params["min_score"] = -1  # the policies alone decide here
    body = client.get(f"/v1/articles/{row['id']}/related", params=params).json()
    assert len(body["related"]) == 4, body
    for item in body["related"]:
        assert item["lang"] == "fr"
        assert datetime.fromisoformat(item["published_at"]) <= datetime.fromisoformat(row["published_at"])
        parts = item["explain"]
        assert set(parts) == {"main", "use", "lex", "relatedness", "freshness", "redundancy"}
        assert item["score"] == pytest.approx(parts["relatedness"] + parts["freshness"], abs=1e-5)
        assert item["other_language"] is False
    for bad in ({"lang_policy": "klingon"}, {"diversity": 2}, {"window_days": 0}, {"window_days": 1e9}):
        _assert_error(client.get(f"/v1/articles/{row['id']}/related", params=bad), 422, "invalid_request")
    retired = client.get(f"/v1/articles/{row['id']}/related", params={"lang_policy": "same_first"})
    _assert_error(retired, 422, "invalid_request")
    assert "use same, same_then_other or any (the nearest is same_then_other)" in retired.text


def test_preview_uses_its_language_and_date(client: TestClient, sample_rows: list[dict[str, Any]]) -> None:
    row = next(r for r in sample_rows if r["lang"] == "ar" and not r.get("copy_of"))
    request = {
        "title": row["title"],
        "body": row["body"],
        "language": "AR",
        "published_at": row["published_at"],
        "lang_policy": "same",
        "window_days": 30,
        "explain": True,
    }
    body = client.post("/v1/related", json=request).json()
    assert body["related"] and all(item["lang"] == "ar" for item in body["related"])
    assert row["id"] not in {item["id"] for item in body["related"]}  # its own text is a copy
    assert not any(item["other_language"] for item in body["related"])
    # Its story's other Arabic reports are weeks later: two days hold none of them, nor anything else
    # above the floor.
    assert client.post("/v1/related", json={**request, "window_days": 2}).json()["related"] == []
