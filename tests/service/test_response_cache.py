"""Cached related lists are byte for byte the lists made anew, through writes, deletes and replaces."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embeddings.cli import sample_corpus
from embeddings.ranking.scorer import save_scorer
from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.story import linear_scorer

KEY = "cache-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
# The last: French lists, which other languages fill in (two passes).
VARIANTS: list[dict[str, Any]] = [
    {},
    {"k": 8, "explain": "true"},
    {"lang": "ar", "min_score": -1},
    {"lang": "fr"},
]


@pytest.fixture
def clients(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient, list[str]]]:
    """The sample corpus served twice from copies of one bundle: with the response cache and without."""
    # A dense scorer: with the lexical signal, whose candidates no cosine bounds, a write drops every list.
    save_scorer(linear_scorer(None), tmp_path / "scorer.json")
    cached = Settings(
        bundles=tmp_path / "cached", api_keys=KEY, reload_interval=60, scorer=str(tmp_path / "scorer.json")
    )
    build_with(cached, sample_corpus(), HashingEncoder())
    shutil.copytree(cached.bundles, tmp_path / "plain", symlinks=True)
    plain = cached.model_copy(update={"bundles": tmp_path / "plain", "response_cache": 0})
    ids = [json.loads(line)["id"] for line in sample_corpus().read_text(encoding="utf-8").splitlines()]
    with (
        TestClient(create_app(cached, fake_signals(HashingEncoder()))) as one,
        TestClient(create_app(plain, fake_signals(HashingEncoder()))) as other,
    ):
        yield one, other, ids


def _same_everywhere(cached: TestClient, plain: TestClient, ids: list[str]) -> tuple[list[bytes], int]:
    """Every article's lists from both services, twice from the cached one; they must be equal.

    Also how many of them the cached service answered from its cache at once: the lists it still held.
    """
    responses = cached.app.state.lists  # type: ignore[attr-defined]
    bodies, held = [], 0
    for ident in ids:
        for params in VARIANTS:
            url = f"/v1/articles/{ident}/related"
            want = plain.get(url, params=params)
            for attempt in range(2):  # the second answer comes from the cache
                hits = responses.hits
                got = cached.get(url, params=params)
                held += attempt == 0 and responses.hits > hits
                assert (got.status_code, got.content) == (want.status_code, want.content), (ident, params)
            bodies.append(want.content)
    return bodies, held


def _both(clients: tuple[TestClient, TestClient], method: str, url: str, **kwargs: Any) -> None:
    for client in clients:
        assert client.request(method, url, headers=AUTH, **kwargs).status_code == 200


@pytest.mark.slow  # every list of the sample corpus, five times: 6,600 requests
def test_cached_lists_are_the_lists_made_anew(clients: tuple[TestClient, TestClient, list[str]]) -> None:
    cached, plain, ids = clients
    both = (cached, plain)
    full = len(ids) * len(VARIANTS)
    assert _same_everywhere(cached, plain, ids)[1] == 0  # none cached yet, every one from now on

    # A new article of a sample story, then its deletion: in every list it belongs to, then in none.
    story = json.loads(sample_corpus().read_text(encoding="utf-8").splitlines()[5])
    new = {"title": story["title"] + " (تحديث)", "body": story["body"], "lang": story["lang"]}
    _both(both, "PUT", "/v1/articles/live-1", json=new)
    bodies, kept = _same_everywhere(cached, plain, ids)
    assert 0 < kept < full  # the lists near it were dropped, the others kept
    assert any(b'"live-1"' in b for b in bodies)
    _both(both, "DELETE", "/v1/articles/live-1")
    assert not any(b'"live-1"' in b for b in _same_everywhere(cached, plain, ids)[0])

    # A bundle article deleted, another replaced with other words, one written far from every story.
    _both(both, "DELETE", f"/v1/articles/{ids[9]}")
    replaced = {"title": "Harbour strike", "body": "Dockers walk out."}
    _both(both, "PUT", f"/v1/articles/{ids[20]}", json=replaced)
    listed = [i for i in ids if i != ids[9]]
    bodies, _ = _same_everywhere(cached, plain, listed)
    assert not any(f'"{ids[9]}"'.encode() in b for b in bodies)
    _both(both, "PUT", "/v1/articles/far", json={"title": "zzqx vvkw", "body": "qqzx wwvk xxqz"})
    kept = _same_everywhere(cached, plain, listed)[1]
    # Nothing near it: nearly every list stays cached (those whose candidates reach far enough to admit
    # any article, lists cut short by the floor among them, are dropped).
    assert kept >= 0.9 * len(listed) * len(VARIANTS)

    # Editorial rules drop their article's own lists alone.
    _both(both, "PUT", f"/v1/articles/{ids[3]}/rules", json={"pin": [ids[40]], "block": [ids[4]]})
    assert _same_everywhere(cached, plain, listed)[1] == len(listed) * len(VARIANTS) - len(VARIANTS)


def test_a_cached_list_asked_with_a_body_is_still_refused(
    clients: tuple[TestClient, TestClient, list[str]],
) -> None:
    cached, _, ids = clients
    url = f"/v1/articles/{ids[0]}/related"
    assert cached.get(url).status_code == 200
    assert cached.get(url).status_code == 200  # from the cache
    big = cached.request("GET", url, content=b"x" * 2_000_000)
    assert big.status_code == 413
