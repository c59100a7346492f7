"""The original of a group of copies: the member that represents the group in lists and stories.

It is the earliest dated member; among undated ones (and on a tie), one whose title does not open with a
breaking-news label; then one in the reader's language; then the first given (the best scored).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from embeddings.index.store import StoredArticle
from embeddings.ranking.reprints import folded

# Labels an outlet puts before a republished headline, compared after NFKC, case folding and the removal
# of Arabic diacritics and tatweel; a label counts at the title's start, followed by ':', '-' or '|'.
BREAKING_LABELS = (
    "عاجل",  # Arabic: urgent
    "خبر عاجل",
    "breaking",
    "breaking news",
    "update",
    "updated",
    "urgent",
    "dernière minute",
    "dernière heure",
    "flash",
)
_LABEL = re.compile(
    r"^\W*(?:" + "|".join(re.escape(label) for label in sorted(BREAKING_LABELS, key=len, reverse=True)) + r")"
    r"\s*[:|\-\u2013\u2014]"  # ':', '|', '-', and the en and em dashes written for '-'
)


def breaking(title: str) -> bool:
    """Whether a title opens with a breaking-news label ('عاجل: ...', 'BREAKING - ...')."""
    return _LABEL.match(folded(title)) is not None


def original(members: Sequence[StoredArticle], langs: Sequence[str]) -> int:
    """The position in `members` (copies of one report, best scored first) of the group's original.

    `langs`: the reader's languages (a list's, the query article's); a member in one of them comes
    before a member in another (when neither date nor label tells them apart).
    """

    def key(position: int) -> tuple[float, bool, bool, int]:
        member = members[position]
        at = member.published_at.timestamp() if member.published_at is not None else math.inf
        return at, breaking(member.title), bool(langs) and member.lang not in langs, position

    return min(range(len(members)), key=key)
