"""Relatedness against human judgements: scored pairs (SemEval-2022 Task 8 form), and fitting the scorer."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from embeddings.articles.article import Article
from embeddings.articles.text import article_text
from embeddings.build.embed import embed_articles
from embeddings.errors import InputError
from embeddings.model.cache import EmbeddingCache
from embeddings.model.lexical import LexicalModel, counts
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.scorer import Curve, Scorer, ScorerConfig, SignalTerm
from embeddings.vectors import LEX

CURVE_KNOTS = 48  # a curve's knots: enough for its shape, few enough not to learn noise


@dataclass(frozen=True)
class ScoredPair:
    """Two articles (title, body), their language pair, the human score (1 same story ... 4 unrelated)."""

    side1: tuple[str, str]
    side2: tuple[str, str]
    lang: str
    overall: float
    group: str  # pairs of one group (an original and its machine translations) stay in one CV fold
    translated: bool = False  # a machine translation of an original pair

    @property
    def languages(self) -> tuple[str | None, str | None]:
        """The two sides' language codes (None where the file does not say)."""
        first, _, second = self.lang.partition("-")
        codes = (first, second or first)
        return (codes[0] if codes[0] != "?" else None, codes[1] if codes[1] != "?" else None)

    @property
    def across(self) -> bool:
        """Whether the two sides are in two known, different languages."""
        first, second = self.languages
        return first is not None and second is not None and first != second

    @property
    def text1(self) -> str:
        """The first article as embedded."""
        return article_text(*self.side1)

    @property
    def text2(self) -> str:
        """The second article as embedded."""
        return article_text(*self.side2)


def _side(row: dict[str, Any], n: str) -> tuple[str, str]:
    title, body = row.get(f"title{n}"), row.get(f"text{n}")
    if not (title or body):
        raise ValueError(f"no title{n} or text{n}")
    return (str(title), str(body or "")) if title else (str(body), "")


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
            group = str(row.get("pair_id") or f"line-{line_no}")
            sides = _side(row, "1"), _side(row, "2")
            translated = bool(row.get("augmented_mt"))
            pairs.append(ScoredPair(*sides, _lang(row), float(row["Overall"]), group, translated))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}:line {line_no}: not a scored pair ({exc})") from exc
    if len(pairs) < 3:
        raise InputError(f"{path}: {len(pairs)} scored pair(s); at least 3 are needed for a correlation")
    return pairs


def across_mask(pairs: Sequence[ScoredPair]) -> np.ndarray:
    """Which pairs are in two known, different languages."""
    return np.array([p.across for p in pairs], dtype=bool)


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


def correlations(pairs: Sequence[ScoredPair], scores: np.ndarray) -> dict[str, Any]:
    """Pearson and Spearman of `scores` against -Overall, over all pairs and per language pair."""
    overall = np.array([p.overall for p in pairs])
    result = _figures(scores, overall)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, pair in enumerate(pairs):
        groups[pair.lang].append(i)
    result["by_lang"] = {
        lang: _figures(scores[idx], overall[idx]) for lang, idx in sorted(groups.items()) if len(idx) >= 3
    }
    across = across_mask(pairs)
    result["by_relation"] = {
        name: _figures(scores[mask], overall[mask])
        for name, mask in (("same language", ~across), ("across languages", across))
        if mask.sum() >= 3
    }
    return result


def text_article(ident: str, side: tuple[str, str], lang: str | None = None) -> Article:
    """An article made of a pair side, embedded exactly as the pair's text."""
    return Article(id=ident, title=side[0], body=side[1], lang=lang)


def pair_cosines(
    pairs: Sequence[ScoredPair],
    encoders: SignalEncoders,
    signals: Sequence[str],
    cache_path: Path,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Each signal's cosine of each pair (texts embedded once, through the embedding cache).

    The lexical signal weighs n-grams by the IDF of the pairs' own texts, as a bundle does with its
    articles'.
    """
    sides = list(dict.fromkeys([p.side1 for p in pairs] + [p.side2 for p in pairs]))
    row = {side: i for i, side in enumerate(sides)}
    articles = [text_article(hashlib.sha256(repr(s).encode()).hexdigest()[:16], s) for s in sides]
    first, second = np.array([row[p.side1] for p in pairs]), np.array([row[p.side2] for p in pairs])
    out = {}
    for name in signals:
        if name == LEX:
            texts = [article_text(a.title, a.body) for a in articles]
            matrix = counts(texts)
            rows = LexicalModel.fit(matrix).weigh(matrix)
            products = rows[first].multiply(rows[second]).sum(axis=1)
            out[name] = np.asarray(products, dtype=np.float64).ravel()
            continue
        encoder = encoders.encoders[name]
        cache = EmbeddingCache(cache_path, encoder.spec)
        try:
            vectors, _, _ = embed_articles(articles, encoder, cache, batch_size, progress=False)
        finally:
            cache.close()
        out[name] = np.einsum("ij,ij->i", vectors[first], vectors[second]).astype(np.float64)
    return out


def evaluate_pairs(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], scorer: Scorer
) -> dict[str, Any]:
    """Correlations of the scorer's relatedness, and of each of its signals alone, with -Overall."""
    result = correlations(pairs, scorer.combine(cosines, across_mask(pairs)))
    result["scorer"] = scorer.name
    overall = np.array([p.overall for p in pairs])
    result["signals"] = {name: _figures(cosines[name], overall) for name in scorer.signals}
    return result


def relatedness_target(pairs: Sequence[ScoredPair]) -> np.ndarray:
    """The human score on the scorer's scale: 1 for the same story (Overall 1) to 0 unrelated (4)."""
    return (4.0 - np.array([p.overall for p in pairs])) / 3.0


def fit_zmean(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], name: str, source: str = ""
) -> ScorerConfig:
    """Equal-weight mean of z-scored signals. No labels are used: only each signal's spread over the pairs."""
    return ScorerConfig(
        name=name,
        signals={
            signal: SignalTerm(mean=float(np.mean(c)), std=float(np.std(c)), weight=1.0 / len(cosines))
            for signal, c in cosines.items()
        },
        fitted_on={"file": source, "pairs": len(pairs), "kind": "zmean"},
    )


