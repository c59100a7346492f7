"""Row columns: title and content keys."""

from __future__ import annotations

from embeddings.index.columns import NO_KEY, content_key, title_hash


def test_title_keys_match_reprinted_titles_only() -> None:
    assert title_hash("Minister survives attempt, police say") == title_hash(
        "minister survives attempt; Police say!"
    )
    assert title_hash("نجاة الوزير من محاولة اغتيال") == title_hash("نجاة الوزير من محاولة اغتيال.")
    assert title_hash("Minister survives attempt") != title_hash("Minister survives second attempt")
    assert title_hash("...") == NO_KEY  # no words: matches nothing
    assert content_key("") == NO_KEY and content_key("ab" * 32) not in (NO_KEY, content_key("ac" * 32))
