"""Bundles damaged on disk: refused with the reason, tried again once mended, never a stale error."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from embeddings.index.bundle import INDEX_FILE
from embeddings.index.publish import current_target, publish
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.wait import wait_for


def _settings(tmp_path: Path, **values: Any) -> Settings:
    settings = Settings(bundles=tmp_path / "bundles", reload_interval=0.05, min_score=-1, **values)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", corpus_rows()), HashingEncoder())
    return settings


def _broken_copy(settings: Settings) -> tuple[Path, bytes]:
    """A copy of the published bundle with its index overwritten, and the index's good bytes."""
    live = current_target(settings.bundles)
    assert live is not None
    broken = live.parent / "99999999T000000Z-broken"
    shutil.copytree(live, broken)
    good = (broken / INDEX_FILE).read_bytes()
    (broken / INDEX_FILE).write_bytes(b"garbage")
    return broken, good


def test_a_refused_bundle_mended_in_place_is_loaded(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    broken, good = _broken_copy(settings)
    publish(settings.bundles, broken)
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "refused bundle" in ready.json()["error"]["message"]
        assert INDEX_FILE in ready.text and str(tmp_path) not in ready.text  # the file, not the machine
        (broken / INDEX_FILE).write_bytes(good)  # the operator puts the right file back
        wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/readyz").json()["last_error"] is None
        assert client.get("/v1/articles/a01/related").status_code == 200


def test_the_refusal_is_forgotten_once_current_points_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    served = current_target(settings.bundles)
    assert served is not None
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        broken, _ = _broken_copy(settings)
        publish(settings.bundles, broken)
        wait_for(lambda: client.get("/readyz").json()["last_error"] is not None)
        assert str(tmp_path) not in client.get("/readyz").text
        publish(settings.bundles, served)  # rolled back by hand
        wait_for(lambda: client.get("/readyz").json()["last_error"] is None)


def test_an_article_store_damaged_under_the_service_is_unserved_not_a_500(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    served = current_target(settings.bundles)
    assert served is not None
    store = served / "articles.sqlite"
    good = store.read_bytes()
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        assert client.get("/v1/articles/a01").status_code == 200
        store.write_bytes(b"\x5a" * len(good))  # damaged in place, same size
        response = client.get("/v1/articles/a02")
        assert response.status_code == 503 and response.json()["error"]["code"] == "bundle_corrupt"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "damaged" in ready.json()["error"]["message"]
        assert client.get("/v1/articles/a03/related").status_code == 503
        store.write_bytes(good)  # restored
        wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/v1/articles/a02").status_code == 200


def test_public_answers_name_no_directory_of_the_machine(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_keys="ops-key")
    served = current_target(settings.bundles)
    assert served is not None
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        public = client.get("/v1/index")
        assert public.json()["path"] == f"versions/{served.name}" and str(tmp_path) not in public.text
        operator = client.get("/v1/index", headers={"Authorization": "Bearer ops-key"})
        assert operator.json()["path"] == str(served)
