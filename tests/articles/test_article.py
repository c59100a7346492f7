"""The Article model: validation and the content hash."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from embeddings.articles.article import Article


def test_content_hash_follows_title_and_body() -> None:
    a = Article(id="1", title="T", body="B")
    assert a.content_hash() == Article(id="2", title="T", body="B", lang="en").content_hash()
    assert a.content_hash() != Article(id="1", title="T", body="B2").content_hash()


def test_a_copy_with_another_text_gets_its_own_content_hash() -> None:
    original = Article(id="1", title="T", body="B")
    assert original.content_hash() == original.content_hash()  # computed once, then kept
    retitled = original.model_copy(update={"title": "T2"})
    assert retitled.content_hash() == Article(id="1", title="T2", body="B").content_hash()
    assert retitled.content_hash() != original.content_hash()


def test_titles_need_a_visible_character() -> None:
    for title in ("\u200b", "\u200b\u200c\u200d\u200e\u200f", "\u2060\ufeff", " \u200b "):
        with pytest.raises(ValidationError, match="visible character"):
            Article(id="1", title=title)
    assert Article(id="1", title="\u200bنجاة").title == "\u200bنجاة"


def test_dates_are_iso_8601_in_years_1000_to_9998() -> None:
    for date in (1700000000, "1700000000", "0999-12-31", "9999-12-31T23:59:59-05:00", True):
        with pytest.raises(ValidationError):
            Article(id="1", title="t", published_at=date)
    dated = Article(id="1", title="t", published_at="2026-03-20T10:00:00")
    assert dated.published_at is not None and dated.published_at.utcoffset() is not None