def isotonic_curve(x: np.ndarray, y: np.ndarray, knots: int = CURVE_KNOTS) -> Curve:
    """The increasing curve closest to (x, y) in least squares (scikit-learn's IsotonicRegression).

    Each flat step of the fit becomes one knot at the mean of its ends, so that the knots rise
    strictly (equal scores would tie candidates); tied x values are pooled by the fit itself.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("a curve needs at least two finite (value, score) points")
    fit = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    steps_x, steps_y = np.asarray(fit.X_thresholds_), np.asarray(fit.y_thresholds_)
    levels, first = np.unique(steps_y, return_index=True)
    ends = np.append(first[1:], len(steps_y))
    bx = np.array([steps_x[s:e].mean() for s, e in zip(first, ends, strict=True)])
    by = levels
    if len(bx) < 2:
        raise InputError("the pairs' scores do not rise with this signal: no curve can be fitted")
    if len(bx) > knots:  # fewer knots, read off the curve at evenly spaced quantiles of the steps
        at = np.unique(np.quantile(bx, np.linspace(0, 1, knots)))
        bx, by = at, np.interp(at, bx, by)
    keep = np.concatenate([[True], (np.diff(bx) > 0) & (np.diff(by) > 0)])
    return Curve(x=[float(v) for v in bx[keep]], y=[float(v) for v in by[keep]])


def fit_curves(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], name: str, source: str = ""
) -> ScorerConfig:
    """Per signal, an increasing curve from cosine to the human score; the score is their plain mean."""
    return _curves_scorer(pairs, cosines, name, source, weighted=False)


def fit_weighted_curves(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], name: str, source: str = ""
) -> ScorerConfig:
    """Per signal, an increasing curve from cosine to the human score; then their least-squares mix."""
    return _curves_scorer(pairs, cosines, name, source, weighted=True)


def _curves_scorer(
    pairs: Sequence[ScoredPair],
    cosines: Mapping[str, np.ndarray],
    name: str,
    source: str,
    weighted: bool,
) -> ScorerConfig:
    target = relatedness_target(pairs)
    names = list(cosines)
    curves = {n: isotonic_curve(np.asarray(cosines[n]), target) for n in names}
    if weighted:
        features = np.stack([np.interp(cosines[n], curves[n].x, curves[n].y) for n in names], axis=1)
        weights, intercept = _nonnegative_least_squares(features, target)
    else:
        weights, intercept = np.full(len(names), 1.0 / len(names)), 0.0
    return ScorerConfig(
        name=name,
        signals={
            n: SignalTerm(
                mean=float(np.mean(cosines[n])),
                std=float(np.std(cosines[n])),
                weight=float(w),
                curve=curves[n],
            )
            for n, w in zip(names, weights, strict=True)
        },
        intercept=float(intercept),
        fitted_on={
            "file": source,
            "pairs": len(pairs),
            "kind": "weighted-curves" if weighted else "curves",
        },
    )


def _nonnegative_least_squares(features: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights (>= 0; a signal that would get a negative one is left out) and intercept."""
    active = list(range(features.shape[1]))
    while True:
        x = np.column_stack([features[:, active], np.ones(len(target))])
        solution, *_ = np.linalg.lstsq(x, target, rcond=None)
        weights = solution[:-1]
        if (weights >= 0).all() or len(active) == 1:
            out = np.zeros(features.shape[1])
            out[active] = np.maximum(weights, 0)
            return out, float(solution[-1])
        active.pop(int(np.argmin(weights)))


FITS: dict[str, Callable[[Sequence[ScoredPair], Mapping[str, np.ndarray], str, str], ScorerConfig]] = {
    "curves": fit_curves,
    "weighted-curves": fit_weighted_curves,
    "zmean": fit_zmean,
}


def fold_of(group: str, folds: int) -> int:
    """The cross-validation fold of a pair group (stable across runs and machines)."""
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % folds


def out_of_fold(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], kind: str = "curves", folds: int = 5
) -> np.ndarray:
    """Each pair's relatedness by a scorer of `kind` fitted on the other folds (by pair group)."""
    fold = np.array([fold_of(p.group, folds) for p in pairs])
    scores = np.zeros(len(pairs))
    for f in range(folds):
        train, test = fold != f, fold == f
        if not test.any() or not train.any():
            continue
        train_pairs = [p for p, t in zip(pairs, train, strict=True) if t]
        config = FITS[kind](train_pairs, {n: c[train] for n, c in cosines.items()}, "cv", "")
        scores[test] = Scorer(config).combine({n: c[test] for n, c in cosines.items()})
    return scores


def cross_validate(
    pairs: Sequence[ScoredPair], cosines: Mapping[str, np.ndarray], kind: str = "curves", folds: int = 5
) -> dict[str, Any]:
    """Correlations of out-of-fold scores: each fold scored by a scorer fitted on the other folds."""
    result = correlations(pairs, out_of_fold(pairs, cosines, kind, folds))
    result["folds"] = folds
    result["kind"] = kind
    return result
