"""Related lists on the sample corpus, whose `story` field is the ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.articles.text import article_text
from embeddings.index.bundle import Bundle
from embeddings.index.columns import title_key
from embeddings.index.filters import Filters
from embeddings.index.publish import load_current
from embeddings.model.lexical import LexicalModel
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.finder import Origin, RelatedFinder, RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX


@pytest.fixture(scope="module")
def bundle(sample_bundles: Path, encoders: SignalEncoders) -> Iterator[Bundle]:
    loaded: Bundle = load_current(sample_bundles, encoders.main.spec, encoders.specs())
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def finder(bundle: Bundle) -> RelatedFinder:
    """The service's ranking: the shipped scorer."""
    return RelatedFinder(bundle, load_scorer("default"), duplicate_threshold=0.985)


@pytest.fixture(scope="module")
def baseline(bundle: Bundle) -> RelatedFinder:
    """Plain cosine of the main embedding."""
    return RelatedFinder(bundle, load_scorer("cosine"), duplicate_threshold=0.985)


def _siblings(rows: list[dict[str, Any]], row: dict[str, Any]) -> set[str]:
    """Other articles of the same story, less copies of (or originals of) this one."""
    twins = {row.get("copy_of")} | {r["id"] for r in rows if r.get("copy_of") == row["id"]}
    return {r["id"] for r in rows if r["story"] == row["story"] and r["id"] != row["id"]} - twins


