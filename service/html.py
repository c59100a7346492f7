"""HTML of a related list: cards in each article's language and direction, every value escaped by Jinja2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from embeddings.articles.urls import is_web_url
from service.schemas import RelatedItem, RelatedResponse

if TYPE_CHECKING:
    from jinja2 import Environment

# The list's heading and its empty state, in the query article's language (English otherwise).
HEADINGS = {
    "ar": ("مقالات ذات صلة", "لا توجد مقالات ذات صلة."),
    "de": ("Ähnliche Artikel", "Keine ähnlichen Artikel."),
    "en": ("Related articles", "No related articles."),
    "es": ("Artículos relacionados", "No hay artículos relacionados."),
    "fa": ("مطالب مرتبط", "مطلب مرتبطی نیست."),
    "fr": ("Articles liés", "Aucun article lié."),
    "he": ("כתבות קשורות", "אין כתבות קשורות."),
    "tr": ("İlgili haberler", "İlgili haber yok."),
    "ur": ("متعلقہ مضامین", "کوئی متعلقہ مضمون نہیں۔"),
}
# Right-to-left scripts, for codes Babel has no locale of.
RTL = frozenset({"ar", "dv", "fa", "he", "iw", "ks", "ps", "sd", "ug", "ur", "yi"})


@dataclass(frozen=True)
class Card:
    """One related article as the HTML shows it."""

    id: str
    title: str
    href: str | None  # only http(s): a `javascript:` url stored by a writer is never a link
    image: str | None
    lang: str | None
    dir: str
    date: str
    date_iso: str | None
    section: str | None
    other_language: str | None = None  # its language's name, for an entry filling in from another language


@cache
def _locale_direction(lang: str) -> str | None:
    from babel import Locale, UnknownLocaleError

    try:
        return "rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr"
    except (UnknownLocaleError, ValueError):
        return None


def direction(lang: str | None) -> str:
    """'rtl' or 'ltr' for a language code, 'auto' (the browser looks at the text) without one."""
    if not lang:
        return "auto"
    return _locale_direction(lang) or ("rtl" if lang in RTL else "ltr")


def written_date(value: datetime | None, lang: str | None) -> str:
    """The day of `value` in its own zone, as `lang` writes it (Babel: '3 مارس 2026', 'March 3, 2026')."""
    if value is None:
        return ""
    from babel import UnknownLocaleError
    from babel.dates import format_date

    try:
        return str(format_date(value.date(), format="long", locale=lang or "en"))
    except (UnknownLocaleError, ValueError):
        return value.date().isoformat()


@cache
def environment() -> Environment:
    """The templates, autoescaped (made once, at the first page)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("service", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def asset(name: str) -> str:
    """A file of service/static, as text."""
    return (files("service") / "static" / name).read_text(encoding="utf-8")


def language_name(code: str | None, reader: str | None) -> str:
    """The name of the language `code` in the language `reader` (Babel: 'الإنجليزية'), else the code."""
    if not code:
        return "?"
    from babel import Locale, UnknownLocaleError

    try:
        name = Locale.parse(code).get_display_name(reader or "en")
    except (UnknownLocaleError, ValueError):
        return code
    return str(name) if name else code


def card(item: RelatedItem, reader: str | None = None) -> Card:
    """The card of one item of a list's JSON answer; `reader`: the list's language."""
    url, image, when = item.url, item.image_url, item.published_at
    return Card(
        id=item.id,
        title=item.title,
        href=url if url and is_web_url(url) else None,
        image=image if image and is_web_url(image) else None,
        lang=item.lang,
        dir=direction(item.lang),
        date=written_date(when, item.lang),
        date_iso=when.isoformat() if when else None,
        section=item.section,
        other_language=language_name(item.lang, reader) if item.other_language else None,
    )


def render_list(response: RelatedResponse, lang: str | None) -> str:
    """The standalone HTML document of a related list; `lang` is the query article's language."""
    from markupsafe import Markup

    assert response.article is not None
    heading, empty = HEADINGS.get(lang or "", HEADINGS["en"])
    return (
        environment()
        .get_template("related.html")
        .render(
            lang=lang or "",
            dir=direction(lang),
            heading=heading,
            empty=empty,
            title=response.article.title,
            article_id=response.article.id,
            bundle=response.bundle,
            css=Markup(asset("related.css")),
            cards=[card(item, lang) for item in response.related],
        )
    )
