"""What text of an article is embedded."""

from __future__ import annotations


def article_text(title: str, body: str | None) -> str:
    """Title, then body, as one text (the model's prefix is added by the encoder)."""
    title = title.strip()
    body = (body or "").strip()
    return f"{title}\n{body}" if body else title
