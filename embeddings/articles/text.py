"""What text of an article is embedded."""

from __future__ import annotations

import hashlib


def article_text(title: str, body: str | None) -> str:
    """Title, then body, as one text (the model's prefix is added by the encoder)."""
    title = title.strip()
    body = (body or "").strip()
    return f"{title}\n{body}" if body else title


def content_hash(title: str, body: str | None) -> str:
    """SHA-256 of what is embedded, the embedding cache's key and the mark of an exact copy."""
    return hashlib.sha256(article_text(title, body).encode()).hexdigest()
