"""Fixtures of the index tests: a small bundle built with the hashing encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embeddings.index.publish import current_target
from embeddings.settings import Settings
from tests.conftest import build_with, write_jsonl
from tests.fakes import HashingEncoder

ROWS = [
    {"id": f"n{i}", "title": f"headline number {i} about topic {i % 3}", "body": "text"} for i in range(12)
]


@pytest.fixture
def built(tmp_path: Path, make_settings: Callable[..., Settings]) -> tuple[Settings, HashingEncoder]:
    settings = make_settings()
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(tmp_path / "a.jsonl", ROWS), encoder)
    return settings, encoder


def live_dir(settings: Settings) -> Path:
    """The version directory the bundles directory of `settings` publishes."""
    target = current_target(settings.bundles)
    assert target is not None
    return target
