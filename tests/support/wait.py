"""Waiting on observable state with a deadline, never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL = 0.02  # seconds between two looks


def poll(check: Callable[[], T], timeout: float) -> T:
    """The first true value of `check()`, looked at every POLL seconds; its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(POLL)


def wait_for(check: Callable[[], T], timeout: float = 30.0, what: str = "the condition") -> T:
    """The first true value of `check()`; AssertionError naming `what` after `timeout`."""
    value = poll(check, timeout)
    if not value:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
    return value
