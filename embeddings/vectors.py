"""What names and identifies an article's vectors: the signals, and the model spec stamped in bundles.

Shared by the part that makes vectors (`model/`), the part that stores them (`index/`) and the part
that ranks with them (`ranking/`), none of which imports another for these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAIN = "main"  # the signal FAISS indexes; it retrieves the candidates
HEAD = "head"
USE = "use"
SIGNALS = (MAIN, HEAD, USE)  # the embeddings: each made by an encoder
LEX = "lex"  # the lexical signal: sparse TF-IDF rows, weighted by the bundle's own corpus


@dataclass(frozen=True)
class ModelSpec:
    """What identifies the embeddings a model produces; stamped in every bundle."""

    name: str
    dimension: int
    max_seq_length: int
    text_prefix: str

    def as_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready mapping."""
        return {
            "name": self.name,
            "dimension": self.dimension,
            "max_seq_length": self.max_seq_length,
            "text_prefix": self.text_prefix,
        }
