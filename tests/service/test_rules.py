"""Editorial rules: pins lead a list in order, blocks never show, durable through restarts and rebuilds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

KEY = "rules-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _app(settings: Settings) -> FastAPI:
    return create_app(settings, fake_signals(HashingEncoder()))


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """The test corpus as a build input."""
    return write_jsonl(tmp_path / "rows.jsonl", corpus_rows())


@pytest.fixture
def settings(archive: Path, make_settings: Callable[..., Settings]) -> Settings:
    """A fake-encoder bundle of the test corpus with a write key."""
    settings = make_settings(api_keys=KEY, window_days=None, reload_interval=0.05, min_score=-1)
    build_with(settings, archive, HashingEncoder())
    return settings


def _ids(client: TestClient, article_id: str, **params: Any) -> list[str]:
    response = client.get(f"/v1/articles/{article_id}/related", params={"k": 6, **params})
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["related"]]


def test_pins_lead_in_order_blocks_never_show_and_other_lists_keep_theirs(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        before = _ids(client, "a04")
        other = _ids(client, "a08")
        pins, blocked = ["a13", "a02"], before[:2]
        answer = client.put("/v1/articles/a04/rules", json={"pin": pins, "block": blocked}, headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json()["pin"] == pins and answer.json()["dropped"] == []
        after = _ids(client, "a04")
        assert after[:2] == pins and not set(blocked) & set(after) and len(after) == 6
        assert _ids(client, "a04", k=1) == ["a13"]
        explained = client.get("/v1/articles/a04/related", params={"explain": "true"}).json()
        assert [i["explain"].get("pinned") for i in explained["related"][:3]] == [1.0, 2.0, None]
        assert explained["rules"] == {"pin": pins, "block": blocked}
        assert client.get("/v1/articles/a04/related").json()["rules"] is None
        assert _ids(client, "a08") == other  # rules are the list's own
        assert client.get("/v1/articles/a04/rules", headers=AUTH).json()["block"] == blocked
        assert client.delete("/v1/articles/a04/rules", headers=AUTH).status_code == 200
        assert _ids(client, "a04") == before
        assert client.get("/v1/articles/a04/rules", headers=AUTH).json()["pin"] == []


def test_rules_survive_a_restart_and_a_rebuild(settings: Settings, archive: Path) -> None:
    rules = {"pin": ["a13"], "block": ["a08"]}
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/a04/rules", json=rules, headers=AUTH).status_code == 200
    with TestClient(_app(settings)) as client:
        assert _ids(client, "a04")[0] == "a13" and "a08" not in _ids(client, "a04")
        report = build_with(settings, archive, HashingEncoder())
        client.get("/readyz")
        for _ in range(200):
            if client.get("/readyz").json()["bundle"] == report.version:
                break
            client.get("/healthz")
        assert client.get("/readyz").json()["bundle"] == report.version
        assert _ids(client, "a04")[0] == "a13" and "a08" not in _ids(client, "a04")
    log_path = settings.resolved_write_log()
    assert isinstance(log_path, Path)
    log_path.unlink()  # the bundle alone holds them now (the loss of the log accepted)
    for extra in ("-wal", "-shm"):
        Path(f"{log_path}{extra}").unlink(missing_ok=True)
    accepting = settings.model_copy(update={"accept_write_log_loss": True})
    with TestClient(_app(accepting)) as client:
        assert _ids(client, "a04")[0] == "a13" and "a08" not in _ids(client, "a04")


@pytest.mark.parametrize(
    ("rules", "why"),
    [
        ({"pin": ["nope"]}, "unknown"),
        ({"block": ["a01", "a01"]}, "more than once"),
        ({"pin": ["a04"]}, "itself"),
        ({"pin": ["a01"], "block": ["a01"]}, "both"),
        ({"pin": [f"a{i:02d}" for i in range(5, 16)]}, "at most 10"),
        ({"block": [f"x{i}" for i in range(1001)]}, "at most 1000"),
        ({"pin": "a01"}, "list"),
        ({"pins": ["a01"]}, "Extra inputs"),
    ],
)
def test_bad_rules_get_a_4xx_and_change_nothing(settings: Settings, rules: dict[str, Any], why: str) -> None:
    with TestClient(_app(settings)) as client:
        before = _ids(client, "a04")
        answer = client.put("/v1/articles/a04/rules", json=rules, headers=AUTH)
        assert answer.status_code == 422 and why in answer.text, answer.text
        assert _ids(client, "a04") == before
        assert client.get("/v1/articles/a04/rules", headers=AUTH).json()["pin"] == []


def test_rules_need_a_key_and_a_known_article(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/a04/rules", json={"pin": ["a01"]}).status_code == 401
        assert client.get("/v1/articles/a04/rules").status_code == 401
        assert client.put("/v1/articles/zz/rules", json={"pin": ["a01"]}, headers=AUTH).status_code == 404
        put = client.put("/v1/articles/x/rules", json={"pin": []}, headers=AUTH)
        assert put.status_code == 404  # the rules of x, which is unknown; never an article "x/rules"
        refused = client.put(
            "/v1/articles/batch", json={"upsert": [{"id": "y/rules", "title": "t"}]}, headers=AUTH
        )
        assert refused.status_code == 422


def test_a_pin_deleted_or_unlisted_later_drops_out_and_says_so(settings: Settings) -> None:
    with TestClient(_app(settings)) as client:
        rules = {"pin": ["a13", "a02", "a06"]}
        assert client.put("/v1/articles/a04/rules", json=rules, headers=AUTH).status_code == 200
        assert _ids(client, "a04")[:3] == ["a13", "a02", "a06"]  # cached from here on
        assert client.delete("/v1/articles/a13", headers=AUTH).status_code == 200
        unlisted = {"title": "sponsored now", "listed": False}
        assert client.put("/v1/articles/a02", json=unlisted, headers=AUTH).status_code == 200
        assert _ids(client, "a04")[0] == "a06" and not {"a13", "a02"} & set(_ids(client, "a04"))
        dropped = client.get("/v1/articles/a04/rules", headers=AUTH).json()["dropped"]
        assert dropped == [{"id": "a13", "reason": "deleted"}, {"id": "a02", "reason": "unlisted"}]
        refused = client.put("/v1/articles/a04/rules", json={"pin": ["a02"]}, headers=AUTH)
        assert refused.status_code == 422 and "listed=false" in refused.text


@pytest.mark.parametrize("away", ["delete", "unlisted"])
def test_a_pin_written_again_leads_its_cached_list_again(
    tmp_path: Path, make_settings: Callable[..., Settings], away: str
) -> None:
    """A list cached while its pin was away is dropped when the pin comes back (issue 21, defect 1)."""
    # Enough articles that a list's candidates stop short of the corpus (a finite reach), and a pin far
    # from the list's article: its return is no news to the list's candidates, only to its rules.
    rows = [{"id": f"t{i:03d}", "title": f"topic{i % 40} lead{i % 40} report {i}"} for i in range(480)]
    pin = {"title": "zebra quantum orchard", "body": "violin glacier"}
    rows.append({"id": "pin", **pin})
    settings = make_settings(api_keys=KEY, window_days=None, min_score=-1)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows), HashingEncoder())
    with TestClient(_app(settings)) as client:
        assert client.put("/v1/articles/t004/rules", json={"pin": ["pin"]}, headers=AUTH).status_code == 200
        assert _ids(client, "t004")[0] == "pin"
        if away == "delete":
            assert client.delete("/v1/articles/pin", headers=AUTH).status_code == 200
        else:
            assert (
                client.put("/v1/articles/pin", json={**pin, "listed": False}, headers=AUTH).status_code == 200
            )
        assert "pin" not in _ids(client, "t004")
        assert "pin" not in _ids(client, "t004")  # answered from the cache
        assert client.put("/v1/articles/pin", json=pin, headers=AUTH).status_code == 200
        assert _ids(client, "t004")[0] == "pin"
        assert client.get("/v1/articles/t004/rules", headers=AUTH).json()["dropped"] == []
