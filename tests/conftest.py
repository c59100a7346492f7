"""Shared fixtures: the real model (converted and loaded once per session), the sample bundle."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.pg_cluster import Cluster, unavailable
from embeddings.build.rebuild import BuildReport, build_bundle
from embeddings.cli import sample_corpus
from embeddings.model.encoders import SentenceTransformerEncoder, load_sentence_transformer
from embeddings.model.signals import SignalEncoders, signal_encoders
from embeddings.settings import Settings
from embeddings.vectors import SIGNALS
from tests.fakes import HashingEncoder, fake_signals

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache directory: the session converts the bundled model itself."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def encoder(model_cache: Path) -> SentenceTransformerEncoder:
    """The real default model, loaded once per session."""
    return load_sentence_transformer(Settings(cache_dir=model_cache))


@pytest.fixture(scope="session")
def encoders(encoder: SentenceTransformerEncoder) -> SignalEncoders:
    """Every signal's real encoder (e5, e5 over the head, multilingual USE), loaded once per session."""
    return signal_encoders(encoder, SIGNALS)


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, Any]]:
    """The shipped sample corpus, raw (with its `story` ground truth)."""
    with sample_corpus().open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture
def make_settings(tmp_path: Path, model_cache: Path) -> Callable[..., Settings]:
    """Settings rooted in this test's temp dir."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"bundles": tmp_path / "bundles", "cache_dir": model_cache, **overrides}
        return Settings(**values)

    return make


def build_with(
    settings: Settings, source: Path, encoders: SignalEncoders | HashingEncoder, **kwargs: Any
) -> BuildReport:
    """Run a build with already loaded encoders (a hashing encoder stands for every signal)."""
    loaded = fake_signals(encoders) if isinstance(encoders, HashingEncoder) else encoders
    return build_bundle(settings, source, lambda: loaded, progress=False, **kwargs)


@pytest.fixture(scope="session")
def sample_bundles(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, encoders: SignalEncoders
) -> Path:
    """A bundles directory with the sample corpus built by the real models (read-only for tests)."""
    bundles = tmp_path_factory.mktemp("sample") / "bundles"
    build_with(Settings(bundles=bundles, cache_dir=model_cache), sample_corpus(), encoders)
    return bundles


def write_jsonl(path: Path, rows: list[dict[str, Any]] | list[str]) -> Path:
    """Write rows (dicts as JSON, strings as they are) one per line."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason="shared data sets not present beside the checkout"
)


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


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster; skipped where none can be made, unless RELATED_REQUIRE_POSTGRESQL=1."""
    why = unavailable()
    if why:
        if os.environ.get("RELATED_REQUIRE_POSTGRESQL") == "1":  # .ci/run installs it: a skip there is a bug
            pytest.fail(why)
        pytest.skip(why)
    with Cluster() as cluster:
        yield cluster
