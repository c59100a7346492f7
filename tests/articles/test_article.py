"""The Article model: validation and the content hash."""

from __future__ import annotations

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
