"""A small corpus of one story (and two others), built with the hashing encoder, and a linear scorer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from embeddings.ranking.scorer import Curve, ScorerConfig, SignalTerm
from embeddings.settings import Settings
from embeddings.vectors import MAIN
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder

DAY = datetime(2026, 3, 1, 9, tzinfo=UTC)
STRIKE = "Dockers at Sabeel harbour walk out over pay, halting the port."


def _row(ident: str, title: str, body: str, lang: str, day: int | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": ident, "title": title, "body": body, "lang": lang, **extra}
    if day is not None:
        row["published_at"] = (DAY + timedelta(days=day)).isoformat()
    return row


# One story (a wire report, a newspaper's reprint of it, follow-ups; one undated, one never listed)
# and two others. Hashing cosines: 0.89-0.93 within the story, at most 0.66 across.
ROWS = [
    _row("s-reprint", "Dockers strike at Sabeel harbour", STRIKE, "ar", 2),
    _row(
        "s-fr",
        "Dockers strike at Sabeel harbour enters second day",
        "Dockers at Sabeel harbour stay out over pay; the port is halted.",
        "fr",
        3,
    ),
    _row("s-wire", "Dockers strike at Sabeel harbour", STRIKE, "en", 1),
    _row(
        "s-undated",
        "Sabeel harbour dockers strike: talks",
        "Talks with dockers at Sabeel harbour over pay and the halted port.",
        "en",
        None,
    ),
    _row(
        "s-hidden",
        "Sabeel harbour dockers strike ends",
        "Dockers at Sabeel harbour end their walk out over pay; the port reopens.",
        "ar",
        4,
        listed=False,
    ),
    _row(
        "o-bank",
        "Central bank cuts its key interest rate",
        "The central bank lowered rates by half a point on Tuesday.",
        "en",
        2,
    ),
    _row(
        "o-cup",
        "Najm win the federation cup final",
        "Najm beat Sahil two goals to one in the cup final.",
        "ar",
        3,
    ),
]
STORY = {"s-reprint", "s-fr", "s-wire", "s-undated", "s-hidden"}


def linear_scorer(story_threshold: float | None = 0.5) -> ScorerConfig:
    """Relatedness rising from 0 at a main cosine of 0.7 to 1 at 0.95 (the hashing encoder's range)."""
    curve = Curve(x=[0.7, 0.95], y=[0.0, 1.0])
    return ScorerConfig(
        name="linear-main",
        signals={MAIN: SignalTerm(mean=0.8, std=0.1, weight=1.0, curve=curve)},
        story_threshold=story_threshold,
    )


def build_story_corpus(root: Path) -> Path:
    """A bundles directory holding ROWS, built with the hashing encoder."""
    bundles = root / "bundles"
    build_with(
        Settings(bundles=bundles, cache_dir=root / "cache"),
        write_jsonl(root / "a.jsonl", ROWS),
        HashingEncoder(),
    )
    return bundles
