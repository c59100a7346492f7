"""A related list's candidates as arrays, and the identities the reprint test compares."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embeddings.index.columns import Columns, content_key, title_hash
from embeddings.ranking.listing import Origin
from embeddings.ranking.reprints import NO_SIGNATURE


@dataclass(frozen=True)
class Identities:
    """What the reprint test compares, for a group of articles: content and title keys, signatures."""

    contents: np.ndarray
    titles: np.ndarray
    signatures: np.ndarray

    def take(self, positions: list[int]) -> Identities:
        """The identities at `positions`."""
        return Identities(self.contents[positions], self.titles[positions], self.signatures[positions])

    @classmethod
    def of_origin(cls, origin: Origin) -> Identities:
        """The query's identity (what it lacks never matches)."""
        signature = NO_SIGNATURE if origin.signature is None else origin.signature
        return cls(
            np.array([content_key(origin.content_hash or "")]),
            np.array([title_hash(origin.title or "")]),
            signature[None, :],
        )


@dataclass(frozen=True)
class Pool:
    """Candidates as arrays, nearest first: row ids, ranking columns, reprint signatures, which of
    them the lexical search added (past the dense nearest), and which fill in from other languages."""

    rowids: np.ndarray
    columns: Columns
    signatures: np.ndarray
    lexical: np.ndarray  # bool
    # What a write can change: the rows the pool was drawn from (the query's copies included), and
    # the main cosine an article needs to enter it (-inf: any article that passes the filters).
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reach: float = -np.inf
    other: np.ndarray | None = None  # bool; None: none of them

    @classmethod
    def empty(cls) -> Pool:
        """No candidates: any article that passes the filters may enter."""
        return cls(
            np.zeros(0, dtype=np.int64),
            Columns.empty(0),
            np.zeros((0, len(NO_SIGNATURE)), dtype=NO_SIGNATURE.dtype),
            np.zeros(0, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.rowids)

    def fills(self) -> np.ndarray:
        """Which candidates are from other languages, listed only after the reader's (bool)."""
        return np.zeros(len(self), dtype=bool) if self.other is None else self.other

    def take(self, positions: np.ndarray | slice) -> Pool:
        """The candidates at `positions` (drawn from the same rows, with the same reach)."""
        return Pool(
            self.rowids[positions],
            self.columns.take(positions),
            self.signatures[positions],
            self.lexical[positions],
            self.seen,
            self.reach,
            None if self.other is None else self.other[positions],
        )

    def then(self, fill: Pool) -> Pool:
        """This pool followed by `fill`, candidates from other languages: drawn from the rows of both,
        an article enters it at the lower reach."""
        return Pool(
            np.concatenate([self.rowids, fill.rowids]),
            Columns.concat([self.columns, fill.columns]),
            np.concatenate([self.signatures, fill.signatures]),
            np.concatenate([self.lexical, fill.lexical]),
            np.concatenate([self.seen, fill.seen]),
            min(self.reach, fill.reach),
            np.concatenate([self.fills(), np.ones(len(fill), dtype=bool)]),
        )

    def identities(self) -> Identities:
        """The candidates' identities."""
        return Identities(self.columns.content, self.columns.title, self.signatures)
