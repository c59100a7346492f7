"""The story route's relatedness threshold, chosen on scored pairs by cross-validation by pair group.

    python -m benchmarks.story_threshold --pairs PAIRS.jsonl [--same-story 2] [--beta 0.5] [--folds 5]
        [--json F]

Each pair's relatedness is a scorer of the curves kind (one isotonic curve per signal of the shipped
scorer's dense signals, averaged) fitted without the pair's fold (the shipped scorer, of the ranking kind,
gets its threshold from `related-articles evaluate fit --kind ranking`, by the same criterion);
each fold is then judged at the threshold of best F-beta on the other folds,
and the figures pool the folds. The threshold printed last is the one of best F-beta over every pair:
the one to ship. Embeddings go through the evaluation cache (`related-articles evaluate`'s), so a rerun embeds
nothing. The model is the configured one (RELATED_* settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from embeddings.cli import evaluation_cache
from embeddings.evaluation.pairs import out_of_fold, pair_cosines, read_pairs
from embeddings.evaluation.story_threshold import BETA, SAME_STORY, cross_validate_threshold
from embeddings.model.signals import load_signal_encoders
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import load_settings


def measure(pairs_path: Path, cut: float, folds: int, beta: float = BETA) -> dict[str, Any]:
    """The figures of the threshold on the pairs in `pairs_path` (same story: Overall <= `cut`)."""
    settings = load_settings()
    signals = list(load_scorer(settings.scorer).dense)
    pairs = read_pairs(pairs_path)
    encoders = load_signal_encoders(settings, signals)
    cosines = pair_cosines(pairs, encoders, signals, evaluation_cache(settings), settings.batch_size)
    scores = out_of_fold(pairs, cosines, "curves", folds)
    result = cross_validate_threshold(pairs, scores, cut, folds, beta)
    result["signals"] = signals
    return result


def _line(name: str, fig: dict[str, Any]) -> str:
    return (
        f"  {name:12s} pairs {fig['pairs']:5d}  same-story {fig['same_story']:4d}  kept {fig['kept']:4d}  "
        f"precision {fig['precision']:.3f}  recall {fig['recall']:.3f}  "
        f"f1 {fig['f1']:.3f}  f0.5 {fig['f0.5']:.3f}  "
        f"unrelated kept {fig['unrelated_kept']:.3f}"
    )


def report(result: dict[str, Any]) -> None:
    """Print the figures."""
    cut, folds, beta = result["same_story_overall_at_most"], result["folds"], result["beta"]
    print(
        f"same story: Overall <= {cut}; criterion F{beta:g}; {folds} folds by pair group; "
        "relatedness fitted out of fold"
    )
    thresholds = ", ".join(f"{t:.2f}" for t in result["fold_thresholds"].values())
    print(f"thresholds chosen on the other folds: {thresholds}")
    print(_line("all", result["cross_validated"]))
    print(_line("originals", result["originals"]))
    print(_line("translations", result["translations"]))
    for lang, fig in result["by_lang"].items():
        print(_line(lang, fig))
    curve = result["f_by_threshold"]
    print(f"F{beta:g} by threshold: " + ", ".join(f"{t} {curve[t]:.3f}" for t in sorted(curve)[30:95:5]))
    print(f"threshold (best F{beta:g} over every pair): {result['threshold']:.2f}")


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and write the JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=Path, required=True, help="JSONL of scored pairs (SemEval-2022 Task 8)"
    )
    parser.add_argument(
        "--same-story", type=float, default=SAME_STORY, help="Overall at or below: same story"
    )
    parser.add_argument("--beta", type=float, default=BETA, help="F-beta criterion (1: F1)")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = measure(args.pairs, args.same_story, args.folds, args.beta)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
