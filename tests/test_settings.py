"""Settings: environment prefix and validation (their documentation: tests/test_settings_doc.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from embeddings.settings import Settings, load_settings


def test_environment_prefix_and_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RELATED_PORT", "9123")
    monkeypatch.setenv("RELATED_BUNDLES", str(tmp_path))
    monkeypatch.setenv("RELATED_SKIP_INVALID", "true")
    settings = load_settings(port=None, host="0.0.0.0")
    assert (settings.port, settings.bundles, settings.skip_invalid, settings.host) == (
        9123,
        tmp_path,
        True,
        "0.0.0.0",
    )
    assert settings.resolved_embedding_cache() == tmp_path / "embedding-cache.sqlite"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELATED_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()
    with pytest.raises(ValidationError, match="log level"):
        Settings(port=1, log_level="loud")
    with pytest.raises(ValidationError):
        Settings(port=1, colour="red")  # type: ignore[call-arg]


def test_window_can_be_turned_off_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELATED_WINDOW_DAYS", "none")
    assert Settings().window_days is None
    monkeypatch.setenv("RELATED_WINDOW_DAYS", "30")
    assert Settings().window_days == 30.0
