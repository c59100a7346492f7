"""Row columns: title and content keys."""

from __future__ import annotations

from embeddings.index.columns import NO_KEY, Columns, content_key, title_hash
from embeddings.index.filters import Filters


def test_title_keys_match_reprinted_titles_only() -> None:
    assert title_hash("Minister survives attempt, police say") == title_hash(
        "minister survives attempt; Police say!"
    )
    assert title_hash("نجاة الوزير من محاولة اغتيال") == title_hash("نجاة الوزير من محاولة اغتيال.")
    assert title_hash("Minister survives attempt") != title_hash("Minister survives second attempt")
    assert title_hash("...") == NO_KEY  # no words: matches nothing
    assert content_key("") == NO_KEY and content_key("ab" * 32) not in (NO_KEY, content_key("ac" * 32))


def test_filters_admit_rows_by_language_and_section_whatever_the_list_length() -> None:
    rows = [
        ("ar", "world"),
        ("en", "sport"),
        ("ar", None),
        ("fr", "world"),
        ("en", "economy"),
        (None, "sport"),
    ]
    columns = Columns.empty(len(rows))
    for at, (lang, section) in enumerate(rows):
        columns.put(at, lang, section, None, f"title {at}", "")
    many = (*(f"s{i}" for i in range(10_000)), "world", "sport")
    assert columns.admits(Filters(sections=many)).tolist() == [True, True, False, True, False, True]
    both = columns.admits(Filters(langs=("ar", "en"), sections=("sport", "economy")))
    assert both.tolist() == [False, True, False, False, True, False]
    assert not columns.admits(Filters(langs=("de",))).any()
