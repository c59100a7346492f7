"""Filters: which articles may appear in a list (the store selects them in SQL, the columns in numpy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Filters:
    """Which articles may appear in a list."""

    langs: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    # The list policies': only this language, and a date window that undated articles pass.
    same_lang: str | None = None
    window: tuple[float, float] | None = None  # epoch seconds, inclusive

    def active(self) -> bool:
        """Whether any filter restricts the candidates."""
        return bool(self.langs or self.sections or self.since or self.until or self.same_lang or self.window)
