"""The fault suite: defects an operator or an attacker could cause, each run against a real server.

Run by `tests/service/test_faults.py` (the fast cases) and by `python -m benchmarks.faults` (all, a table).
"""

from __future__ import annotations

import importlib

from tests.support.faults.harness import Case

MODULES = ("write_log_cases", "http_cases", "request_cases")
POSTGRESQL_MODULES = ("replica_cases",)  # each makes a throwaway PostgreSQL cluster


def cases(include_slow: bool, postgresql: bool = True) -> list[Case]:
    """Every case of the suite's modules (the slow ones too with `include_slow`)."""
    out: list[Case] = []
    for name in MODULES + (POSTGRESQL_MODULES if postgresql else ()):
        module = importlib.import_module(f"tests.support.faults.{name}")
        out += module.CASES
        if include_slow:
            out += getattr(module, "SLOW_CASES", [])
    return out
