"""Reprint detection by shared text: MinHash signatures of each article's word shingles.

A reprint is a republished copy: nearly all of the shorter text is in the other. Embeddings cannot
tell it from a second report on the same story (on SaudiNewsNet both reach cosines of 0.95-0.985),
nor can shared words: follow-ups written on one template share most of their words, each with its
own facts. Shared runs of words can. A signature holds the MinHash values of a text's distinct
shingles (runs of SHINGLE words) and their count; the Jaccard overlap of two shingle sets is
estimated by the share of equal MinHash values, and with the two counts gives the containment
|A & B| / min(|A|, |B|): the share of the shorter text found in the other.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence

import numpy as np

PERMUTATIONS = 64  # estimates a Jaccard overlap to about +-0.06
WIDTH = PERMUTATIONS + 1  # the MinHash values, then the number of distinct shingles
SHINGLE = 2  # word pairs: on the sample, copies hold 0.93-1.0 of each other, template follow-ups 0.69
# Headlines alone are too short to judge by shared text ("slash story one", "slash story two"):
# texts with fewer distinct shingles get no signature and are judged by the other tests.
MIN_SHINGLES = 16
# Containment is read off the Jaccard estimate scaled by the sizes: with few equal values (a short text
# against a long one) one chance match would swing it past any threshold, so it counts from 8 of 64.
MIN_MATCHES = 8
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
NO_SIGNATURE = np.zeros(WIDTH, dtype=np.uint32)  # a short text: no shingles counted


def folded(text: str) -> str:
    """A text in NFKC, case-folded, without Arabic diacritics and tatweel."""
    return _MARKS.sub("", unicodedata.normalize("NFKC", text).casefold())


def words(text: str) -> set[str]:
    """The distinct words of a text, case-folded, without Arabic diacritics."""
    return set(_WORD.findall(folded(text)))


def shingles(text: str) -> set[str]:
    """The distinct runs of SHINGLE consecutive words of a text (words as `words` reads them)."""
    seq = _WORD.findall(folded(text))
    return {" ".join(seq[i : i + SHINGLE]) for i in range(len(seq) - SHINGLE + 1)}


def signature(text: str) -> np.ndarray:
    """The signature (WIDTH uint32 values) of a text's shingle set (NO_SIGNATURE if it is short)."""
    distinct = shingles(text)
    if len(distinct) < MIN_SHINGLES:
        return NO_SIGNATURE.copy()
    hashes = np.fromiter((zlib.crc32(w.encode()) for w in distinct), dtype=np.uint64)
    # Universal hashing a*h + b mod a Mersenne prime; uint64 products wrap, which still mixes well.
    mixed = (hashes[:, None] * _A[None, :] + _B[None, :]) % _PRIME
    out = np.empty(WIDTH, dtype=np.uint32)
    out[:PERMUTATIONS] = mixed.min(axis=0) & _MASK
    out[PERMUTATIONS] = min(len(distinct), np.iinfo(np.uint32).max)
    return out


def signatures(texts: Sequence[str]) -> np.ndarray:
    """Signatures of many texts, one row each."""
    out = np.empty((len(texts), WIDTH), dtype=np.uint32)
    for i, text in enumerate(texts):
        out[i] = signature(text)
    return out


def containment(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Estimated share of the shorter text found in the other, for every row of `rows` and of `others`.

    A [len(rows), len(others)] matrix; 0 wherever either text is short (has no signature), or where
    fewer than MIN_MATCHES MinHash values agree (too few to tell).
    """
    rows, others = np.atleast_2d(rows), np.atleast_2d(others)
    equal = rows[:, None, :PERMUTATIONS] == others[None, :, :PERMUTATIONS]
    matches = np.count_nonzero(equal, axis=2)
    jaccard = matches / PERMUTATIONS
    a = rows[:, PERMUTATIONS].astype(np.float64)[:, None]
    b = others[:, PERMUTATIONS].astype(np.float64)[None, :]
    shorter = np.minimum(a, b)
    shared = jaccard / (1.0 + jaccard) * (a + b)
    reliable = (shorter > 0) & (matches >= MIN_MATCHES)
    out: np.ndarray = np.where(reliable, np.minimum(shared / np.maximum(shorter, 1.0), 1.0), 0.0)
    return out
