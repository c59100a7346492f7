"""Fixtures of the index tests: a small bundle built with the hashing encoder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embeddings.settings import Settings
from tests.support.corpus import NUMBERED_ROWS, build_with, write_jsonl
from tests.support.fakes import HashingEncoder


@pytest.fixture
def built(tmp_path: Path, make_settings: Callable[..., Settings]) -> tuple[Settings, HashingEncoder]:
    settings = make_settings()
    encoder = HashingEncoder()
    build_with(settings, write_jsonl(tmp_path / "a.jsonl", NUMBERED_ROWS), encoder)
    return settings, encoder
