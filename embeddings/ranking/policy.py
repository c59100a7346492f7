"""List policies: which candidates may appear, in which languages first, and how dates move them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

import numpy as np

from embeddings.errors import InvalidQueryError
from embeddings.index.filters import Filters
from embeddings.settings import LangPolicy, Settings, current_lang_policy

LANG_POLICIES: tuple[LangPolicy, ...] = get_args(LangPolicy)
_DAY = 86400.0
_FAR = 1e15  # seconds: SQLite wants finite bounds


def reader_languages(filters: Filters, query_lang: str | None) -> tuple[str, ...]:
    """The languages a list is for: the request's `lang` filter, else the query's language, else none."""
    return filters.langs or ((query_lang,) if query_lang else ())


# The defaults live in one place, the settings class.
_DEFAULTS: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}


@dataclass(frozen=True)
class ListPolicy:
    """How a related list is assembled beyond raw relatedness (see Settings for each field)."""

    lang_policy: LangPolicy = _DEFAULTS["lang_policy"]
    diversity: float = _DEFAULTS["diversity"]
    window_days: float | None = _DEFAULTS["window_days"]
    past_only: bool = _DEFAULTS["past_only"]
    freshness_half_life_days: float = _DEFAULTS["freshness_half_life_days"]
    freshness_weight: float = _DEFAULTS["freshness_weight"]
    min_score: float = _DEFAULTS["min_score"]

    def __post_init__(self) -> None:
        if self.lang_policy not in LANG_POLICIES:
            try:
                current_lang_policy(self.lang_policy)  # a retired value: its own message
            except ValueError as exc:
                raise InvalidQueryError(str(exc)) from None
            raise InvalidQueryError(f"lang_policy must be one of {', '.join(LANG_POLICIES)}")
        if not 0.0 <= self.diversity <= 1.0:
            raise InvalidQueryError("diversity must be between 0 and 1")
        if self.window_days is not None and self.window_days <= 0:
            raise InvalidQueryError("window_days must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> ListPolicy:
        """The configured defaults."""
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def off(cls) -> ListPolicy:
        """No policy at all: rank by relatedness alone (the baseline)."""
        return cls(
            lang_policy="any",
            diversity=0.0,
            window_days=None,
            freshness_weight=0.0,
            min_score=-math.inf,
        )

    def with_overrides(self, **overrides: Any) -> ListPolicy:
        """This policy with the given fields replaced (None leaves a field as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def passes(
        self,
        filters: Filters,
        query_date: datetime | None,
        query_lang: str | None,
        dated: tuple[float, float] | None,
    ) -> tuple[Filters, ...]:
        """The filters of each pass of a list: the reader's languages, then (when the policy lets
        other languages fill a short list) the others; each narrowed by the date rules.

        The reader's languages are the request's `lang` filter, else the query's language; with
        neither, or under `any`, there is one pass with `filters` as they are. `dated` is the
        bundle's range of publication dates: a window that spans it restricts nothing.
        """
        window = None
        if query_date is not None and (self.window_days is not None or self.past_only):
            at = query_date.timestamp()
            span = self.window_days * _DAY if self.window_days is not None else math.inf
            start, end = at - span, at if self.past_only else at + span
            spans_all = dated is not None and start <= dated[0] and dated[1] <= end
            window = None if spans_all else (max(start, -_FAR), min(end, _FAR))
        dated_filters = dataclasses.replace(filters, window=window)
        own = reader_languages(filters, query_lang)
        if self.lang_policy == "any" or not own:
            return (dated_filters,)
        first = dataclasses.replace(dated_filters, langs=own)
        if self.lang_policy == "same":
            return (first,)
        return first, dataclasses.replace(dated_filters, langs=(), except_langs=own)

    def freshness(self, query_date: datetime | None, published: np.ndarray) -> np.ndarray:
        """Score taken off each candidate for its date gap to the query (0 when either has no date).

        `published`: the candidates' dates in epoch seconds, NaN when undated.
        """
        published = np.asarray(published, dtype=np.float64)
        if query_date is None or self.freshness_weight == 0:
            return np.zeros(len(published))
        gap = np.abs(published - query_date.timestamp()) / _DAY
        penalty = -self.freshness_weight * (1.0 - 0.5 ** (gap / self.freshness_half_life_days))
        return np.where(np.isnan(published), 0.0, penalty)
