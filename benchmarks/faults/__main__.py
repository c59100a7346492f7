"""Run the fault suite against real servers and print one line per case: case, expected, observed.

    python -m benchmarks.faults --bundles var/bundles [--all] [--only SUBSTRING]

The bundles directory is copied (never changed); every case runs on a private copy. The cases are in
`tests/support/faults` (the tests run the fast ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tests.support.faults import cases
from tests.support.faults.harness import Case, Lab, Outcome
from tests.support.pg_cluster import unavailable


def run(lab: Lab, selected: list[Case]) -> list[Outcome]:
    """Run `selected` one after another; a case that raises is a failed line, not a stop."""
    results = []
    for case in selected:
        try:
            result = case(lab)
        except Exception as exc:  # a broken case must still leave its line in the table
            result = Outcome(case.__name__, "(case ran)", f"{type(exc).__name__}: {exc}"[:300], False)
        results.append(result)
        mark = "ok  " if result.passed else "FAIL"
        print(f"{mark} | {result.case} | {result.expected} | {result.observed}")
        sys.stdout.flush()
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bundles", type=Path, required=True, help="a built bundles directory (copied)")
    parser.add_argument("--cache-dir", type=Path, help="RELATED_CACHE_DIR of the servers")
    parser.add_argument("--all", action="store_true", help="also the slow cases (timeouts, big headers)")
    parser.add_argument("--only", help="only cases whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    from embeddings.settings import Settings

    cache_dir = args.cache_dir or Settings().cache_dir
    why = unavailable()
    if why:
        print(f"skipping the cases that need PostgreSQL: {why}")
    selected = [c for c in cases(args.all, not why) if not args.only or args.only in c.__name__]
    lab = Lab(args.bundles, cache_dir)
    try:
        results = run(lab, selected)
    finally:
        lab.close()
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2) + "\n", encoding="utf-8")
    failed = [r.case for r in results if not r.passed]
    print(f"{len(results) - len(failed)} of {len(results)} cases as expected")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
