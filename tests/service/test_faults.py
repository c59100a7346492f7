"""The fault suite's fast cases, each against a real `related-articles serve` process (real model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.faults.__main__ import cases
from benchmarks.faults.harness import Case, Lab


@pytest.fixture(scope="module")
def lab(sample_bundles: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Servers on copies of the session's sample bundles (built with the torch backend)."""
    lab = Lab(sample_bundles, model_cache, tmp_path_factory.mktemp("faults"), {"RELATED_BACKEND": "torch"})
    yield lab
    lab.close()


@pytest.mark.parametrize("case", cases(include_slow=False), ids=lambda c: c.__name__)
def test_fault_case(lab: Lab, case: Case) -> None:
    result = case(lab)
    assert result.passed, f"{result.case}: expected {result.expected}, observed {result.observed}"
