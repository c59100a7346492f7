"""Test corpora and builds: rows on four topics, JSONL files, a build with already loaded encoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from embeddings.build.rebuild import BuildReport, build_bundle
from embeddings.index.publish import current_target
from embeddings.model.signals import SignalEncoders
from embeddings.settings import Settings
from tests.support.fakes import HashingEncoder, fake_signals


def build_with(
    settings: Settings, source: Path, encoders: SignalEncoders | HashingEncoder, **kwargs: Any
) -> BuildReport:
    """Run a build with already loaded encoders (a hashing encoder stands for every signal)."""
    loaded = fake_signals(encoders) if isinstance(encoders, HashingEncoder) else encoders
    return build_bundle(settings, source, lambda: loaded, progress=False, **kwargs)


def write_jsonl(path: Path, rows: list[dict[str, Any]] | list[str]) -> Path:
    """Write rows (dicts as JSON, strings as they are) one per line."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def live_dir(settings: Settings) -> Path:
    """The version directory the bundles directory of `settings` publishes."""
    target = current_target(settings.bundles)
    assert target is not None
    return target


TOPICS = ["harbour strike dockers", "central bank rates", "desert locust swarm", "football cup final"]


def corpus_rows(n: int = 24) -> list[dict[str, Any]]:
    """Articles on four topics, in three languages, some undated, over a month."""
    rows = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        row: dict[str, Any] = {
            "id": f"a{i:02d}",
            "title": f"{topic} report {i}",
            "body": f"{topic} {topic} update number {i} with details {i * 7}",
            "lang": ["ar", "en", "fr"][i % 3],
            "section": ["world", "economy"][i % 2],
        }
        if i % 5:
            row["published_at"] = (datetime(2026, 3, 1, 12, tzinfo=UTC) + timedelta(days=i)).isoformat()
        rows.append(row)
    return rows


# Twelve numbered headlines on three topics (the index tests' bundle).
NUMBERED_ROWS = [
    {"id": f"n{i}", "title": f"headline number {i} about topic {i % 3}", "body": "text"} for i in range(12)
]
