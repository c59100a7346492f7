"""docs/settings.md: generated from the settings class, and never stale."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.settings import Settings
from embeddings.settings_doc import render

DOC = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_docs_settings_md_is_current() -> None:
    written = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert written == render(), "docs/settings.md is stale: run `make docs` and commit it"


def test_every_setting_has_its_row() -> None:
    rows = [line for line in render().splitlines() if line.startswith("| `RELATED_")]
    assert [row.split("`")[1] for row in rows] == [
        f"RELATED_{name.upper()}" for name in Settings.model_fields
    ]


class Example(BaseSettings):
    """A settings class of each kind of field the renderer meets."""

    model_config = SettingsConfigDict(env_prefix="EX_")

    mode: Literal["fast", "exact"] = Field("fast", description="How | it runs.")
    limit: int | None = Field(None, ge=1, le=50, description="At most this many; unset: no limit.")
    keys: list[str] = Field(default_factory=list, description="Keys, comma-separated.")
    on: bool = Field(False, description="Whether.")


def test_a_row_gives_variable_type_bounds_default_and_meaning() -> None:
    rows = [line for line in render(Example).splitlines() if line.startswith("| `EX_")]
    assert rows == [
        r"| `EX_MODE` | one of `fast`, `exact` | `fast` | How \| it runs. |",
        "| `EX_LIMIT` | integer, >= 1, <= 50 | *unset* | At most this many; unset: no limit. |",
        "| `EX_KEYS` | list of text | *none* | Keys, comma-separated. |",
        "| `EX_ON` | boolean | `false` | Whether. |",
    ]


def test_a_setting_without_a_description_is_refused() -> None:
    class Undocumented(BaseSettings):
        size: int = 3

    with pytest.raises(ValueError, match=r"Undocumented\.size has no description"):
        render(Undocumented)
