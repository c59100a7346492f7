"""Publishing bundles: staging, the manifest's checksums, the atomic `current` link, pruning, the build lock.

Layout of a bundles directory::

    current -> versions/<version>      symlink, replaced atomically on publish
    versions/<version>/                index.faiss, articles.sqlite, signal-<name>.npy, reprints.npy,
                                       neighbours.npy, keys.npy, manifest.json (index/bundle.py)
    versions/.tmp-<version>/           a build in progress (never read by the service)
    build.lock                         held by the running build

A bundle is written in full under a temporary name, checked, renamed into `versions/`, and only
then does `current` move, by renaming a new symlink over the old one: readers see the old bundle
or the new one, never a half-written one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embeddings.errors import BuildLockedError, BundleNotFoundError
from embeddings.index.bundle import FORMAT_VERSION, MANIFEST_FILE, Bundle, file_sha256, load_bundle
from embeddings.vectors import ModelSpec

CURRENT = "current"
VERSIONS = "versions"
TMP_PREFIX = ".tmp-"


def new_version() -> str:
    """A sortable, unique version name: UTC time plus a short random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]


def current_target(bundles: Path) -> Path | None:
    """The version directory `current` points to, or None when nothing is published."""
    link = bundles / CURRENT
    if not link.is_symlink():
        return None
    return (bundles / link.readlink()).resolve()


def load_current(
    bundles: Path, expected: ModelSpec | None = None, signals: dict[str, dict[str, Any]] | None = None
) -> Bundle:
    """Load the published bundle of `bundles`."""
    target = current_target(bundles)
    if target is None:
        raise BundleNotFoundError(f"no bundle published in {bundles} (run `related-articles build`)")
    return load_bundle(target, expected, signals=signals)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def build_lock(bundles: Path) -> Iterator[None]:
    """Hold the bundles directory's build lock, or raise BuildLockedError."""
    bundles.mkdir(parents=True, exist_ok=True)
    with (bundles / "build.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildLockedError(f"another build of {bundles} is running") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def staging_dir(bundles: Path, version: str) -> Path:
    """Create and return the temporary directory a new bundle is written into."""
    path = bundles / VERSIONS / f"{TMP_PREFIX}{version}"
    path.mkdir(parents=True)
    return path


def finalize(staging: Path, manifest: dict[str, Any]) -> Path:
    """Stamp file sizes and checksums in the manifest, write it, fsync, and move the bundle into place."""
    manifest = {**manifest, "format_version": FORMAT_VERSION}
    names = sorted(p.name for p in staging.iterdir() if p.is_file())
    manifest["files"] = {
        name: {"bytes": (staging / name).stat().st_size, "sha256": file_sha256(staging / name)}
        for name in names
    }
    tmp_manifest = staging / (MANIFEST_FILE + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp_manifest.rename(staging / MANIFEST_FILE)
    for name in (*names, MANIFEST_FILE):
        with (staging / name).open("rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(staging)
    final = staging.parent / str(manifest["version"])
    staging.rename(final)
    _fsync_dir(staging.parent)
    return final


def publish(bundles: Path, version_dir: Path) -> None:
    """Point `current` at `version_dir` atomically (rename of a fresh symlink over the old one)."""
    link = bundles / CURRENT
    tmp = bundles / f".{CURRENT}-{uuid.uuid4().hex}"
    tmp.symlink_to(os.path.relpath(version_dir, bundles))
    tmp.replace(link)
    _fsync_dir(bundles)


def prune(bundles: Path, keep: int) -> list[Path]:
    """Remove old versions beyond the newest `keep` (never the published one) and stale staging dirs."""
    versions = bundles / VERSIONS
    if not versions.is_dir():
        return []
    live = current_target(bundles)
    finished = sorted(p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(TMP_PREFIX))
    doomed = [p for p in finished[:-keep] if p.resolve() != live]
    # Staging dirs are only ever left by a build that died: the caller holds the build lock.
    doomed += [p for p in versions.iterdir() if p.name.startswith(TMP_PREFIX)]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed
