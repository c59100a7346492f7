"""The copy-on-write overlay: snapshots filter, search and list as a bundle of the same articles gives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.articles.article import Article
from embeddings.index.filters import Filters
from embeddings.index.publish import load_current
from embeddings.live.overlay import Snapshot
from embeddings.live.write_log import open_log
from embeddings.live.writes import delete, puts
from embeddings.ranking.finder import RelatedFinder, RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings
from embeddings.vectors import MAIN
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals


@pytest.fixture
def half_and_whole(tmp_path: Path, make_settings: Callable[..., Settings]) -> tuple[Snapshot, Any]:
    """A bundle of the first half of the corpus with the second half written over it, and a bundle of all."""
    rows = corpus_rows()
    for i in (7, 19):  # one without a language in the bundle, one among the writes
        del rows[i]["lang"]
    encoder = HashingEncoder()
    encoders = fake_signals(encoder)
    whole = make_settings(bundles=tmp_path / "whole")
    build_with(whole, write_jsonl(tmp_path / "whole.jsonl", rows), encoder)
    half = make_settings(bundles=tmp_path / "half")
    build_with(half, write_jsonl(tmp_path / "half.jsonl", rows[:12]), encoder)
    bundle = load_current(half.bundles)
    dims = {name: e.spec.dimension for name, e in encoders.encoders.items()}
    snapshot = Snapshot.of(bundle, dims)
    log = open_log(tmp_path / "writes.sqlite")
    for row in rows[12:]:  # one write at a time, so the overlay grows past its first capacity
        snapshot = snapshot.apply(log.append(puts([Article.model_validate(row)], encoders)))
    return snapshot, load_current(whole.bundles)


FILTERS = [
    Filters(),
    Filters(langs=("ar", "fr")),
    Filters(sections=("economy",)),
    Filters(since=datetime(2026, 3, 10, tzinfo=UTC)),
    Filters(until=datetime(2026, 3, 15, tzinfo=UTC)),
    Filters(except_langs=("en",), window=(datetime(2026, 3, 5, tzinfo=UTC).timestamp(), 1.8e9)),
    Filters(except_langs=("ar", "fr")),  # the articles without a language pass
]


@pytest.mark.parametrize("filters", FILTERS)
def test_an_overlay_filters_and_searches_as_a_bundle_of_the_same_articles(
    half_and_whole: tuple[Snapshot, Any], filters: Filters
) -> None:
    snapshot, whole = half_and_whole
    assert len(snapshot) == len(whole)

    def ids(corpus: Any, rowids: np.ndarray) -> list[str]:
        found = corpus.get_many(rowids.tolist())
        return [found[int(r)].id for r in rowids]

    assert sorted(ids(snapshot, snapshot.eligible(filters))) == sorted(ids(whole, whole.eligible(filters)))
    query = whole.vectors(MAIN, np.array([3]))[0]
    allowed = (snapshot.eligible(filters), whole.eligible(filters)) if filters.active() else (None, None)
    ours, theirs = snapshot.search(query, 8, allowed[0]), whole.search(query, 8, allowed[1])
    assert np.allclose(ours[0], theirs[0], atol=1e-6)
    assert ids(snapshot, ours[1]) == ids(whole, theirs[1])
    assert snapshot.date_range() == whole.date_range()


def test_replacing_and_deleting_hide_the_old_rows(half_and_whole: tuple[Snapshot, Any]) -> None:
    snapshot, _ = half_and_whole
    encoders = fake_signals(HashingEncoder())
    old_bundle_row = snapshot.rowids_for(["a03"])[0]
    old_overlay_row = snapshot.rowids_for(["a15"])[0]
    changed = snapshot.apply(
        [
            *puts([Article(id="a03", title="completely different words", lang="de")], encoders),
            delete("a15"),
            delete("never-existed"),
        ]
    )
    # The old snapshot is untouched: a request that holds it sees the articles as they were.
    assert snapshot.get("a03").title.startswith("football") and snapshot.get("a15") is not None  # type: ignore[union-attr]
    assert changed.get("a03").title == "completely different words"  # type: ignore[union-attr]
    assert changed.get("a15") is None and changed.rowids_for(["a15"]) == []
    assert len(changed) == len(snapshot) - 1
    for rowid in (old_bundle_row, old_overlay_row):
        assert rowid not in changed.eligible(Filters()).tolist()
        assert rowid not in changed.get_many([rowid])
    query = snapshot.vectors(MAIN, np.array([old_bundle_row]))[0]
    _, found = changed.search(query, len(changed) + 10)
    assert old_bundle_row not in found and old_overlay_row not in found and len(found) == len(changed)
    assert changed.eligible(Filters(langs=("de",))).tolist() == changed.rowids_for(["a03"])


@pytest.mark.parametrize("filters", FILTERS)
def test_filters_admit_what_the_store_selects(half_and_whole: tuple[Snapshot, Any], filters: Filters) -> None:
    """The ranking columns' filter (numpy) and the store's (SQL) agree, over a bundle and over writes."""
    for corpus in half_and_whole:
        live = corpus.eligible(Filters())
        admitted = live[corpus.row_columns(live).admits(filters)]
        assert sorted(admitted.tolist()) == sorted(corpus.eligible(filters).tolist())


def test_lookups_over_writes_give_the_lists_searches_give(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """A bundle of 150 articles (beyond the 66 stored neighbours) with 50 written over it and 10 deleted."""
    rows = corpus_rows(200)
    encoder = HashingEncoder()
    encoders = fake_signals(encoder)
    settings = make_settings()
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows[:150]), encoder)
    bundle = load_current(settings.bundles)
    dims = {name: e.spec.dimension for name, e in encoders.encoders.items()}
    writes = puts([Article.model_validate(r) for r in rows[150:]], encoders)
    writes += [delete(f"a{i:02d}") for i in range(0, 40, 4)]
    snapshot = Snapshot.of(bundle, dims).apply([replace(w, seq=i + 1) for i, w in enumerate(writes)])
    searched = replace(snapshot, bundle=replace(bundle, neighbours=None))
    scorer = load_scorer("default")
    policy = ListPolicy.from_settings(Settings(window_days=None))
    for ident in [r["id"] for r in rows[40:150:3]]:
        for query in (
            RelatedQuery(k=6, policy=policy),
            RelatedQuery(k=4, exclude=("a150", "a41"), policy=policy),
            RelatedQuery(k=6, policy=policy.with_overrides(lang_policy="any")),
            RelatedQuery(k=4, filters=Filters(langs=("fr", "en")), policy=policy),
        ):
            looked = RelatedFinder(snapshot, scorer, 0.985).for_article(ident, query)[1]
            found = RelatedFinder(searched, scorer, 0.985).for_article(ident, query)[1]
            assert [(h.article.id, h.score, h.other_language) for h in looked] == [
                (h.article.id, h.score, h.other_language) for h in found
            ]
