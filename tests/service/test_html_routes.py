"""The related list as HTML: the JSON list as cards, in each article's language, escaped, cached."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from embeddings.settings import Settings
from service.app import create_app
from tests.support.corpus import build_with, corpus_rows, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.html_tree import Element, parse

KEY = "key-one"
AUTH = {"Authorization": f"Bearer {KEY}"}
PICTURE = "https://pictures.example.com/a04.jpg"
ORIGIN = "https://www.publisher.example"


@pytest.fixture
def settings(tmp_path: Path, make_settings: Callable[..., Settings]) -> Settings:
    """A fake-encoder bundle with addresses; a04 has a picture."""
    rows = corpus_rows()
    for row in rows:
        row["url"] = f"https://news.example.com/{row['section']}/{row['id']}"
    rows[4]["image_url"] = PICTURE
    settings = make_settings(api_keys=KEY, window_days=None, cors_origins=ORIGIN, min_score=-1.0)
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", rows), HashingEncoder())
    return settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The service over that bundle."""
    with TestClient(create_app(settings, fake_signals(HashingEncoder()))) as client:
        yield client


def html_list(client: TestClient, path: str, **params: Any) -> Element:
    """The HTML list's <aside>, checked to be served as HTML."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    return parse(response.text).find("aside", "related-articles")


def card_ids(aside: Element) -> list[str]:
    """The ids of the cards, in order."""
    return [str(li.attrs["data-id"]) for li in aside.find_all("li", "related-card")]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"k": 7},
        {"k": 5, "lang": "en,fr", "exclude": "a04"},
        {"section": "economy", "lang_policy": "any", "diversity": 0.5},
        {"lang": "de", "k": 3},  # no German: every card fills in from another language
        {"since": "2026-03-05", "until": "2026-03-20", "explain": "true"},
    ],
)
def test_the_html_list_is_the_json_list(client: TestClient, params: dict[str, Any]) -> None:
    for article in ("a00", "a05", "a13"):
        json_list = client.get(f"/v1/articles/{article}/related", params=params).json()
        aside = html_list(client, f"/v1/articles/{article}/related.html", **params)
        assert card_ids(aside) == [r["id"] for r in json_list["related"]]
        assert aside.attrs["data-article-id"] == article
        assert aside.attrs["data-bundle"] == json_list["bundle"]
        for li, item in zip(aside.find_all("li", "related-card"), json_list["related"], strict=True):
            assert li.find("a", "related-link").attrs["href"] == item["url"]
            assert li.find("span", "related-title").text() == item["title"]
            marked = "related-other-language" in (li.attrs["class"] or "").split()
            assert marked == item["other_language"] == bool(li.find_all("span", "related-language"))


def test_cards_filling_in_from_another_language_name_it_in_the_lists_language(client: TestClient) -> None:
    arabic = html_list(client, "/v1/articles/a03/related.html", k=12)  # a03 is Arabic: 8 Arabic articles
    names = {"en": "الإنجليزية", "fr": "الفرنسية"}
    cards = arabic.find_all("li", "related-card")
    filled = [li for li in cards if "related-other-language" in (li.attrs["class"] or "").split()]
    assert filled and len(filled) < len(cards)
    assert all(li.attrs["lang"] != "ar" for li in filled)
    assert cards[-len(filled) :] == filled  # after the Arabic ones
    for li in filled:
        label = li.find("span", "related-language")
        assert (label.attrs["lang"], label.text()) == ("ar", names[li.attrs["lang"] or ""])


def test_cards_speak_their_articles_language(client: TestClient) -> None:
    arabic = html_list(client, "/v1/articles/a03/related.html", k=12)  # a03 is Arabic
    assert (arabic.attrs["lang"], arabic.attrs["dir"]) == ("ar", "rtl")
    assert arabic.find("h2").text() == "مقالات ذات صلة"
    json_list = client.get("/v1/articles/a03/related", params={"k": 12}).json()["related"]
    months = {"ar": "مارس", "en": "March", "fr": "mars"}
    for li, item in zip(arabic.find_all("li", "related-card"), json_list, strict=True):
        assert li.attrs["lang"] == item["lang"]
        assert li.attrs["dir"] == ("rtl" if item["lang"] == "ar" else "ltr")
        times = li.find_all("time")
        if item["published_at"]:
            assert months[item["lang"]] in times[0].text(), times[0].text()
            assert times[0].attrs["datetime"].startswith(item["published_at"][:10])
        else:
            assert not times
        assert li.find("span", "related-section").text() == item["section"]
    english = html_list(client, "/v1/articles/a01/related.html")
    assert (english.attrs["lang"], english.attrs["dir"]) == ("en", "ltr")
    assert english.find("h2").text() == "Related articles"
    document = parse(client.get("/v1/articles/a03/related.html").text).find("html")
    assert (document.attrs["lang"], document.attrs["dir"]) == ("ar", "rtl")


def test_a_picture_is_a_lazy_image(client: TestClient) -> None:
    lists = [f"a{i:02d}" for i in range(24)]
    with_picture = [
        a for a in lists if "a04" in card_ids(html_list(client, f"/v1/articles/{a}/related.html"))
    ]
    assert with_picture
    aside = html_list(client, f"/v1/articles/{with_picture[0]}/related.html")
    for li in aside.find_all("li", "related-card"):
        images = li.find_all("img")
        if li.attrs["data-id"] == "a04":
            (image,) = images
            assert image.attrs["src"] == PICTURE
            assert image.attrs["alt"] == ""  # the headline beside it names the article
            assert image.attrs["loading"] == "lazy"
            assert image.attrs["referrerpolicy"] == "no-referrer"
        else:
            assert images == []


def test_everything_is_escaped(client: TestClient) -> None:
    evil = {
        "title": 'harbour strike dockers <script>alert(1)</script><img src=x onerror="alert(2)">',
        "url": "javascript:alert(3)",
        "section": '"><script>alert(4)</script>',
        "lang": "en",
        "image_url": 'https://x.example/p.png"onerror="alert(5)',
    }
    assert client.put("/v1/articles/evil", json=evil, headers=AUTH).status_code == 200
    lists = {}
    for i in range(0, 24, 4):  # the harbour strike topic
        response = client.get(f"/v1/articles/a{i:02d}/related.html", params={"k": 20})
        if "evil" in card_ids(parse(response.text).find("aside")):
            lists[i] = response.text
    own = client.get("/v1/articles/evil/related.html").text
    assert lists
    for text in [*lists.values(), own]:
        tree = parse(text)
        assert [e.tag for e in tree.iter() if e.tag == "script"] == []
        assert not any(name.startswith("on") for e in tree.iter() for name in e.attrs)
        assert "javascript:" not in " ".join(str(v) for e in tree.iter() for v in e.attrs.values())
    tree = parse(next(iter(lists.values())))
    (card,) = [li for li in tree.find_all("li", "related-card") if li.attrs["data-id"] == "evil"]
    assert card.find("span", "related-title").text() == evil["title"]  # shown as text
    assert card.find_all("a") == []  # a javascript: url is no link
    assert card.find("img").attrs["src"] == evil["image_url"]
    assert card.find("span", "related-section").text() == evil["section"]
    assert parse(own).find("title").text() == f"Related articles: {evil['title']}"


def test_errors_have_the_json_shape(client: TestClient) -> None:
    missing = client.get("/v1/articles/nope/related.html")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "article_not_found"
    for params in ({"k": 0}, {"kk": 1}, {"lang": "arabic"}):
        refused = client.get("/v1/articles/a01/related.html", params=params)
        assert refused.status_code == 422, params
        assert refused.json()["error"]["code"] in {"invalid_request", "invalid_query"}


def test_ids_ending_as_the_html_list_are_one_segment(client: TestClient) -> None:
    before = client.get("/v1/index").json()["writes"]
    # Sent as it is, `/` ends the id: these are the routes of x's list, which take no PUT.
    for path in ("x/related.html", "x/related"):
        assert client.put(f"/v1/articles/{path}", json={"title": "t"}, headers=AUTH).status_code == 405
    assert client.get("/v1/index").json()["writes"] == before
    for article_id in ("x/related.html", "x/related"):
        encoded = article_id.replace("/", "%2F")
        assert client.put(f"/v1/articles/{encoded}", json={"title": "t"}, headers=AUTH).status_code == 200
        html = html_list(client, f"/v1/articles/{encoded}/related.html")
        assert html.attrs["data-article-id"] == article_id
        assert client.delete(f"/v1/articles/{encoded}", headers=AUTH).status_code == 200
    batch = {"upsert": [{"id": "x/related.html", "title": "t"}]}
    assert client.post("/v1/articles/batch", json=batch, headers=AUTH).status_code == 200
    assert client.get("/v1/articles/x%2Frelated.html").json()["id"] == "x/related.html"


def test_html_lists_are_cached_and_follow_writes(client: TestClient) -> None:
    cache = client.app.state.lists  # type: ignore[attr-defined]
    first = client.get("/v1/articles/a00/related.html", params={"k": 6})
    hits = cache.hits
    again = client.get("/v1/articles/a00/related.html", params={"k": 6}, headers={"Origin": ORIGIN})
    assert cache.hits == hits + 1
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["content-security-policy"] == first.headers["content-security-policy"]
    assert again.headers["access-control-allow-origin"] == ORIGIN  # a cached answer has CORS too
    assert again.headers["cache-control"] == "no-store"
    listed = card_ids(parse(first.text).find("aside"))
    assert client.delete(f"/v1/articles/{listed[0]}", headers=AUTH).status_code == 200
    after = card_ids(html_list(client, "/v1/articles/a00/related.html", k=6))
    assert listed[0] not in after
    assert after == [
        r["id"] for r in client.get("/v1/articles/a00/related", params={"k": 6}).json()["related"]
    ]
    json_body = client.get("/v1/articles/a00/related", params={"k": 6})
    assert json_body.headers["content-type"] == "application/json"  # the two kinds stay apart


def test_the_html_list_by_url(client: TestClient) -> None:
    by_url = client.get(
        "/v1/related.html", params={"url": "https://NEWS.example.com/world/a00/?utm_x=1", "k": 3}
    )
    by_id = client.get("/v1/articles/a00/related.html", params={"k": 3})
    assert by_url.status_code == 200
    assert card_ids(parse(by_url.text).find("aside")) == card_ids(parse(by_id.text).find("aside"))


def test_the_widget_script(client: TestClient) -> None:
    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.headers["cache-control"] == "public, max-age=3600"
    assert 'credentials: "omit"' in script.text
    etag = script.headers["etag"]
    assert etag.startswith('"0.') and len(etag) > 10
    unchanged = client.get("/widget.js", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert client.get("/widget.js", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.head("/widget.js").headers["etag"] == etag


def test_the_console_is_off_by_default(client: TestClient, settings: Settings) -> None:
    assert client.get("/").status_code == 404
    assert client.get("/console/console.js").status_code == 404
    with TestClient(
        create_app(settings.model_copy(update={"console": True}), fake_signals(HashingEncoder()))
    ) as on:
        page = on.get("/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        tree = parse(page.text)
        assert tree.find("form").attrs["role"] == "search"
        assert tree.find("script").attrs["src"] == "/console/console.js"
        assert on.get("/console/console.js").headers["content-type"] == "text/javascript; charset=utf-8"
        assert on.get("/console/console.css").headers["content-type"] == "text/css; charset=utf-8"
        assert on.get("/console/other.js").status_code == 404
