"""Originals before reprints: which copy represents its group, in lists and stories alike."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from embeddings.index.bundle import Bundle
from embeddings.index.publish import load_current
from embeddings.index.store import StoredArticle
from embeddings.ranking.finder import RelatedFinder, RelatedQuery
from embeddings.ranking.originals import breaking, original
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.ranking.story import StoryQuery, story_of
from embeddings.settings import Settings
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder

DAY = datetime(2026, 3, 2, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    "title",
    [
        "عاجل: نجاة محافظ وادي صفا",
        "عَاجِل - نجاة محافظ",  # with diacritics
        "خبر عاجل | نجاة محافظ",
        "BREAKING: Governor survives attack",
        "Breaking news - Governor survives",
        "UPDATE | Governor survives",
        "Updated: governor survives",
        "URGENT : Le gouverneur survit",
        "Dernière minute : le gouverneur survit",
        "DERNIÈRE MINUTE – le gouverneur survit",  # an en dash
        "Flash: le gouverneur survit",
    ],
)
def test_breaking_labels_are_read_at_the_start_of_a_title(title: str) -> None:
    assert breaking(title)


@pytest.mark.parametrize(
    "title",
    [
        "نجاة محافظ وادي صفا من محاولة اغتيال",
        "Governor survives: the breaking point",  # the label is not at the start
        "Breaking the deadlock: talks resume",  # no separator after the label
        "Updates on the strike",
        "Urgences saturées à Lyon",
    ],
)
def test_titles_without_a_label_are_not_breaking(title: str) -> None:
    assert not breaking(title)


def _article(ident: str, title: str, lang: str | None = "ar", day: float | None = None) -> StoredArticle:
    when = DAY + timedelta(days=day) if day is not None else None
    return StoredArticle(0, ident, title, "", None, lang, when, None, (), None, "", None, True)


def test_the_original_is_the_earliest_then_unlabelled_then_in_the_readers_language() -> None:
    labelled_earlier = [_article("b", "عاجل: خبر", day=1), _article("a", "خبر", day=2)]
    assert original(labelled_earlier, ("ar",)) == 0  # dated: the earliest, label or not
    undated = [_article("b", "عاجل: خبر"), _article("a", "خبر")]
    assert original(undated, ("ar",)) == 1
    same_day = [_article("b", "BREAKING: news", day=1), _article("a", "news", day=1)]
    assert original(same_day, ("en",)) == 1
    dated_last = [_article("u", "خبر"), _article("d", "خبر", day=3)]
    assert original(dated_last, ()) == 1  # an undated member comes after every dated one
    languages = [_article("fr", "nouvelle", "fr"), _article("en", "news", "en")]
    assert original(languages, ("en",)) == 1
    assert original(languages, ()) == 0  # no reader's language: the best scored, the first given
    assert original(languages, ("ar",)) == 0


BODY = (
    "نجا محافظ وادي صفا خالد الرميثي مساء الاثنين من محاولة اغتيال بعدما أطلق مسلحان النار على موكبه "
    "على طريق السدر وأصيب اثنان من حراسه بجروح طفيفة ونقلا إلى المستشفى وفتحت الشرطة تحقيقا في الهجوم"
)


def _rows() -> list[dict[str, Any]]:
    """An original, its 'عاجل:' reprint (a word changed: the nearer to the English report), a follow-up,
    the English report, and an unrelated article."""
    return [
        {"id": "orig", "title": "نجاة محافظ وادي صفا من محاولة اغتيال", "body": BODY, "lang": "ar",
         "published_at": DAY.isoformat()},
        {"id": "copy", "title": "عاجل: نجاة محافظ وادي صفا من محاولة اغتيال governor attack",
         "body": BODY.replace("مساء", "ليل") + " governor survives gun attack", "lang": "ar",
         "published_at": (DAY + timedelta(hours=2)).isoformat()},
        {"id": "later", "title": "القبض على مشتبه به في الهجوم على موكب محافظ وادي صفا",
         "body": "القبض على مشتبه به في الهجوم على موكب محافظ وادي صفا خالد الرميثي", "lang": "ar",
         "published_at": (DAY + timedelta(days=1)).isoformat()},
        {"id": "en", "title": "Wadi Safa governor survives gun attack",
         "body": "Wadi Safa governor survives gun attack on his motorcade on the Sidr road", "lang": "en",
         "published_at": (DAY + timedelta(hours=12)).isoformat()},
        {"id": "far", "title": "Central bank rates", "body": "Rates rise again", "lang": "en"},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelatedFinder]:
    root = tmp_path_factory.mktemp("originals")
    settings = Settings(bundles=root / "bundles", cache_dir=root / "cache")
    build_with(settings, write_jsonl(root / "rows.jsonl", _rows()), HashingEncoder())
    bundle: Bundle = load_current(settings.bundles)
    yield RelatedFinder(bundle, load_scorer("default"), duplicate_threshold=0.985)
    bundle.close()


def test_a_list_shows_the_original_whichever_copy_scored_best(finder: RelatedFinder) -> None:
    query = RelatedQuery(k=4, policy=ListPolicy(lang_policy="any", min_score=-1.0, diversity=0.0))
    hits = finder.for_article("en", query)[1]
    (entry,) = [h for h in hits if h.article.id in {"orig", "copy"}]
    assert entry.article.id == "orig" and entry.copies == ("copy",)
    # The copy scored best: the entry keeps its score and parts.
    scores = {h.article.id: h.score for h in finder.for_article("en", query)[1]}
    alone = RelatedQuery(k=4, exclude=("orig",), policy=query.policy)
    copy_score = next(h.score for h in finder.for_article("en", alone)[1] if h.article.id == "copy")
    assert scores["orig"] == copy_score


def test_a_story_shows_the_same_original(finder: RelatedFinder) -> None:
    story = story_of(finder, "en", StoryQuery(threshold=-1.0))
    (entry,) = [e for e in story.entries if e.article.id in {"orig", "copy"}]
    assert entry.article.id == "orig" and entry.copies == ("copy",) and entry.first_report


def test_undated_copies_are_shown_by_the_one_without_a_label(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    rows = [{k: v for k, v in row.items() if k != "published_at"} for row in _rows()]
    settings = make_settings()
    build_with(settings, write_jsonl(tmp_path / "undated.jsonl", rows), HashingEncoder())
    bundle = load_current(settings.bundles)
    try:
        finder = RelatedFinder(bundle, load_scorer("default"), duplicate_threshold=0.985)
        query = RelatedQuery(k=4, policy=ListPolicy(lang_policy="any", min_score=-1.0))
        (entry,) = [h for h in finder.for_article("en", query)[1] if h.article.id in {"orig", "copy"}]
        assert entry.article.id == "orig" and entry.copies == ("copy",)
    finally:
        bundle.close()
