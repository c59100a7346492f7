"""List policies, as pure logic: freshness, languages, dates and the search pool they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from embeddings.articles.article import Article
from embeddings.errors import InvalidQueryError
from embeddings.index.filters import Filters
from embeddings.index.store import ArticleStore, write_store
from embeddings.ranking.policy import ListPolicy
from embeddings.settings import Settings

DAY = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_freshness_decays_by_half_life() -> None:
    policy = ListPolicy(freshness_half_life_days=10, freshness_weight=0.4)
    dates = [DAY, DAY - timedelta(days=10), DAY + timedelta(days=10), DAY - timedelta(days=1000)]
    published = np.array([d.timestamp() for d in dates] + [np.nan])  # the last one is undated
    got = policy.freshness(DAY, published)
    assert got == pytest.approx([0.0, -0.2, -0.2, -0.4, 0.0], abs=1e-6)
    assert not policy.freshness(None, published).any()  # an undated query has no gaps


def test_language_policies() -> None:
    langs = np.array(["ar", "en", ""], dtype=object)  # "" is an unknown language
    assert list(ListPolicy(lang_policy="same_first", language_weight=0.5).language("ar", langs)) == [
        0.5,
        0,
        0,
    ]
    assert list(ListPolicy(lang_policy="others_first", language_weight=0.5).language("ar", langs)) == [
        0,
        0.5,
        0.5,
    ]
    assert not ListPolicy(lang_policy="any").language("ar", langs).any()
    assert not ListPolicy(lang_policy="same_only").language("ar", langs).any()  # others are filtered out


def _eligible(store: ArticleStore, policy: ListPolicy, lang: str | None = None) -> set[str]:
    rowids = store.eligible(policy.restrict(Filters(), DAY, lang, store.date_range()))
    return {a.id for a in store.get_many(rowids.tolist()).values()}


def test_date_and_language_rules_pick_the_search_pool(tmp_path: Path) -> None:
    dates = {
        "d29": DAY - timedelta(days=29),
        "d31": DAY - timedelta(days=31),
        "later": DAY + timedelta(hours=1),
    }
    articles = [Article(id=i, title=i, lang="ar", published_at=d) for i, d in dates.items()]
    articles += [Article(id="undated", title="undated", lang="ar"), Article(id="en", title="en", lang="en")]
    write_store(tmp_path / "a.sqlite", enumerate(articles, start=1))
    store = ArticleStore(tmp_path / "a.sqlite")
    try:
        assert _eligible(store, ListPolicy(window_days=30, past_only=True)) == {"d29", "undated", "en"}
        assert _eligible(store, ListPolicy(window_days=30)) == {"d29", "later", "undated", "en"}
        assert _eligible(store, ListPolicy(window_days=None)) == {*dates, "undated", "en"}
        assert _eligible(store, ListPolicy(lang_policy="same_only"), "ar") == {*dates, "undated"}
        assert _eligible(store, ListPolicy(window_days=36500, past_only=True)) == {
            "d29",
            "d31",
            "undated",
            "en",
        }
    finally:
        store.close()


def test_policy_defaults_overrides_and_errors() -> None:
    settings = Settings(diversity=0.3, lang_policy="any", window_days=None)
    policy = ListPolicy.from_settings(settings)
    assert (policy.diversity, policy.lang_policy, policy.window_days) == (0.3, "any", None)
    assert policy.with_overrides(diversity=None, past_only=True).past_only
    assert policy.with_overrides(diversity=None).diversity == 0.3
    with pytest.raises(InvalidQueryError):
        ListPolicy(diversity=1.5)
    with pytest.raises(InvalidQueryError):
        ListPolicy(lang_policy="klingon_first")  # type: ignore[arg-type]


def test_policies_narrow_the_search_pool() -> None:
    at = DAY.timestamp()
    base = Filters(langs=("ar", "fr"))
    narrowed = ListPolicy(lang_policy="same_only", window_days=10, past_only=True).restrict(
        base, DAY, "fr", dated=(at - 100 * 86400, at + 100 * 86400)
    )
    assert narrowed.langs == ("ar", "fr") and narrowed.same_lang == "fr"
    assert narrowed.window == (at - 10 * 86400, at)
    # A window that spans every dated article restricts nothing; neither does an undated query.
    wide = ListPolicy(window_days=365).restrict(Filters(), DAY, "ar", dated=(at - 86400, at + 86400))
    assert wide.window is None and not wide.active()
    assert ListPolicy(past_only=True).restrict(Filters(), None, "ar", dated=None).window is None
