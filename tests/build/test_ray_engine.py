"""The Ray engine: the same build on a local Ray instance gives the same bundle as one process."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.build import embed, rebuild
from embeddings.build.embed import ChunkEmbedder, local_embedder
from embeddings.build.ray_engine import RayEngine, join_uri
from embeddings.build.rebuild import build_bundle
from embeddings.cli import main as cli_main
from embeddings.cli import sample_corpus
from embeddings.errors import BuildError
from embeddings.index.bundle import MANIFEST_FILE, read_manifest
from embeddings.index.publish import current_target
from embeddings.model.encoders import Encoder
from embeddings.model.signals import load_signal_encoders
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings
from tests.support.fakes import HashingEncoder, fake_signals

pytest.importorskip("ray.data")

# Fields that name a build rather than describe its content.
PER_BUILD = {"version", "created_at", "build_seconds", "engine"}


def _files(bundles: Path) -> dict[str, str]:
    current = current_target(bundles)
    assert current is not None
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(current.iterdir())
        if f.name != MANIFEST_FILE
    }


def _manifest(bundles: Path) -> dict[str, Any]:
    current = current_target(bundles)
    assert current is not None
    return read_manifest(current)


@pytest.mark.slow
def test_a_ray_build_writes_the_same_bundle_as_a_local_one(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Small chunks, so that the 147 sample articles make ten chunks in three shards for two actors.
    monkeypatch.setattr(embed, "EMBED_CHUNK", 16)
    local = make_settings(bundles=tmp_path / "local")
    signals = load_scorer(local.scorer).dense  # what the command line builds
    build_bundle(local, sample_corpus(), lambda: load_signal_encoders(local, signals), progress=False)

    ray_bundles = tmp_path / "ray"
    stale = ray_bundles / "ray-work" / "20200101T000000000000Z-abcdef"  # left by a build that died
    stale.mkdir(parents=True)
    (ray_bundles / "ray-work" / "notes").mkdir()  # not a build's: kept
    code = cli_main(
        [
            "build",
            "--engine",
            "ray",
            "--bundles",
            str(ray_bundles),
            "--cache-dir",
            str(local.cache_dir),
            "--no-progress",
        ]
    )
    assert code == 0
    log = capfd.readouterr().err
    for signal in load_scorer(
        "default"
    ).dense:  # every signal went through Ray, in ten chunks and three shards
        assert re.search(rf"ray: signal {signal}: 10 chunks in 3 shards, embedded by [12] actors", log), log

    assert _files(ray_bundles) == _files(local.bundles)  # index, neighbours, every signal, store
    ray_manifest, local_manifest = _manifest(ray_bundles), _manifest(local.bundles)
    assert ray_manifest["engine"] == "ray" and local_manifest["engine"] == "local"
    assert {k: v for k, v in ray_manifest.items() if k not in PER_BUILD} == {
        k: v for k, v in local_manifest.items() if k not in PER_BUILD
    }
    assert ray_manifest["counts"]["embedded"] == 147
    assert [p.name for p in (ray_bundles / "ray-work").iterdir()] == ["notes"]  # the shards are gone


@pytest.mark.slow
def test_a_worker_with_another_model_fails_the_build_cleanly(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """An actor whose model differs from the driver's stops the build with a BuildError; the work
    directory is removed, and a Ray instance the process had joined before is left running."""
    import ray

    settings = make_settings(ray_work_dir=str(tmp_path / "work"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        with RayEngine(settings, "v1", progress=False) as engine:
            embed = engine.embedder("main", HashingEncoder())  # the workers load the real model
            with pytest.raises(BuildError, match="Ray engine failed on signal 'main'"):
                list(embed([["a text", "another"]]))
        assert ray.is_initialized()
        assert not (tmp_path / "work" / "v1").exists()
    finally:
        ray.shutdown()


def test_work_directories_join_paths_and_uris(tmp_path: Path) -> None:
    assert join_uri("s3://bucket/work?region=x", "v1", "in") == "s3://bucket/work/v1/in?region=x"
    assert join_uri(str(tmp_path), "v1") == str(tmp_path / "v1")
    assert Settings(ray_work_dir="relative/work").resolved_ray_work_dir() == str(
        Path("relative/work").resolve()
    )


class _Engine:
    """An engine that embeds locally but loses or mangles what `damage` says (for the driver's checks)."""

    def __init__(
        self, damage: Callable[[Iterator[tuple[int, np.ndarray]]], Iterator[tuple[int, np.ndarray]]]
    ):
        self._damage = damage

    def embedder(self, signal: str, encoder: Encoder) -> ChunkEmbedder:
        def embed(chunks: Iterable[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
            return self._damage(local_embedder(encoder, 8)(chunks))

        return embed


def _drop_last(results: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    items = list(results)
    yield from items[:-1]


def _cut_rows(results: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    for number, vectors in results:
        yield number, vectors[:-1]


@pytest.mark.parametrize(("damage", "message"), [(_drop_last, "without a vector"), (_cut_rows, "shape")])
def test_a_build_fails_when_its_engine_loses_vectors(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[Iterator[tuple[int, np.ndarray]]], Iterator[tuple[int, np.ndarray]]],
    message: str,
) -> None:
    monkeypatch.setattr(embed, "EMBED_CHUNK", 16)
    engine = _Engine(damage)

    @contextlib.contextmanager
    def with_engine(settings: Settings, version: str, progress: bool) -> Iterator[_Engine]:
        yield engine

    monkeypatch.setattr(rebuild, "_engine", with_engine)
    settings = make_settings()
    encoders = fake_signals(HashingEncoder())
    with pytest.raises(BuildError, match=message):
        build_bundle(settings, sample_corpus(), lambda: encoders, progress=False)
    assert not settings.bundles.joinpath("current").exists()


def test_ray_client_addresses_are_refused(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(engine="ray", ray_address="ray://head:10001")
    with RayEngine(settings, "v1", progress=False) as engine, pytest.raises(BuildError, match="ray://"):
        list(engine.embedder("main", HashingEncoder())([["a text"]]))
