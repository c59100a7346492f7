"""The HTML list, the widget on another origin's page, and the console, rendered by headless chromium."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.browser import KEY
from tests.support.wait import wait_for

pytestmark = pytest.mark.server  # the service under uvicorn in a thread (and a site)

MONTH = {"ar": "مارس", "en": "March", "fr": "mars"}  # the sample corpus is of March 2026


def expected(service: str, article_id: str, **params: Any) -> list[dict[str, Any]]:
    """The JSON list the page must show."""
    response = httpx.get(f"{service}/v1/articles/{article_id}/related", params=params, timeout=60)
    assert response.status_code == 200, response.text
    related: list[dict[str, Any]] = response.json()["related"]
    assert related
    return related


def by_css(root: Any, selector: str) -> list[Any]:
    """The elements under `root` that match `selector`."""
    from selenium.webdriver.common.by import By

    return list(root.find_elements(By.CSS_SELECTOR, selector))


def check_cards(browser: Any, aside: Any, related: list[dict[str, Any]]) -> None:
    """The rendered cards are the list's, each in its language, direction and date."""
    cards = by_css(aside, "li.related-card")
    assert [c.get_attribute("data-id") for c in cards] == [r["id"] for r in related]
    for card, item in zip(cards, related, strict=True):
        (link,) = by_css(card, "a.related-link")
        assert link.get_attribute("href") == item["url"]
        assert by_css(card, ".related-title")[0].text == item["title"]
        assert card.get_attribute("lang") == item["lang"]
        direction = "rtl" if item["lang"] == "ar" else "ltr"
        assert card.get_attribute("dir") == direction
        assert browser.execute_script("return getComputedStyle(arguments[0]).direction", card) == direction
        (when,) = by_css(card, "time")
        assert MONTH[item["lang"]] in when.text, when.text
        assert by_css(card, ".related-section")[0].text == item["section"]


@pytest.mark.parametrize(
    ("article_id", "lang", "direction", "heading"),
    [("ar-0006", "ar", "rtl", "مقالات ذات صلة"), ("en-0004", "en", "ltr", "Related articles")],
)
def test_the_html_list(
    browser: Any, service: str, article_id: str, lang: str, direction: str, heading: str
) -> None:
    related = expected(service, article_id, k=4)
    browser.get(f"{service}/v1/articles/{article_id}/related.html?k=4")
    (aside,) = by_css(browser, "aside.related-articles")
    assert (aside.get_attribute("lang"), aside.get_attribute("dir")) == (lang, direction)
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", aside) == direction
    assert by_css(aside, "h2")[0].text == heading
    check_cards(browser, aside, related)
    first, second = by_css(aside, "li.related-card")[:2]
    # Cards run with the text: right to left in Arabic, left to right in English.
    if direction == "rtl":
        assert first.rect["x"] > second.rect["x"]
    else:
        assert first.rect["x"] < second.rect["x"]


def test_a_picture_is_shown(browser: Any, service: str) -> None:
    related = expected(service, "ar-0006", k=4)
    assert "ar-live-1" in [r["id"] for r in related]
    browser.get(f"{service}/v1/articles/ar-0006/related.html?k=4")
    (image,) = by_css(browser, 'li[data-id="ar-live-1"] img.related-image')
    wait_for(lambda: browser.execute_script("return arguments[0].complete", image), what="the picture")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 320
    assert image.size["width"] > 100
    assert by_css(browser, 'li:not([data-id="ar-live-1"]) img') == []


WIDGET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A publisher's story</title>
<style>#by-id {{ --related-accent: rgb(176, 0, 32); }}</style></head>
<body><article><h1>Wadi Safa governor survives gun attack</h1><p>The story.</p></article>
<div id="by-id" data-related-article="ar-0006" data-k="4">loading</div>
<div id="by-url" data-related-url="https://GulfObserver.example.com/politics/en-0004/?utm_source=x#top"
     data-k="3"></div>
<div id="missing" data-related-article="no-such-article">kept</div>
<script src="{service}/widget.js" defer></script>
</body></html>
"""


def test_the_widget_fills_a_page_of_another_origin(
    browser: Any, service: str, site_port: int, site_pages: dict[str, tuple[str, bytes]]
) -> None:
    site_pages["/story.html"] = ("text/html; charset=utf-8", WIDGET_PAGE.format(service=service).encode())
    browser.get(f"http://127.0.0.1:{site_port}/story.html")

    def state(div_id: str) -> str:
        return str(browser.execute_script(f"return document.getElementById('{div_id}').dataset.relatedState"))

    for div_id in ("by-id", "by-url", "missing"):
        wait_for(lambda d=div_id: state(d) in {"done", "error"}, what=f"#{div_id}")
    assert (state("by-id"), state("by-url"), state("missing")) == ("done", "done", "error")
    (arabic,) = by_css(browser, "#by-id aside.related-articles")
    assert (arabic.get_attribute("lang"), arabic.get_attribute("dir")) == ("ar", "rtl")
    check_cards(browser, arabic, expected(service, "ar-0006", k=4))
    link = by_css(arabic, "a.related-link")[0]
    assert link.value_of_css_property("color") in {"rgb(176, 0, 32)", "rgba(176, 0, 32, 1)"}  # the page's
    (english,) = by_css(browser, "#by-url aside.related-articles")
    assert english.get_attribute("data-article-id") == "en-0004"
    check_cards(browser, english, expected(service, "en-0004", k=3))
    assert by_css(browser, "#missing")[0].text == "kept"
    assert "404" in browser.execute_script("return document.getElementById('missing').dataset.relatedError")
    assert len(by_css(browser, "style[data-related-style]")) == 1  # one style for every list


def test_the_widget_is_refused_where_cors_does_not_allow_it(
    browser: Any, service: str, site_port: int, site_pages: dict[str, tuple[str, bytes]]
) -> None:
    site_pages["/story.html"] = ("text/html; charset=utf-8", WIDGET_PAGE.format(service=service).encode())
    browser.get(f"http://localhost:{site_port}/story.html")  # another origin than the one allowed

    def state(div_id: str) -> str:
        return str(browser.execute_script(f"return document.getElementById('{div_id}').dataset.relatedState"))

    wait_for(lambda: state("by-id") == "error" and state("by-url") == "error", what="the refusals")
    assert by_css(browser, "aside") == []
    assert by_css(browser, "#by-id")[0].text == "loading"


def test_the_console(browser: Any, service: str) -> None:
    browser.get(f"{service}/")
    wait_for(lambda: "bundle" in by_css(browser, "#index-info")[0].text, what="the index line")
    box = by_css(browser, "#search-q")[0]
    box.send_keys("وادي صفا")
    by_css(browser, "#search-form button")[0].click()
    wait_for(lambda: by_css(browser, "#search-results li"), what="search results")
    found = [li.get_attribute("data-id") for li in by_css(browser, "#search-results li")]
    assert "ar-0006" in found and "ar-live-1" in found  # the bundle's and the one written since
    by_css(browser, '#search-results a[data-id="ar-0006"]')[0].click()
    related = expected(service, "ar-0006", k=8, explain="true")
    wait_for(lambda: len(by_css(browser, "#related > li")) == len(related), what="the related list")
    assert by_css(browser, ".article-title")[0].get_attribute("data-id") == "ar-0006"
    items = by_css(browser, "#related > li")
    assert [li.get_attribute("data-id") for li in items] == [r["id"] for r in related]
    for li, item in zip(items, related, strict=True):
        title = by_css(li, "a.title")[0]
        assert title.text == item["title"] and title.get_attribute("lang") == item["lang"]
        bars = {b.get_attribute("data-part"): b for b in by_css(li, ".bar")}
        assert {"relatedness", "main", "use", "lex", "freshness", "redundancy"} <= set(bars)
        share = browser.execute_script(
            "const bar = arguments[0].getBoundingClientRect().width;"
            "return bar / arguments[0].parentNode.getBoundingClientRect().width;",
            bars["relatedness"],
        )
        assert share == pytest.approx(min(1.0, abs(item["explain"]["relatedness"])), abs=0.02)
    wait_for(lambda: by_css(browser, "#story-panel")[0].get_attribute("data-state"), what="the story panel")
    story_state = by_css(browser, "#story-panel")[0].get_attribute("data-state")
    story = httpx.get(f"{service}/v1/articles/ar-0006/story", timeout=60)
    if story.status_code == 404:
        assert story_state == "no-route"
        assert "No story route" in by_css(browser, "#story-status")[0].text
    else:
        assert story_state == "done"
        shown = [li.get_attribute("data-id") for li in by_css(browser, "#story > li")]
        assert shown == [s["id"] for s in story.json()["story"]]
        assert "ar-0006" in shown
    # Opening a listed article follows the link, as a person would.
    by_css(browser, f'#related a[data-id="{related[0]["id"]}"]')[0].click()
    wait_for(
        # The panel is drawn anew: its title may be missing for a moment.
        lambda: [e.get_attribute("data-id") for e in by_css(browser, ".article-title")] == [related[0]["id"]],
        what="the next article",
    )


def test_the_console_links_only_web_addresses(browser: Any, service: str) -> None:
    urls = {
        "probe-javascript": "javascript:alert(1)",
        "probe-data": "data:text/html,<script>alert(1)</script>",
        "probe-protocol-relative": "//evil.example/x",
        "probe-web": "https://news.example.com/probe",  # the one that is a link
    }
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        for article_id, url in urls.items():
            article = {"title": f"Console probe {article_id}", "url": url, "lang": "en", "listed": False}
            written = httpx.put(f"{service}/v1/articles/{article_id}", json=article, headers=auth, timeout=60)
            assert written.status_code == 200, written.text
        for article_id, url in urls.items():
            browser.get(f"{service}/#article={article_id}")
            wait_for(
                lambda a=article_id: by_css(browser, f'.article-title[data-id="{a}"]'), what="the article"
            )
            (title,) = by_css(browser, ".article-title")
            hrefs = [a.get_attribute("href") for a in by_css(title, "a")]
            raw = browser.execute_script(
                "return Array.from(document.querySelectorAll('[href]'), e => e.getAttribute('href'))"
            )
            if url.startswith("https://"):
                assert hrefs == [url]
            else:
                assert hrefs == [] and title.text == f"Console probe {article_id}"
                assert url not in raw
                assert not [h for h in raw if h.lower().startswith(("javascript:", "data:", "//"))], raw
    finally:
        for article_id in urls:
            httpx.delete(f"{service}/v1/articles/{article_id}", headers=auth, timeout=60)
