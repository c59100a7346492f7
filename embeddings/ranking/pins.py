"""Pinned articles at the head of a related list."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from embeddings.ranking.listing import Hit, Listing


def with_pins(listing: Listing, pinned: list[Hit], k: int) -> Listing:
    """`listing` led by the `pinned` hits, cut to `k`; the pinned rows count among those it came from."""
    rows = np.concatenate([listing.rows, np.array([h.article.rowid for h in pinned], dtype=np.int64)])
    return replace(listing, hits=(pinned + listing.hits)[:k], rows=rows)
