"""The bundles directory: loading the published bundle, atomic publication, pruning, the build lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from embeddings.errors import BuildLockedError, BundleNotFoundError
from embeddings.index.publish import build_lock, load_current
from embeddings.settings import Settings
from tests.support.corpus import NUMBERED_ROWS, build_with, live_dir, write_jsonl
from tests.support.fakes import HashingEncoder


def test_load_current(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    loaded = load_current(settings.bundles, encoder.spec)
    assert len(loaded.index) == len(loaded.store) == 12
    assert loaded.manifest["model"] == encoder.spec.as_dict()


def test_nothing_published(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="no bundle published"):
        load_current(tmp_path)


def test_publish_swaps_the_link_and_prune_keeps_the_live_one(
    tmp_path: Path, built: tuple[Settings, HashingEncoder], make_settings: Callable[..., Settings]
) -> None:
    settings, encoder = built
    source = write_jsonl(tmp_path / "b.jsonl", NUMBERED_ROWS[:5])
    for _ in range(3):
        build_with(settings, source, encoder)
    versions = sorted(p.name for p in (settings.bundles / "versions").iterdir())
    assert len(versions) == settings.keep_bundles
    live = live_dir(settings)
    assert live.name == versions[-1]
    assert (settings.bundles / "current").readlink().as_posix() == f"versions/{live.name}"
    assert len(load_current(settings.bundles, encoder.spec).store) == 5


def test_build_lock_is_exclusive(tmp_path: Path) -> None:
    with build_lock(tmp_path), pytest.raises(BuildLockedError), build_lock(tmp_path):
        pass
