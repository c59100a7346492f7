"""Editorial rules of one article's list: pinned articles lead it in their order, blocked ones never show."""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_PINS = 10
MAX_BLOCKS = 1000


@dataclass(frozen=True)
class Rules:
    """The pins (in order) and blocks of one article's list; both empty: no rules."""

    pin: tuple[str, ...] = ()
    block: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pin or self.block)

    def to_json(self) -> str:
        """The rules as the write log and the bundle store them."""
        return json.dumps({"pin": list(self.pin), "block": list(self.block)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Rules:
        """Rules from `to_json`'s text."""
        data = json.loads(text)
        return cls(tuple(data.get("pin", ())), tuple(data.get("block", ())))
