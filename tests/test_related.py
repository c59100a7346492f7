"""Related lists on the sample corpus, whose `story` field is the ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings import bundle as bundles_mod
from embeddings.bundle import Bundle
from embeddings.model import SentenceTransformerEncoder
from embeddings.related import RelatedFinder, RelatedQuery, title_key
from embeddings.store import Filters
from embeddings.text import article_text


@pytest.fixture(scope="module")
def finder(sample_bundles: Path, encoder: SentenceTransformerEncoder) -> Iterator[RelatedFinder]:
    bundle: Bundle = bundles_mod.load_current(sample_bundles, encoder.spec)
    yield RelatedFinder(bundle, duplicate_threshold=0.985)
    bundle.close()


def _siblings(rows: list[dict[str, Any]], row: dict[str, Any]) -> set[str]:
    """Other articles of the same story, less copies of (or originals of) this one."""
    twins = {row.get("copy_of")} | {r["id"] for r in rows if r.get("copy_of") == row["id"]}
    return {r["id"] for r in rows if r["story"] == row["story"] and r["id"] != row["id"]} - twins


def test_nearest_article_is_of_the_same_story(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    hits = [finder.for_article(r["id"], RelatedQuery(k=1))[1][0].article.id for r in sample_rows]
    share = np.mean([hit in _siblings(sample_rows, r) for hit, r in zip(hits, sample_rows, strict=True)])
    assert share >= 0.95  # 0.986 measured with e5-small: two articles of 147 miss


def test_a_storys_articles_fill_its_list(finder: RelatedFinder, sample_rows: list[dict[str, Any]]) -> None:
    precisions = []
    for row in sample_rows:
        siblings = _siblings(sample_rows, row)
        k = min(4, len(siblings))
        _, hits = finder.for_article(row["id"], RelatedQuery(k=k))
        precisions.append(sum(h.article.id in siblings for h in hits) / k)
    assert np.mean(precisions) >= 0.75  # 0.79 measured with plain cosine of e5-small


def test_siblings_outrank_other_stories_on_average(
    finder: RelatedFinder, sample_rows: list[dict[str, Any]]
) -> None:
    wins = []
    for row in sample_rows:
        siblings = _siblings(sample_rows, row)
        _, hits = finder.for_article(row["id"], RelatedQuery(k=len(sample_rows)))
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
    _, french = finder.for_article(row["id"], RelatedQuery(k=100, filters=Filters(langs=("fr",))))
    assert len(french) == sum(r["lang"] == "fr" for r in sample_rows) - sum(
        1 for r in sample_rows if r["lang"] == "fr" and r.get("copy_of")
    )


def test_vector_query_matches_the_indexed_one(
    finder: RelatedFinder, encoder: SentenceTransformerEncoder, sample_rows: list[dict[str, Any]]
) -> None:
    row = next(r for r in sample_rows if r["lang"] == "en" and not r.get("copy_of"))
    vector = encoder.encode([article_text(row["title"], row["body"])])[0]
    stored = finder.bundle.index.reconstruct(finder.bundle.store.get(row["id"]).rowid)  # type: ignore[union-attr]
    assert float(vector @ stored) > 0.9999
    _, indexed = finder.for_article(row["id"], RelatedQuery(k=4))
    preview = finder.for_vector(vector, RelatedQuery(k=4), title=row["title"])
    assert [h.article.id for h in preview] == [h.article.id for h in indexed]