def test_nearest_article_is_of_the_same_story(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    nearest = RelatedQuery(k=1, policy=ListPolicy(lang_policy="any"))  # in any language
    hits = [finder.for_article(r["id"], nearest)[1][0].article.id for r in sample_rows]
    share = np.mean([hit in _siblings(sample_rows, r) for hit, r in zip(hits, sample_rows, strict=True)])
    assert share >= 0.97  # 0.993 measured with the shipped scorer (0.986 with plain cosine)


def _precision(finder: RelatedFinder, rows: list[dict[str, Any]], policy: ListPolicy) -> float:
    """Mean share of a list's results from the article's story, lists of min(4, its story's size)."""
    precisions = []
    for row in rows:
        siblings = _siblings(rows, row)
        k = min(4, len(siblings))
        _, hits = finder.for_article(row["id"], RelatedQuery(k=k, policy=policy))
        precisions.append(sum(h.article.id in siblings for h in hits) / k)
    return float(np.mean(precisions))


def test_a_storys_articles_fill_its_list(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    # In any language: 0.935 measured; 0.595 with the default same_then_other, whose lists give the
    # article's language the places that its few reports in it leave (docs/quality.md).
    assert _precision(finder, sample_rows, ListPolicy(lang_policy="any")) >= 0.8


def test_the_scorer_beats_plain_cosine(
    finder: RelatedFinder, baseline: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    scored = _precision(finder, sample_rows, ListPolicy.off())
    plain = _precision(baseline, sample_rows, ListPolicy.off())
    assert scored >= plain + 0.02  # 0.940 against 0.913 measured (fine-tuned e5; 0.867 and 0.776 before)


def test_siblings_outrank_other_stories_on_average(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    wins = []
    for row in sample_rows:
        siblings = _siblings(sample_rows, row)
        whole = RelatedQuery(k=len(sample_rows), policy=ListPolicy(min_score=-1.0, lang_policy="any"))
        _, hits = finder.for_article(row["id"], whole)
        ranks = [i for i, h in enumerate(hits) if h.article.id in siblings]
        others = [i for i, h in enumerate(hits) if h.article.id not in siblings]
        wins.append(np.mean([[r < o for o in others] for r in ranks]))
    assert np.mean(wins) >= 0.95  # pairs (sibling, other story) in the right order; 0.967 measured


def test_copies_and_self_never_listed(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    for row in sample_rows:
        _, hits = finder.for_article(row["id"], RelatedQuery(k=20))
        ids = [h.article.id for h in hits]
        assert row["id"] not in ids
        assert row.get("copy_of") not in ids
        assert not {r["id"] for r in sample_rows if r.get("copy_of") == row["id"]} & set(ids)
        assert len({title_key(h.article.title) for h in hits}) == len(hits)
        listed = set(ids)
        for copy in (r for r in sample_rows if r.get("copy_of")):
            assert not {copy["id"], copy["copy_of"]} <= listed  # reprints collapse into one entry


def test_filters_and_exclusions(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    row = sample_rows[0]
    _, base = finder.for_article(row["id"], RelatedQuery(k=6))
    _, fewer = finder.for_article(row["id"], RelatedQuery(k=6, exclude=(base[0].article.id,)))
    assert [h.article.id for h in fewer[:5]] == [h.article.id for h in base[1:6]]
    every = ListPolicy(min_score=-1.0, lang_policy="same")  # no floor: every French article, and only they
    _, french = finder.for_article(
        row["id"], RelatedQuery(k=100, filters=Filters(langs=("fr",)), policy=every)
    )
    assert len(french) == sum(r["lang"] == "fr" for r in sample_rows) - sum(
        1 for r in sample_rows if r["lang"] == "fr" and r.get("copy_of")
    )


def test_vector_query_matches_the_indexed_one(
    bundle: Bundle, finder: RelatedFinder, encoders: SignalEncoders, sample_rows: list[dict[str, Any]]
) -> None:
    row = next(r for r in sample_rows if r["lang"] == "en" and not r.get("copy_of"))
    vectors = {name: v[0] for name, v in encoders.encode([article_text(row["title"], row["body"])]).items()}
    stored = finder.corpus.get(row["id"])
    assert stored is not None
    for name, vector in vectors.items():
        assert float(vector @ finder.corpus.vectors(name, np.array([stored.rowid]))[0]) > 0.9999
    _, indexed = finder.for_article(row["id"], RelatedQuery(k=4))
    assert LEX in finder.scorer.signals and bundle.lexical is not None  # a preview's row: the bundle's IDF
    lexical = LexicalModel(bundle.lexical.idf).vectors([article_text(row["title"], row["body"])])
    vectors = {**vectors, LEX: lexical}
    origin = Origin(title=row["title"], lang=stored.lang, published_at=stored.published_at)
    preview = finder.for_vectors(vectors, RelatedQuery(k=4), origin).hits
    assert [h.article.id for h in preview] == [h.article.id for h in indexed]


def _originals(rows: list[dict[str, Any]], lang: str | None = None) -> list[dict[str, Any]]:
    return [r for r in rows if not r.get("copy_of") and (lang is None or r["lang"] == lang)]


def _same_language_share(finder: RelatedFinder, rows: list[dict[str, Any]], policy: ListPolicy) -> float:
    same = []
    for row in rows:
        _, hits = finder.for_article(row["id"], RelatedQuery(k=4, policy=policy))
        same += [h.article.lang == row["lang"] for h in hits]
    return float(np.mean(same))


def test_language_policies_shape_lists(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    rows = _originals(sample_rows, "fr") + _originals(sample_rows, "en")[:12]
    shares = {
        name: _same_language_share(finder, rows, ListPolicy(lang_policy=name))
        for name in ("same", "same_then_other", "any")
    }
    assert shares["same"] == 1.0 > shares["same_then_other"] > shares["any"]  # 0.53 and 0.22 measured


def test_other_languages_fill_only_a_short_list_and_are_marked(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    filled = 0
    for row in _originals(sample_rows, "fr")[::4] + _originals(sample_rows, "en")[::8]:
        _, own = finder.for_article(row["id"], RelatedQuery(k=10, policy=ListPolicy(lang_policy="same")))
        _, hits = finder.for_article(row["id"], RelatedQuery(k=10))
        assert [h.article.id for h in hits[: len(own)]] == [h.article.id for h in own]
        assert not any(h.other_language for h in own)
        assert all(h.other_language and h.article.lang != row["lang"] for h in hits[len(own) :])
        assert len(own) < 10 or hits == own  # a full list of its own takes no other language
        filled += len(hits) > len(own)
    assert filled >= 4  # the sample's French and English articles have few reports in their language


def test_date_policies(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    for row in _originals(sample_rows)[::7]:
        article, past = finder.for_article(row["id"], RelatedQuery(k=4, policy=ListPolicy(past_only=True)))
        assert article.published_at is not None
        assert all(h.article.published_at and h.article.published_at <= article.published_at for h in past)
        _, near = finder.for_article(row["id"], RelatedQuery(k=4, policy=ListPolicy(window_days=3)))
        for hit in near:
            assert hit.article.published_at is not None
            assert abs(hit.article.published_at - article.published_at) <= timedelta(days=3)


def test_explained_parts_add_up(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    _, hits = finder.for_article(sample_rows[0]["id"], RelatedQuery(k=4))
    for hit in hits:
        parts = hit.parts
        assert set(parts) == {"main", "use", "lex", "relatedness", "freshness", "redundancy"}
        assert hit.score == pytest.approx(parts["relatedness"] + parts["freshness"], abs=1e-5)
        assert parts["freshness"] <= 0
    assert hits[0].parts["redundancy"] == 0.0  # nothing above the first result


def test_without_diversity_the_list_is_sorted_by_score(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    for row in _originals(sample_rows)[::10]:
        _, hits = finder.for_article(row["id"], RelatedQuery(k=8, policy=ListPolicy(diversity=0.0)))
        for part in (False, True):  # its language's, then the others filling in: each sorted
            scores = [h.score for h in hits if h.other_language is part]
            assert scores == sorted(scores, reverse=True)


def test_reprints_collapse_into_an_entry_that_names_them(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    named = 0
    for copy in (r for r in sample_rows if r.get("copy_of")):
        pair = {copy["id"], copy["copy_of"]}
        sibling = next(r for r in sorted(_siblings(sample_rows, copy)) if r not in pair)
        _, hits = finder.for_article(sibling, RelatedQuery(k=10, policy=ListPolicy(lang_policy="any")))
        for hit in hits:
            if hit.article.id in pair:
                # Shown by the original (the earlier of the two), whichever scored best.
                assert (hit.article.id, hit.copies) == (copy["copy_of"], (copy["id"],))
                named += 1
    assert named >= 4


def test_the_issues_example_lists_the_original_not_the_breaking_reprint(finder: RelatedFinder) -> None:
    """Under en-0004, the governor's story: ar-0006, not another outlet's 'عاجل:' copy of it."""
    _, hits = finder.for_article("en-0004", RelatedQuery(k=4, policy=ListPolicy(lang_policy="any")))
    entries = {h.article.id: h.copies for h in hits}
    assert entries.get("ar-0006") == ("ar-0007",) and "ar-0007" not in entries


def test_policy_rules_bound_the_search(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    french = _originals(sample_rows, "fr")
    row = french[0]
    same = ListPolicy(lang_policy="same", min_score=-1.0)  # no floor: every French article
    _, hits = finder.for_article(row["id"], RelatedQuery(k=50, policy=same))
    assert {h.article.lang for h in hits} == {"fr"}
    listed = {h.article.id for h in hits} | {c for h in hits for c in h.copies}
    assert listed == {r["id"] for r in sample_rows if r["lang"] == "fr"} - {row["id"]}  # every one, once
    oldest = min(_originals(sample_rows), key=lambda r: datetime.fromisoformat(r["published_at"]))
    _, none = finder.for_article(oldest["id"], RelatedQuery(k=4, policy=ListPolicy(past_only=True)))
    assert none == []


def test_lists_looked_up_are_the_lists_searched(bundle: Bundle, sample_rows: list[dict[str, Any]]) -> None:
    """Precomputed neighbours give the very lists a search gives, filters or not."""
    assert bundle.neighbours is not None and bundle.neighbours.shape[1] == 66
    searched_bundle = Bundle(
        bundle.path,
        bundle.manifest,
        bundle.index,
        bundle.store,
        bundle.signals,
        bundle.reprints,
        bundle.columns,
        None,
        bundle.lexical,
    )
    looked_up = RelatedFinder(bundle, load_scorer("default"), duplicate_threshold=0.985)
    searched = RelatedFinder(searched_bundle, load_scorer("default"), duplicate_threshold=0.985)
    policy = ListPolicy.from_settings(Settings())
    queries = [
        RelatedQuery(k=4, policy=policy),
        RelatedQuery(k=10, policy=policy.with_overrides(lang_policy="any", window_days=7)),
        RelatedQuery(k=4, filters=Filters(langs=("ar",)), exclude=("ar-0009",), policy=policy),
        RelatedQuery(k=10, exclude=tuple(r["id"] for r in sample_rows[:40]), policy=policy),
        RelatedQuery(k=4, filters=Filters(sections=("politics", "economy")), policy=policy),
    ]
    for row in sample_rows:
        for query in queries:
            ours = [(h.article.id, h.score, h.copies) for h in looked_up.for_article(row["id"], query)[1]]
            theirs = [(h.article.id, h.score, h.copies) for h in searched.for_article(row["id"], query)[1]]
            assert ours == theirs, (row["id"], query)
