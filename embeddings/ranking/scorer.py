"""The relatedness scorer: each signal's cosine through a term, weighted and summed.

A term is either the cosine standardized by its mean and spread over article pairs (a z-score), or a
monotone curve from cosine to relatedness fitted on human-scored pairs. `related-articles evaluate fit`
fits both kinds; the shipped scorer is the calibrated kind, whose output estimates the human score on a
0 (unrelated) to 1 (same story) scale.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from embeddings.errors import ModelError
from embeddings.vectors import MAIN

DEFAULT_SCORER = "default"
COSINE_SCORER = "cosine"
_SHIPPED = "scorer.json"
TIE_BREAK = 1e-4


class Curve(BaseModel):
    """A monotone piecewise-linear map from cosine to relatedness, flat beyond its ends."""

    model_config = ConfigDict(extra="forbid")

    x: list[float] = Field(min_length=2)
    y: list[float] = Field(min_length=2)  # strictly increasing too: equal scores would tie candidates

    @model_validator(mode="after")
    def _monotone(self) -> Curve:
        if len(self.x) != len(self.y):
            raise ValueError("a curve needs as many y as x values")
        if np.any(np.diff(self.x) <= 0) or np.any(np.diff(self.y) <= 0):
            raise ValueError("a curve's x and y must both increase")
        return self


class SignalTerm(BaseModel):
    """How one signal's cosine enters the score."""

    model_config = ConfigDict(extra="forbid")

    mean: float
    std: float = Field(gt=0)
    weight: float = Field(ge=0)
    curve: Curve | None = None


class ScorerConfig(BaseModel):
    """A scorer as stored in JSON: relatedness = intercept + sum of weight * term(cosine)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    signals: dict[str, SignalTerm]
    intercept: float = 0.0
    fitted_on: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _usable(self) -> ScorerConfig:
        if MAIN not in self.signals:
            raise ValueError(f"a scorer must use the {MAIN!r} signal")
        if not any(s.weight > 0 for s in self.signals.values()):
            raise ValueError("a scorer needs at least one positive weight")
        return self


class Scorer:
    """Scores candidates against a query from their signal vectors."""

    def __init__(self, config: ScorerConfig) -> None:
        self.config = config
        self.name = config.name
        self.signals = tuple(config.signals)
        self._curves = {
            n: (np.asarray(s.curve.x), np.asarray(s.curve.y))
            for n, s in config.signals.items()
            if s.curve is not None
        }

    def term(self, signal: str, cosines: np.ndarray) -> np.ndarray:
        """One signal's contribution before weighting: its curve, or its z-score."""
        values = np.asarray(cosines, dtype=np.float64)
        s = self.config.signals[signal]
        z = (values - s.mean) / s.std
        if signal in self._curves:
            x, y = self._curves[signal]
            # A curve is flat beyond its ends: the tiny z slope still orders the cosines there.
            return np.asarray(np.interp(values, x, y) + TIE_BREAK * z, dtype=np.float64)
        return z

    def combine(self, cosines: Mapping[str, np.ndarray]) -> np.ndarray:
        """The relatedness of each candidate, given every signal's cosines."""
        total = np.full(len(cosines[MAIN]), self.config.intercept, dtype=np.float64)
        for name, signal in self.config.signals.items():
            total += signal.weight * self.term(name, cosines[name])
        return total

    def score(
        self, query: Mapping[str, np.ndarray], candidates: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Relatedness of each candidate row to the query, and each signal's cosines."""
        cosines = {n: np.asarray(candidates[n] @ query[n], dtype=np.float64) for n in self.signals}
        return self.combine(cosines), cosines


def cosine_config(shipped: ScorerConfig) -> ScorerConfig:
    """The main signal's cosine alone: the baseline.

    It ranks exactly as the raw cosine does (terms are strictly increasing). It uses the shipped main
    term alone, which is on the shipped scale, so the list policies' weights mean the same under both.
    """
    return ScorerConfig(
        name=COSINE_SCORER,
        signals={MAIN: shipped.signals[MAIN].model_copy(update={"weight": 1.0})},
        fitted_on={"note": "the main embedding's cosine alone, through the shipped scorer's main term"},
    )


def load_scorer(spec: str) -> Scorer:
    """The scorer named by `spec`: 'default' (shipped), 'cosine' (baseline) or a JSON file path."""
    if spec == COSINE_SCORER:
        return Scorer(cosine_config(load_scorer(DEFAULT_SCORER).config))
    try:
        if spec == DEFAULT_SCORER:
            text = (importlib.resources.files("embeddings") / "data" / _SHIPPED).read_text(encoding="utf-8")
        else:
            text = Path(spec).expanduser().read_text(encoding="utf-8")
        return Scorer(ScorerConfig.model_validate(json.loads(text)))
    except (OSError, ValueError, ValidationError) as exc:
        raise ModelError(f"cannot load scorer {spec!r}: {exc}") from exc


def save_scorer(config: ScorerConfig, path: Path) -> None:
    """Write a scorer JSON (what `load_scorer(path)` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
