"""Canonical URLs: one page's addresses compare equal, other pages' do not."""

from __future__ import annotations

import pytest

from embeddings.articles.urls import canonical_url, is_web_url, url_key

PAGE = "https://news.example.com/politics/ar-0006"


@pytest.mark.parametrize(
    "spelling",
    [
        PAGE,
        "HTTPS://News.Example.COM/politics/ar-0006",
        "https://news.example.com:443/politics/ar-0006",
        "https://news.example.com/politics/ar-0006/",
        "https://news.example.com/politics/ar-0006#comments",
        "https://news.example.com/politics/ar-0006?utm_source=tw&utm_medium=social&UTM_Campaign=x",
        "https://news.example.com/politics/ar-0006?fbclid=IwAR3&gclid=abc&msclkid=1&_ga=2.1",
        "  https://news.example.com/politics/ar-0006  ",
    ],
)
def test_spellings_of_one_page_are_one_url(spelling: str) -> None:
    assert canonical_url(spelling) == PAGE
    assert url_key(spelling) == url_key(PAGE)


@pytest.mark.parametrize(
    "other",
    [
        "http://news.example.com/politics/ar-0006",  # another scheme: another address
        "https://news.example.com:8443/politics/ar-0006",
        "https://news.example.com/Politics/ar-0006",  # paths are case-sensitive
        "https://news.example.com/politics/ar-0007",
        "https://news.example.com/politics/ar-0006?page=2",
        "https://www.news.example.com/politics/ar-0006",
    ],
)
def test_other_pages_stay_apart(other: str) -> None:
    assert canonical_url(other) != PAGE


def test_remaining_parameters_are_kept_in_one_order_and_encoding() -> None:
    assert canonical_url("https://x.example/a?b=2&utm_term=t&a=1") == "https://x.example/a?a=1&b=2"
    assert canonical_url("https://x.example/a?a=1&b=2") == canonical_url("https://x.example/a/?b=2&a=1#x")
    assert canonical_url("https://x.example/a?q=a%20b") == canonical_url("https://x.example/a?q=a+b")
    # Percent-encoding is one spelling, whatever the case of its hex digits or the script of the path.
    arabic = "https://x.example/أخبار/مقال?وسم=سياسة"
    assert canonical_url(arabic) == canonical_url(
        "https://x.example/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/%d9%85%d9%82%d8%a7%d9%84?%D9%88%D8%B3%D9%85=%D8%B3%D9%8A%D8%A7%D8%B3%D8%A9"
    )
    assert canonical_url("https://x.example/") == canonical_url("https://x.example") == "https://x.example"
    assert canonical_url("http://x.example:80/a") == "http://x.example/a"
    assert canonical_url("http://x.example:443/a") == "http://x.example:443/a"  # not http's own port


def test_what_is_no_url_is_compared_as_it_is() -> None:
    assert canonical_url("http://x.example:99999/a") == "http://x.example:99999/a"  # a bad port
    assert canonical_url(" not a url ") == "not a url"
    assert is_web_url("HTTPS://x.example/a") and is_web_url("http://x")
    assert not is_web_url("javascript:alert(1)") and not is_web_url("/relative") and not is_web_url("ftp://x")
