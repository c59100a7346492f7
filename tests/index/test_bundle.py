"""One bundle: checks at load, refusal of mismatched or damaged ones."""

from __future__ import annotations

import json

import pytest

from embeddings.errors import BundleCorruptError, BundleMismatchError
from embeddings.index.bundle import INDEX_FILE, MANIFEST_FILE, STORE_FILE, load_bundle
from embeddings.index.publish import load_current
from embeddings.settings import Settings
from embeddings.vectors import ModelSpec
from tests.support.corpus import live_dir
from tests.support.fakes import HashingEncoder


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
        load_current(settings.bundles, spec)


def test_damaged_files_are_refused(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    live = live_dir(settings)
    index_file = live / INDEX_FILE
    original = index_file.read_bytes()
    data = bytearray(original)
    data[-10] ^= 0xFF
    index_file.write_bytes(bytes(data))
    with pytest.raises(BundleCorruptError, match="checksum"):
        load_current(settings.bundles, encoder.spec)
    index_file.write_bytes(bytes(data[:-100]))
    with pytest.raises(BundleCorruptError, match="size"):
        load_current(settings.bundles, encoder.spec)
    index_file.write_bytes(original)
    load_current(settings.bundles, encoder.spec).close()
    (live / STORE_FILE).unlink()
    with pytest.raises(BundleCorruptError, match="missing"):
        load_current(settings.bundles, encoder.spec)


def test_bad_manifest_is_refused(built: tuple[Settings, HashingEncoder]) -> None:
    settings, encoder = built
    manifest = live_dir(settings) / MANIFEST_FILE
    manifest.write_text("{truncated", encoding="utf-8")
    with pytest.raises(BundleCorruptError, match="unreadable manifest"):
        load_current(settings.bundles, encoder.spec)
    manifest.write_text(json.dumps({"format_version": 99}), encoding="utf-8")
    with pytest.raises(BundleCorruptError, match="format"):
        load_current(settings.bundles, encoder.spec)


def test_lexical_rows_are_loaded_only_when_asked(built: tuple[Settings, HashingEncoder]) -> None:
    settings, _ = built
    with_rows = load_bundle(live_dir(settings))
    without = load_bundle(live_dir(settings), lexical=False)
    try:
        assert with_rows.lexical is not None and len(with_rows.lexical) == len(with_rows)
        assert "lex" in with_rows.signal_names
        assert without.lexical is None and "lex" not in without.signal_names
    finally:
        with_rows.close()
        without.close()
    (live_dir(settings) / "lexical-indptr.npy").write_bytes(b"not an array")
    with pytest.raises(BundleCorruptError):
        load_bundle(live_dir(settings), verify=False)
