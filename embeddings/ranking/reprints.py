"""Reprint detection by shared words: MinHash signatures of each article's word set.

Embeddings alone cannot tell a reprint from a second report on the same story: on SaudiNewsNet both
reach cosines of 0.95-0.985. Their wording can: an outlet's rewrite of a wire story shares half or more
of its words with the original, while a separate report on the same event shares a fifth to a third.
The Jaccard overlap of two word sets is estimated by the share of equal MinHash values.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np

PERMUTATIONS = 64  # estimates a Jaccard overlap to about +-0.06
# Headlines alone are too short to judge by shared words ("slash story one", "slash story two"
# share half): texts with fewer distinct words get no signature and are judged by the other tests.
MIN_WORDS = 16
_PRIME = np.uint64((1 << 61) - 1)
_MASK = np.uint64((1 << 32) - 1)
_WORD = re.compile(r"\w+")
_MARKS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u0640]")  # Arabic diacritics and tatweel


def _constants(tag: str) -> np.ndarray:
    # From SHA-256, not a random generator: signatures must match across builds, processes and versions.
    values = [
        int.from_bytes(hashlib.sha256(f"{tag}{i}".encode()).digest()[:8], "little")
        for i in range(PERMUTATIONS)
    ]
    return np.array([v % ((1 << 61) - 2) + 1 for v in values], dtype=np.uint64)


_A = _constants("reprints-a")
_B = _constants("reprints-b")
NO_SIGNATURE = np.full(PERMUTATIONS, np.iinfo(np.uint32).max, dtype=np.uint32)  # a short text


def words(text: str) -> set[str]:
    """The distinct words of a text, case-folded, without Arabic diacritics."""
    folded = _MARKS.sub("", unicodedata.normalize("NFKC", text).casefold())
    return set(_WORD.findall(folded))


def signature(text: str) -> np.ndarray:
    """The MinHash signature (PERMUTATIONS uint32 values) of a text's word set (empty if it is short)."""
    distinct = words(text)
    if len(distinct) < MIN_WORDS:
        return NO_SIGNATURE.copy()
    hashes = np.fromiter((zlib.crc32(w.encode()) for w in distinct), dtype=np.uint64)
    # Universal hashing a*h + b mod a Mersenne prime; uint64 products wrap, which still mixes well.
    mixed = (hashes[:, None] * _A[None, :] + _B[None, :]) % _PRIME
    lowest: np.ndarray = (mixed.min(axis=0) & _MASK).astype(np.uint32)
    return lowest


def signatures(texts: Sequence[str]) -> np.ndarray:
    """Signatures of many texts, one row each."""
    out = np.empty((len(texts), PERMUTATIONS), dtype=np.uint32)
    for i, text in enumerate(texts):
        out[i] = signature(text)
    return out


def overlap(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Estimated word-set Jaccard overlap of every row of `rows` with every row of `others`.

    A [len(rows), len(others)] matrix; 0 wherever either text is short (has no signature).
    """
    rows, others = np.atleast_2d(rows), np.atleast_2d(others)
    equal = rows[:, None, :] == others[None, :, :]
    shares: np.ndarray = (
        np.count_nonzero(equal, axis=2) / rows.shape[1]
    )  # a mean, without a float copy of `equal`
    shares[np.all(rows == NO_SIGNATURE, axis=1), :] = 0.0
    shares[:, np.all(others == NO_SIGNATURE, axis=1)] = 0.0
    return shares
