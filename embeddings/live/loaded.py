"""What a request reads: one snapshot (a bundle and the writes over it) with its finder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embeddings.errors import BundleMismatchError
from embeddings.index.bundle import Bundle
from embeddings.live.overlay import Snapshot
from embeddings.model.lexical import LexicalModel
from embeddings.ranking.finder import RelatedFinder


@dataclass(frozen=True)
class Loaded:
    """One snapshot (a bundle and the writes over it) with its finder; a request holds it throughout."""

    finder: RelatedFinder
    snapshot: Snapshot
    target: Path
    loaded_at: datetime

    @property
    def bundle(self) -> Bundle:
        """The bundle under the snapshot."""
        return self.snapshot.bundle

    def lexical_model(self) -> LexicalModel:
        """The bundle's lexical model (its IDF), which weighs a text's lexical row."""
        model = self.snapshot.lexical_model
        if model is None:
            raise BundleMismatchError(f"bundle {self.bundle.version} has no lexical signal: rebuild it")
        return model
