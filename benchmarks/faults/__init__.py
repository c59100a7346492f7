"""`python -m benchmarks.faults`: the fault suite's table (the cases live in `tests/support/faults`)."""
