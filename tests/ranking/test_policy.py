"""List policies, as pure logic: freshness, the passes of languages, dates and the search pool they leave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

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


def test_language_policies_make_their_passes() -> None:
    """same: the reader's languages only; same_then_other: they, then the others; any: one pass."""
    base = Filters(sections=("world",))
    assert ListPolicy(lang_policy="same").passes(base, None, "ar", None) == (
        Filters(langs=("ar",), sections=("world",)),
    )
    first, then = ListPolicy(lang_policy="same_then_other").passes(base, None, "ar", None)
    assert first == Filters(langs=("ar",), sections=("world",))
    assert then == Filters(sections=("world",), except_langs=("ar",))
    assert ListPolicy(lang_policy="any").passes(base, None, "ar", None) == (base,)
    # The request's languages replace the article's; under any they stay a filter.
    asked = Filters(langs=("en", "fr"))
    own, others = ListPolicy(lang_policy="same_then_other").passes(asked, None, "ar", None)
    assert own.langs == ("en", "fr") and others == Filters(except_langs=("en", "fr"))
    assert ListPolicy(lang_policy="any").passes(asked, None, "ar", None) == (asked,)
    # An article without a language, and no `lang` asked: every language alike.
    for name in ("same", "same_then_other"):
        assert ListPolicy(lang_policy=name).passes(base, None, None, None) == (base,)  # type: ignore[arg-type]


def _eligible(store: ArticleStore, policy: ListPolicy, lang: str | None = None) -> set[str]:
    rowids = store.eligible(policy.passes(Filters(), DAY, lang, store.date_range())[0])
    return {a.id for a in store.get_many(rowids.tolist()).values()}


def _filling(store: ArticleStore, policy: ListPolicy, lang: str) -> set[str]:
    rowids = store.eligible(policy.passes(Filters(), DAY, lang, store.date_range())[1])
    return {a.id for a in store.get_many(rowids.tolist()).values()}


def test_date_and_language_rules_pick_the_search_pool(tmp_path: Path) -> None:
    dates = {
        "d29": DAY - timedelta(days=29),
        "d31": DAY - timedelta(days=31),
        "later": DAY + timedelta(hours=1),
    }
    articles = [Article(id=i, title=i, lang="ar", published_at=d) for i, d in dates.items()]
    articles += [Article(id="undated", title="undated", lang="ar"), Article(id="en", title="en", lang="en")]
    articles += [Article(id="unknown", title="unknown")]  # no language
    write_store(tmp_path / "a.sqlite", enumerate(articles, start=1))
    store = ArticleStore(tmp_path / "a.sqlite")
    try:
        assert _eligible(store, ListPolicy(window_days=30, past_only=True)) == {
            "d29",
            "undated",
            "en",
            "unknown",
        }
        assert _eligible(store, ListPolicy(window_days=30)) == {"d29", "later", "undated", "en", "unknown"}
        assert _eligible(store, ListPolicy(window_days=None)) == {*dates, "undated", "en", "unknown"}
        assert _eligible(store, ListPolicy(lang_policy="same"), "ar") == {*dates, "undated"}
        filling = ListPolicy(lang_policy="same_then_other")
        assert _eligible(store, filling, "ar") == {*dates, "undated"}
        assert _filling(store, filling, "ar") == {"en", "unknown"}  # no language: another one
        assert _eligible(store, ListPolicy(window_days=36500, past_only=True)) == {
            "d29",
            "d31",
            "undated",
            "en",
            "unknown",
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
    with pytest.raises(InvalidQueryError, match="must be one of same, same_then_other, any"):
        ListPolicy(lang_policy="klingon_first")  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match=r"use same, same_then_other or any \(the nearest is same\)"):
        ListPolicy(lang_policy="same_only")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"same_first.*the nearest is same_then_other"):
        Settings(lang_policy="same_first")
    assert Settings().lang_policy == "same_then_other"


def test_policies_narrow_the_search_pool() -> None:
    at = DAY.timestamp()
    base = Filters(langs=("ar", "fr"))
    own, others = ListPolicy(window_days=10, past_only=True).passes(
        base, DAY, "fr", dated=(at - 100 * 86400, at + 100 * 86400)
    )
    assert own.langs == ("ar", "fr") and others.except_langs == ("ar", "fr") and not others.langs
    assert own.window == others.window == (at - 10 * 86400, at)
    # A window that spans every dated article restricts nothing; neither does an undated query.
    (wide,) = ListPolicy(window_days=365, lang_policy="any").passes(
        Filters(), DAY, "ar", dated=(at - 86400, at + 86400)
    )
    assert wide.window is None and not wide.active()
    assert ListPolicy(past_only=True).passes(Filters(), None, "ar", dated=None)[0].window is None
