"""The language policies of a list, with the fake encoder: the reader's languages first, others filling in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.index.bundle import Bundle
from embeddings.index.filters import Filters
from embeddings.index.publish import load_current
from embeddings.ranking.finder import Origin, RelatedFinder, RelatedQuery
from embeddings.ranking.listing import Hit
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import Curve, Scorer, ScorerConfig, SignalTerm
from embeddings.settings import Settings
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder

STORY = "harbour strike dockers walk out over pay"
OTHER = "central bank raises interest rates again"


def _report(ident: str, lang: str | None, story: str = STORY) -> dict[str, Any]:
    """A report of `story` in its own words (not a copy of another: its title and most words differ)."""
    own = " ".join(f"{ident}x{j}" for j in range(12))
    row = {"id": ident, "title": f"{story} {ident}", "body": f"{story} {own}", "lang": lang}
    return {k: v for k, v in row.items() if v is not None}


def _rows() -> list[dict[str, Any]]:
    """A story told in three languages (two English reports besides the query, five Arabic, three French),
    another story, and an article of the story without a language."""
    rows = [_report("q", "en"), _report("en0", "en"), _report("en1", "en")]
    rows += [_report(f"ar{i}", "ar") for i in range(5)]
    rows += [_report(f"fr{i}", "fr") for i in range(3)]
    rows += [_report("none", None)]
    rows += [_report(f"o-{lang}", lang, OTHER) for lang in ("en", "ar", "fr")]
    return rows


def _scorer() -> Scorer:
    """The main cosine alone, from 0 at 0.3 to 1 at 0.7: the hashing encoder puts the story's reports
    at 0.55-0.65 from each other, the other story at 0.30-0.38 (the shipped scorer is calibrated on real
    models' cosines)."""
    curve = Curve(x=[0.3, 0.7], y=[0.0, 1.0])
    return Scorer(
        ScorerConfig(
            name="test-main", signals={"main": SignalTerm(mean=0.5, std=0.1, weight=1.0, curve=curve)}
        )
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bundle]:
    root = tmp_path_factory.mktemp("languages")
    settings = Settings(bundles=root / "bundles", cache_dir=root / "cache")
    build_with(settings, write_jsonl(root / "rows.jsonl", _rows()), HashingEncoder())
    loaded = load_current(settings.bundles)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def finder(bundle: Bundle) -> RelatedFinder:
    return RelatedFinder(bundle, _scorer(), duplicate_threshold=0.985)


# The other story is far below this floor, every report of the story far above it.
FLOOR = 0.3


def _list(finder: RelatedFinder, ident: str = "q", k: int = 6, **policy: Any) -> list[Hit]:
    query = RelatedQuery(
        k=k, filters=Filters(langs=policy.pop("langs", ())), policy=ListPolicy(min_score=FLOOR, **policy)
    )
    return finder.for_article(ident, query)[1]


def _langs(hits: list[Hit]) -> list[tuple[str | None, bool]]:
    return [(h.article.lang, h.other_language) for h in hits]


def test_the_default_fills_a_short_list_from_other_languages_after_its_own(finder: RelatedFinder) -> None:
    hits = _list(finder)
    assert ListPolicy().lang_policy == "same_then_other"
    own = [h for h in hits if not h.other_language]
    assert [h.article.id for h in own] == [h.article.id for h in _list(finder, lang_policy="same")]
    assert {h.article.id for h in own} == {"en0", "en1"}  # of the other story, none passes the floor
    assert hits[: len(own)] == own and len(hits) == 6  # the two English reports, then four others
    assert all(h.article.lang != "en" for h in hits[2:])
    # Enough of its own: no other language at all.
    assert _langs(_list(finder, k=2)) == [("en", False), ("en", False)]


def test_same_keeps_to_the_readers_languages_and_any_mixes_them(finder: RelatedFinder) -> None:
    assert _langs(_list(finder, lang_policy="same")) == [("en", False), ("en", False)]  # short
    mixed = _list(finder, lang_policy="any", k=12)
    assert {h.article.lang for h in mixed} == {"en", "ar", "fr", None} and not any(
        h.other_language for h in mixed
    )


def test_the_requests_languages_are_the_readers(finder: RelatedFinder) -> None:
    french_first = _list(finder, langs=("fr",))
    assert _langs(french_first)[:3] == [("fr", False)] * 3
    assert all(h.other_language and h.article.lang != "fr" for h in french_first[3:])
    assert len(french_first) == 6
    assert {h.article.lang for h in _list(finder, langs=("fr", "ar"), k=8)[:8]} == {"fr", "ar"}
    # Under any, `lang` stays a filter; under same, it is all there is.
    assert {h.article.lang for h in _list(finder, langs=("fr",), lang_policy="any")} == {"fr"}
    assert {h.article.lang for h in _list(finder, langs=("fr",), lang_policy="same")} == {"fr"}


def test_an_article_without_a_language_fills_in_and_one_without_gets_any(finder: RelatedFinder) -> None:
    filled = _list(finder, k=20)
    unknown = [h for h in filled if h.article.lang is None]
    assert len(unknown) == 1 and unknown[0].other_language
    under_unknown = _list(finder, "none", k=12)  # no language of its own: every language alike
    assert {h.article.lang for h in under_unknown} == {"en", "ar", "fr"}
    assert not any(h.other_language for h in under_unknown)


def test_a_preview_fills_in_as_an_indexed_article_does(finder: RelatedFinder) -> None:
    stored = finder.corpus.get("q")
    assert stored is not None
    vectors = {name: finder.corpus.vectors(name, np.array([stored.rowid]))[0] for name in finder.scorer.dense}
    origin = Origin(title=stored.title, lang="en", published_at=stored.published_at)
    query = RelatedQuery(k=6, exclude=("q",), policy=ListPolicy(min_score=FLOOR))
    preview = finder.for_vectors(vectors, query, origin).hits
    assert [(h.article.id, h.other_language) for h in preview] == [
        (h.article.id, h.other_language) for h in _list(finder)
    ]


def test_a_two_pass_list_reports_the_rows_of_both_and_the_lower_reach(finder: RelatedFinder) -> None:
    """What a write can change (the list cache's test): the rows of both passes, the lower reach."""
    query = RelatedQuery(k=6, policy=ListPolicy(min_score=FLOOR))
    _, listing = finder.listing("q", query)
    _, own = finder.listing("q", RelatedQuery(k=6, policy=ListPolicy(min_score=FLOOR, lang_policy="same")))
    rows = {int(r) for r in listing.rows}
    assert {int(r) for r in own.rows} < rows
    assert {h.article.rowid for h in listing.hits} <= rows
    assert listing.reach <= own.reach


def test_the_fill_is_ranked_against_the_lists_own_entries(make_settings: Callable[..., Settings]) -> None:
    """A reprint in another language of an entry collapses into it; it is not listed again."""
    settings = make_settings()
    rows = _rows()
    rows.append({**rows[1], "id": "en0-copy", "lang": "fr"})  # en0 word for word, marked French
    build_with(settings, write_jsonl(Path(settings.bundles).parent / "copy.jsonl", rows), HashingEncoder())
    bundle = load_current(settings.bundles)
    try:
        finder = RelatedFinder(bundle, _scorer(), duplicate_threshold=0.985)
        hits = finder.for_article("q", RelatedQuery(k=8, policy=ListPolicy(min_score=FLOOR)))[1]
        ids = [h.article.id for h in hits]
        assert "en0-copy" not in ids
        (entry,) = [h for h in hits if "en0-copy" in h.copies]
        assert entry.article.id == "en0" and not entry.other_language  # the reader's language first
    finally:
        bundle.close()
