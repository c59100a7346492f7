"""The fault suite's fast cases against real `related-articles serve` processes, model and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faults import cases, replica_cases
from tests.support.faults.harness import Case, Lab
from tests.support.pg_cluster import Cluster

pytestmark = pytest.mark.server  # `related-articles serve` processes


@pytest.fixture(scope="module")
def lab(sample_bundles: Path, model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Servers on copies of the session's sample bundles (built with the torch backend)."""
    lab = Lab(sample_bundles, model_cache, tmp_path_factory.mktemp("faults"), {"RELATED_BACKEND": "torch"})
    yield lab
    lab.close()


@pytest.mark.parametrize("case", cases(include_slow=False, postgresql=False), ids=lambda c: c.__name__)
def test_fault_case(lab: Lab, case: Case) -> None:
    result = case(lab)
    assert result.passed, f"{result.case}: expected {result.expected}, observed {result.observed}"


@pytest.mark.parametrize("case", replica_cases.CASES, ids=lambda c: c.__name__)
def test_replica_case(lab: Lab, postgresql: Cluster, case: Case) -> None:
    lab.cluster = postgresql  # the session's cluster (a skip, with its reason, where none can be made)
    result = case(lab)
    assert result.passed, f"{result.case}: expected {result.expected}, observed {result.observed}"
