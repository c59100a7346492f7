"""Relatedness evaluation against human judgements (SemEval-2022 Task 8 pairs)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import InputError
from embeddings.model import Encoder
from embeddings.text import article_text


@dataclass(frozen=True)
class ScoredPair:
    """Two article texts, their language pair and the human score (1 = same story ... 4 = unrelated)."""

    text1: str
    text2: str
    lang: str
    overall: float


def _text(row: dict[str, Any], side: str) -> str:
    title = row.get(f"title{side}")
    body = row.get(f"text{side}")
    if title is None and body is None:
        raise ValueError(f"no title{side} or text{side}")
    return article_text(str(title or body), str(body) if title and body else "")


def _lang(row: dict[str, Any]) -> str:
    if row.get("lang_pair"):
        return str(row["lang_pair"])
    first, second = row.get("lang1") or "?", row.get("lang2") or "?"
    return str(first) if first == second else f"{first}-{second}"


def read_pairs(path: Path) -> list[ScoredPair]:
    """Read a JSONL of scored pairs (text1/text2, or title1/text1/title2/text2, and Overall)."""
    pairs = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pairs.append(ScoredPair(_text(row, "1"), _text(row, "2"), _lang(row), float(row["Overall"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:line {line_no}: not a scored pair ({exc})") from exc
    if len(pairs) < 3:
        raise InputError(f"{path}: {len(pairs)} scored pair(s); at least 3 are needed for a correlation")
    return pairs


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation (nan when either side is constant)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    denom = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denom) if denom else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):  # ties share their mean rank
        tied = x == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation, ties averaged."""
    return pearson(_ranks(np.asarray(x)), _ranks(np.asarray(y)))


def _figures(scores: np.ndarray, overall: np.ndarray) -> dict[str, Any]:
    return {
        "pairs": len(scores),
        "pearson": round(pearson(scores, -overall), 4),
        "spearman": round(spearman(scores, -overall), 4),
    }


def evaluate_pairs(pairs: list[ScoredPair], encoder: Encoder, batch_size: int = 32) -> dict[str, Any]:
    """Correlation of the service's relatedness score with -Overall, over all pairs and per language pair."""
    texts = list(dict.fromkeys([p.text1 for p in pairs] + [p.text2 for p in pairs]))
    vectors = encoder.encode(texts, batch_size=batch_size)
    row = {t: i for i, t in enumerate(texts)}
    scores = np.array([float(vectors[row[p.text1]] @ vectors[row[p.text2]]) for p in pairs])
    overall = np.array([p.overall for p in pairs])
    result = _figures(scores, overall)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        groups[pair.lang].append(i)
    result["by_lang"] = {
        lang: _figures(scores[idx], overall[idx]) for lang, idx in sorted(groups.items()) if len(idx) >= 3
    }
    return result
