"""The story's logic on a small corpus made with the hashing encoder: order, undated, reprints, listed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from embeddings.errors import ArticleNotFoundError, InvalidQueryError
from embeddings.index.bundle import Bundle
from embeddings.index.filters import Filters
from embeddings.index.publish import load_current
from embeddings.ranking.finder import RelatedFinder
from embeddings.ranking.scorer import Scorer, load_scorer, save_scorer
from embeddings.ranking.story import Story, StoryQuery, story_of
from tests.support.story import DAY, STORY, build_story_corpus, linear_scorer


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelatedFinder]:
    bundle: Bundle = load_current(build_story_corpus(tmp_path_factory.mktemp("story")))
    yield RelatedFinder(bundle, Scorer(linear_scorer()), duplicate_threshold=0.985)
    bundle.close()


def _ids(story: Story) -> list[str]:
    return [e.article.id for e in story.entries]


def test_oldest_first_undated_last_first_report_marked(finder: RelatedFinder) -> None:
    story = story_of(finder, "s-fr", StoryQuery(threshold=0.5))
    # The reprint collapses into the wire report it copies, which leads as the earliest of the two.
    assert _ids(story) == ["s-wire", "s-fr", "s-undated"]
    assert [e.first_report for e in story.entries] == [True, False, False]
    assert story.entries[0].copies == ("s-reprint",)
    assert story.entries[1].relatedness == 1.0  # the article itself
    assert all(e.relatedness >= 0.5 for e in story.entries)
    assert story.threshold == 0.5 and story.article.id == "s-fr"


def test_a_reprint_is_in_its_originals_entry(finder: RelatedFinder) -> None:
    story = story_of(finder, "s-reprint", StoryQuery(threshold=0.5))
    assert _ids(story) == ["s-wire", "s-fr", "s-undated"]
    assert story.entries[0].copies == ("s-reprint",) and story.entries[0].first_report
    assert story.entries[0].relatedness >= 0.5  # scored against the reprint


def test_unlisted_articles_are_in_no_other_story_but_have_their_own(finder: RelatedFinder) -> None:
    for ident in STORY - {"s-hidden"}:
        story = story_of(finder, ident, StoryQuery(threshold=0.5))
        assert "s-hidden" not in _ids(story) + [c for e in story.entries for c in e.copies]
    own = story_of(finder, "s-hidden", StoryQuery(threshold=0.5))
    assert _ids(own) == ["s-wire", "s-fr", "s-hidden", "s-undated"]


def test_other_stories_stay_out(finder: RelatedFinder) -> None:
    for ident in STORY:
        story = story_of(finder, ident, StoryQuery(threshold=0.5))
        assert set(_ids(story)) <= STORY
    assert _ids(story_of(finder, "o-bank", StoryQuery(threshold=0.5))) == ["o-bank"]
    # Without a threshold, every listed article is of every story (a reprint in its original's entry).
    assert len(story_of(finder, "o-bank", StoryQuery(threshold=-1.0)).entries) == 5


def test_a_capped_story_keeps_the_article_and_its_first_report(finder: RelatedFinder) -> None:
    assert _ids(story_of(finder, "s-undated", StoryQuery(threshold=0.5, k=2))) == ["s-wire", "s-undated"]
    alone = story_of(finder, "s-undated", StoryQuery(threshold=0.5, k=1))
    assert _ids(alone) == ["s-undated"] and not alone.entries[0].first_report  # the first report is cut
    with pytest.raises(InvalidQueryError):
        StoryQuery(threshold=0.5, k=0)


def test_filters_apply_to_the_others(finder: RelatedFinder) -> None:
    english = story_of(finder, "s-fr", StoryQuery(threshold=0.5, filters=Filters(langs=("en",))))
    assert _ids(english) == ["s-wire", "s-fr", "s-undated"]  # the article itself stays, French
    later = story_of(
        finder, "s-fr", StoryQuery(threshold=0.5, filters=Filters(since=DAY + timedelta(days=2)))
    )
    assert _ids(later) == ["s-reprint", "s-fr"]  # the wire report is older; undated ones fail a date range
    assert later.entries[0].first_report
    assert _ids(story_of(finder, "s-fr", StoryQuery(threshold=0.5, exclude=("s-undated",)))) == [
        "s-wire",
        "s-fr",
    ]


def test_unknown_article(finder: RelatedFinder) -> None:
    with pytest.raises(ArticleNotFoundError):
        story_of(finder, "nope", StoryQuery(threshold=0.5))


def test_a_scorer_file_carries_its_story_threshold(tmp_path: Path) -> None:
    save_scorer(linear_scorer(), tmp_path / "s.json")
    assert load_scorer(str(tmp_path / "s.json")).config.story_threshold == 0.5
    for shipped in ("default", "cosine"):  # each with its own measured threshold
        threshold = load_scorer(shipped).config.story_threshold
        assert threshold is not None and 0 < threshold < 1
