"""A deterministic fake encoder for pure index and API logic tests (never a stand-in for the real model)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from embeddings.model.signals import SignalEncoders
from embeddings.vectors import HEAD, MAIN, USE, ModelSpec


class HashingEncoder:
    """Bag of hashed character trigrams: texts sharing words get close vectors."""

    def __init__(
        self, dimension: int = 64, name: str = "test/hashing-trigrams", max_seq_length: int = 256
    ) -> None:
        self._spec = ModelSpec(name=name, dimension=dimension, max_seq_length=max_seq_length, text_prefix="")
        self.calls = 0

    def with_max_seq_length(self, max_seq_length: int) -> HashingEncoder:
        """The same hashing over the first `max_seq_length` words only."""
        return HashingEncoder(self._spec.dimension, self._spec.name, max_seq_length)

    @property
    def spec(self) -> ModelSpec:
        """The fake model's identity."""
        return self._spec

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Hash each text's trigrams into a unit vector."""
        self.calls += 1
        out = np.zeros((len(texts), self._spec.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {' '.join(text.lower().split()[: self._spec.max_seq_length])}  "
            for i in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self._spec.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] /= norm if norm else 1.0
        return out


class FailingEncoder(HashingEncoder):
    """Fails on its n-th call, like a model that runs out of memory mid-build."""

    def __init__(self, fail_on_call: int = 1) -> None:
        super().__init__()
        self.fail_on_call = fail_on_call

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Encode, except on the failing call."""
        if self.calls + 1 >= self.fail_on_call:
            self.calls += 1
            raise RuntimeError("simulated encoder failure")
        return super().encode(texts, batch_size=batch_size, progress=progress)


class RefusingEncoder:
    """Claims a real encoder's identity but refuses to embed: proves that a cache answered."""

    def __init__(self, spec: ModelSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> ModelSpec:
        """The identity it borrows."""
        return self._spec

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Fail whenever there is something to embed."""
        if texts:
            raise AssertionError(f"asked to embed {len(texts)} texts")
        return np.zeros((0, self._spec.dimension), dtype=np.float32)


def fake_signals(main: HashingEncoder | None = None) -> SignalEncoders:
    """Every signal of the default scorer, each a hashing encoder (for index and API logic only)."""
    main = main or HashingEncoder()
    return SignalEncoders(
        {MAIN: main, HEAD: main.with_max_seq_length(8), USE: HashingEncoder(48, "test/hashing-use")}
    )
