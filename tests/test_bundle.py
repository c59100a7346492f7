"""Bundles: checks at load, refusal of mismatched or damaged ones, atomic publication, pruning."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from embeddings import bundle as bundles_mod
from embeddings.errors import BuildLockedError, BundleCorruptError, BundleMismatchError, BundleNotFoundError
from embeddings.model import ModelSpec
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


def test_load_current(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    loaded = bundles_mod.load_current(settings.bundles, encoder.spec)
    assert len(loaded.index) == len(loaded.store) == 12
    assert loaded.manifest["model"] == encoder.spec.as_dict()


def test_nothing_published(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="no bundle published"):
        bundles_mod.load_current(tmp_path)


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("another/model", 64, 256, ""),
        ModelSpec("test/hashing-trigrams", 128, 256, ""),
        ModelSpec("test/hashing-trigrams", 64, 256, "query: "),
    ],
)
def test_mismatched_model_is_refused(built: tuple[Settings, HashingEncoder], spec: ModelSpec) -> None:
    settings, _ = built
    with pytest.raises(BundleMismatchError, match="was built with"):
        bundles_mod.load_current(settings.bundles, spec)


def _live_dir(settings: Settings) -> Path:
    target = bundles_mod.current_target(settings.bundles)
    assert target is not None
    return target


def test_damaged_files_are_refused(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    live = _live_dir(settings)
    index_file = live / bundles_mod.INDEX_FILE
    original = index_file.read_bytes()
    data = bytearray(original)
    data[-10] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(BundleCorruptError, match="checksum"):
        bundles_mod.load_current(settings.bundles, encoder.spec)
    index_file.write_bytes(bytes(data[:-100]))
    with pytest.raises(BundleCorruptError, match="size"):
        bundles_mod.load_current(settings.bundles, encoder.spec)
    index_file.write_bytes(original)
    bundles_mod.load_current(settings.bundles, encoder.spec).close()
    (live / bundles_mod.STORE_FILE).unlink()
    with pytest.raises(BundleCorruptError, match="missing"):
        bundles_mod.load_current(settings.bundles, encoder.spec)


def test_bad_manifest_is_refused(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    manifest = _live_dir(settings) / bundles_mod.MANIFEST_FILE
    manifest.write_text("{truncated", encoding="utf-8")
    with pytest.raises(BundleCorruptError, match="unreadable manifest"):
        bundles_mod.load_current(settings.bundles, encoder.spec)
    manifest.write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(BundleCorruptError, match="format"):
        bundles_mod.load_current(settings.bundles, encoder.spec)


def test_publish_swaps_the_link_and_prune_keeps_the_live_one(
    tmp_path: Path, built: tuple[Settings, HashingEncoder], make_settings: Callable[..., Settings]
) -> None:
    settings, encoder = built
    source = write_jsonl(tmp_path / "b.jsonl", ROWS[:5])
    for _ in range(3):
        build_with(settings, source, encoder)
    versions = sorted(p.name for p in (settings.bundles / "versions").iterdir())
    assert len(versions) == settings.keep_bundles
    live = _live_dir(settings)
    assert live.name == versions[-1]
    assert (settings.bundles / "current").readlink().as_posix() == f"versions/{live.name}"
    assert len(bundles_mod.load_current(settings.bundles, encoder.spec).store) == 5


def test_build_lock_is_exclusive(tmp_path: Path) -> None:
    with bundles_mod.build_lock(tmp_path), pytest.raises(BuildLockedError), bundles_mod.build_lock(tmp_path):
        pass
