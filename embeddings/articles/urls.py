"""Canonical article URLs: two addresses of one page compare equal once tracking and spelling are gone."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that say who sent the reader, never which page it is (utm_* and the ad click ids of
# Google, Meta, Microsoft, Yandex, X, TikTok, LinkedIn, Mailchimp, HubSpot, Matomo, Piwik, Adobe).
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_")
_CLICK_IDS = "fbclid gclid gclsrc dclid gbraid wbraid msclkid yclid twclid ttclid li_fat_id igshid mc_cid"
TRACKING = frozenset(f"{_CLICK_IDS} mc_eid _ga _gl _hsenc _hsmi s_cid ref_src ocid cmpid".split(" "))
_WEB = re.compile(r"^https?://", re.IGNORECASE)


def is_web_url(value: str) -> bool:
    """Whether `value` starts as an absolute http:// or https:// address."""
    return bool(_WEB.match(value.strip()))


def _tracking(name: str) -> bool:
    name = name.lower()
    return name in TRACKING or name.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """`url` with scheme and host lower-cased, the default port, fragment and tracking parameters
    dropped, a trailing slash cut, percent-encoding normalized and query parameters sorted.

    What cannot be parsed as a URL is returned stripped, to be compared as it is.
    """
    from w3lib.url import canonicalize_url

    text = url.strip()
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a bad port or IPv6 host
        return text
    if not scheme or not host:
        return text
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _tracking(k)]
    # w3lib normalizes the percent-encoding of path and query and sorts the parameters.
    canonical = canonicalize_url(urlunsplit((scheme, netloc, parts.path, urlencode(query), "")))
    scheme, netloc, path, query_text, _ = urlsplit(canonical)
    return urlunsplit((scheme, netloc, path.rstrip("/"), query_text, "")) or text


def url_key(url: str) -> int:
    """A 64-bit signed hash of the canonical form of `url`, to look URLs up in a sorted array."""
    digest = hashlib.blake2b(canonical_url(url).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)
