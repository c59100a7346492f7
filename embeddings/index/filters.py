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
    # The list policies': none of these languages (articles without one pass), and a date window
    # that undated articles pass.
    except_langs: tuple[str, ...] = ()
    window: tuple[float, float] | None = None  # epoch seconds, inclusive

    def active(self) -> bool:
        """Whether any filter restricts the candidates."""
        return bool(
            self.langs or self.sections or self.since or self.until or self.except_langs or self.window
        )
