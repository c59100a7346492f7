"""The command line of the batch side: `related-articles build` (the service adds `serve`)."""

from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from embeddings import logs
from embeddings.articles.readers import parse_field_map
from embeddings.build.rebuild import build_bundle
from embeddings.errors import InputError, RelatedArticlesError
from embeddings.model.signals import load_signal_encoders
from embeddings.ranking.scorer import COSINE_SCORER, Scorer, load_scorer, save_scorer
from embeddings.settings import Settings, load_settings
from embeddings.vectors import LEX, MAIN, SIGNALS

if TYPE_CHECKING:
    from embeddings.evaluation.retrieval import Ranker

log = logging.getLogger("related_articles")


def sample_corpus() -> Path:
    """The sample corpus shipped with the package (written for the project)."""
    return Path(str(importlib.resources.files("embeddings") / "data" / "sample_articles.jsonl"))


def configure_logging(level: str) -> None:
    """Plain timestamped log lines on stderr (the batch commands)."""
    logs.configure_logging(level, "text")


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command (each also settable as RELATED_<NAME>)."""
    parser.add_argument("--bundles", type=Path, help="bundles directory (RELATED_BUNDLES)")
    parser.add_argument("--model", help="'default', a local model folder or a hub id (RELATED_MODEL)")
    parser.add_argument("--cache-dir", type=Path, help="where the converted default model lives")
    parser.add_argument("--log-level", help="debug, info, warning, error")
    parser.add_argument("--scorer", help="'default', 'cosine' or a scorer JSON file (RELATED_SCORER)")
    parser.add_argument(
        "--backend", choices=["torch", "onnx-int8"], help="how the model runs (RELATED_BACKEND)"
    )


def add_accept_loss(parser: argparse.ArgumentParser) -> None:
    """The explicit acceptance of a lost or older write log (`build` and `serve`)."""
    parser.add_argument(
        "--accept-write-log-loss",
        action="store_true",
        default=None,
        help="go on although the write log is missing, emptied, replaced or older than the one the "
        "bundles directory is bound to: the writes it lacks are lost (RELATED_ACCEPT_WRITE_LOG_LOSS)",
    )


def add_build(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `build`."""
    build = sub.add_parser("build", help="build a bundle from an archive and publish it")
    add_common(build)
    build.add_argument(
        "--input",
        type=Path,
        help="JSONL or CSV file (.gz allowed), or a directory of them; default: the sample corpus",
    )
    build.add_argument("--field-map", help="map columns onto fields, e.g. body=content,published_at=date")
    build.add_argument(
        "--skip-invalid",
        action="store_true",
        default=None,
        help="index the valid rows, write the bad ones to the rejects file",
    )
    build.add_argument("--rejects", type=Path, help="rejects file (JSONL) for --skip-invalid")
    build.add_argument("--batch-size", type=int, help="texts per encoding batch")
    build.add_argument("--max-seq-length", type=int, help="tokens per article (longer ones are cut)")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_accept_loss(build)
    build.add_argument(
        "--engine", choices=["local", "ray"], help="who embeds: this process or Ray Data (RELATED_ENGINE)"
    )
    build.add_argument("--ray-address", help="Ray engine: the cluster to join; unset: a local instance")
    build.set_defaults(handler=run_build)


def at_least(low: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """An argparse type: a number of `kind`, at least `low`."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if value < low:
            raise argparse.ArgumentTypeError(f"at least {low:g}, not {text}")
        return value

    return parse


def add_adapt(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `adapt`."""
    from embeddings.model import adapt

    command = sub.add_parser(
        "adapt",
        help="adapt the default model to your archive (no labels needed): a LoRA adapter for RELATED_ADAPTER",
    )
    command.add_argument(
        "--input", type=Path, help="your archive: JSONL or CSV (.gz allowed), or a directory"
    )
    command.add_argument("--field-map", help="map columns onto fields, as for build")
    command.add_argument(
        "--bundles", type=Path, help="bundles directory; the adapter goes to <bundles>/adapters/"
    )
    command.add_argument("--cache-dir", type=Path, help="where the converted default model lives")
    command.add_argument("--log-level", help="debug, info, warning, error")
    command.add_argument(
        "--max-articles",
        type=at_least(1),
        default=adapt.MAX_ARTICLES,
        help=f"a seeded sample of this many articles (default {adapt.MAX_ARTICLES:,})",
    )
    command.add_argument(
        "--minutes",
        type=at_least(0.1, float),
        default=adapt.MINUTES,
        help=f"time budget of the training; it stops there with what it learnt (default {adapt.MINUTES:g})",
    )
    command.add_argument(
        "--max-seq-length",
        type=at_least(16),
        default=adapt.SEQ_LENGTH,
        help=f"tokens per text while training (default {adapt.SEQ_LENGTH})",
    )
    command.add_argument(
        "--batch-size",
        type=at_least(2),
        default=adapt.BATCH_SIZE,
        help=f"pairs per step, each the others' negatives (default {adapt.BATCH_SIZE})",
    )
    command.add_argument(
        "--max-steps", type=at_least(0), default=0, help="stop after this many steps (a trial run)"
    )
    command.add_argument("--seed", type=int, default=13, help="sampling and training seed")
    command.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")
    command.set_defaults(handler=run_adapt)


def add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `evaluate pairs|fit|retrieval|lists`."""
    evaluate = sub.add_parser("evaluate", help="measure relatedness quality against human judgements")
    modes = evaluate.add_subparsers(dest="mode", required=True)
    pairs = modes.add_parser("pairs", help="Pearson and Spearman against SemEval-2022 Task 8 scored pairs")
    pairs.add_argument("--input", type=Path, required=True, help="JSONL of scored pairs")
    pairs.set_defaults(handler=run_evaluate_pairs)
    fit = modes.add_parser("fit", help="fit a scorer on scored pairs; print its cross-validated figures")
    fit.add_argument("--input", type=Path, required=True, help="JSONL of scored pairs")
    fit.add_argument("--out", type=Path, required=True, help="where to write the scorer JSON")
    known = ", ".join((*SIGNALS, LEX))
    fit.add_argument("--signals", help=f"signals to mix (of {known}; default: all, lex for ranking only)")
    fit.add_argument(
        "--kind",
        choices=["ranking", "curves", "weighted-curves", "zmean"],
        default="curves",
        help="ranking: z-scored signals weighted for the best MRR@10 of the related lists (built as "
        "`evaluate retrieval` builds them), then calibrated on the pairs; curves: the mean of one fitted "
        "curve per signal (cosine to human score); weighted-curves: the same curves mixed by least "
        "squares; zmean: the mean of z-scored signals (no labels)",
    )
    add_distractors(fit)
    fit.add_argument("--name", help="the scorer's name (default: <kind>-<signals>)")
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    fit.set_defaults(handler=run_evaluate_fit)
    add_evaluate_ranking(modes)
    for mode in modes.choices.values():
        add_common(mode)
        mode.add_argument("--json", type=Path, help="also write the figures here")


def add_distractors(parser: argparse.ArgumentParser) -> None:
    """The options of a retrieval corpus's distractor archive."""
    parser.add_argument("--distractors", type=Path, help="an archive (file or directory) added to the corpus")
    parser.add_argument("--field-map", help="column mapping of the distractor archive")
    parser.add_argument("--distractor-limit", type=int, help="a seeded sample of this many distractors")
    parser.add_argument("--distractor-lang", help="the language of the distractors that name none (e.g. ar)")


def add_evaluate_ranking(modes: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `evaluate retrieval` and `evaluate lists`."""
    retrieval = modes.add_parser(
        "retrieval", help="recall@1/4, MRR@10 and nDCG@10 of the related lists on same-story pairs"
    )
    retrieval.add_argument("--input", type=Path, required=True, help="JSONL of scored pairs")
    add_distractors(retrieval)
    retrieval.set_defaults(handler=run_evaluate_retrieval)
    lists = modes.add_parser("lists", help="statistics of the lists the service returns over a built bundle")
    lists.add_argument("--queries", type=int, default=2000, help="articles sampled (0: all of them)")
    lists.add_argument("--k", type=int, default=4, help="list length")
    lists.add_argument(
        "--story-threshold",
        type=float,
        default=0.95,
        help="main cosine at which two results count as one story's versions",
    )
    lists.add_argument("--seed", type=int, default=0, help="sampling seed")
    lists.set_defaults(handler=run_evaluate_lists)


def _rankers(settings: Settings) -> list[Ranker]:
    """The baseline (plain cosine, no policy, reprints by text hash, title and cosine only), the scorer
    alone, and the service as configured."""
    from embeddings.evaluation.retrieval import Ranker
    from embeddings.ranking.policy import ListPolicy

    scorer = load_scorer(settings.scorer)
    baseline = Ranker("baseline: cosine, no policy", load_scorer(COSINE_SCORER), ListPolicy.off(), plain=True)
    rankers = [baseline]
    if scorer.name != COSINE_SCORER:
        rankers.append(Ranker(f"scorer {scorer.name}, no policy", scorer, ListPolicy.off()))
    rankers.append(
        Ranker(f"service: scorer {scorer.name}, default policies", scorer, ListPolicy.from_settings(settings))
    )
    return rankers


def _distractors(args: argparse.Namespace) -> list[Any]:
    from embeddings.evaluation.retrieval import read_distractors

    if not args.distractors:
        return []
    return read_distractors(
        args.distractors, parse_field_map(args.field_map), args.distractor_limit, lang=args.distractor_lang
    )


def run_evaluate_retrieval(args: argparse.Namespace) -> int:
    """`related-articles evaluate retrieval`."""
    from embeddings.evaluation.commands import retrieval_bundle
    from embeddings.evaluation.pairs import read_pairs
    from embeddings.evaluation.retrieval import evaluate_retrieval

    settings = settings_from(args)
    configure_logging(settings.log_level)
    settings = settings.model_copy(update={"embedding_cache": evaluation_cache(settings)})
    pairs = read_pairs(args.input)
    distractors = _distractors(args)
    signals = load_scorer(settings.scorer).signals
    with retrieval_bundle(settings, pairs, distractors, signals, args.input) as (bundles, queries):
        result = evaluate_retrieval(bundles, pairs, queries, _rankers(settings), settings)
    print(f"corpus {result['corpus']} articles ({len(distractors)} distractors), {result['queries']} queries")
    for name, fig in result["rankers"].items():
        print(f"{name}")
        for lang, f in [("all", fig), *fig["by_relation"].items(), *fig["by_lang"].items()]:
            print(
                f"  {lang:16s} queries {f['queries']:5d}  recall@1 {f['recall@1']:.4f}  "
                f"(story {f['recall@1_story']:.4f})  recall@4 {f['recall@4']:.4f}  mrr@10 {f['mrr@10']:.4f}  "
                f"ndcg@10 {f['ndcg@10']:.4f}"
            )
    _write_json(args.json, result)
    return 0


def run_evaluate_lists(args: argparse.Namespace) -> int:
    """`related-articles evaluate lists`."""
    from embeddings.evaluation.retrieval import list_statistics, sample_ids
    from embeddings.index.publish import load_current
    from embeddings.ranking.finder import RelatedFinder

    settings = settings_from(args)
    configure_logging(settings.log_level)
    bundle = load_current(settings.bundles)
    try:
        result: dict[str, Any] = {"bundle": bundle.version, "rankers": {}}
        for ranker in _rankers(settings):
            finder = RelatedFinder.from_settings(bundle, ranker.scorer, settings, ranker.plain)
            ids = sample_ids(bundle, args.queries or None, args.seed)
            stats = list_statistics(
                finder, ids, args.k, ranker.policy, args.story_threshold, settings.reprint_containment
            )
            result["rankers"][ranker.name] = stats
            print(ranker.name)
            for key, value in stats.items():
                if key == "other_language_by_query_language":
                    for lang, fig in value.items():
                        print(
                            f"  under {lang} articles: other-language share {fig['share']} of "
                            f"{fig['results']} results; {fig['lists_filled_in']} of {fig['lists']} lists "
                            "filled in from other languages"
                        )
                else:
                    print(f"  {key}: {value}")
    finally:
        bundle.close()
    _write_json(args.json, result)
    return 0


def _print_correlations(title: str, result: dict[str, Any]) -> None:
    print(title)
    for name, fig in [("all", result), *result.get("by_relation", {}).items(), *result["by_lang"].items()]:
        figures = f"pearson {fig['pearson']:.4f}  spearman {fig['spearman']:.4f}"
        print(f"  {name:16s} pairs {fig['pairs']:5d}  {figures}")


def _write_json(path: Path | None, result: dict[str, Any]) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _pair_cosines(settings: Settings, pairs: list[Any], signals: list[str]) -> dict[str, Any]:
    from embeddings.evaluation.pairs import pair_cosines

    encoders = load_signal_encoders(settings, [s for s in signals if s != LEX])
    return pair_cosines(pairs, encoders, signals, evaluation_cache(settings), settings.batch_size)


def run_evaluate_pairs(args: argparse.Namespace) -> int:
    """`related-articles evaluate pairs`."""
    from embeddings.evaluation.pairs import evaluate_pairs, read_pairs

    settings = settings_from(args)
    configure_logging(settings.log_level)
    scorer = load_scorer(settings.scorer)
    pairs = read_pairs(args.input)
    result = evaluate_pairs(pairs, _pair_cosines(settings, pairs, list(scorer.signals)), scorer)
    _print_correlations(f"scorer {scorer.name}", result)
    for name, fig in result["signals"].items():
        print(f"  signal {name:5s} alone: pearson {fig['pearson']:.4f}  spearman {fig['spearman']:.4f}")
    _write_json(args.json, result)
    return 0


def run_evaluate_fit(args: argparse.Namespace) -> int:
    """`related-articles evaluate fit`."""
    from embeddings.evaluation.pairs import FITS, correlations, cross_validate, read_pairs

    settings = settings_from(args)
    configure_logging(settings.log_level)
    default = (*SIGNALS, LEX) if args.kind == "ranking" else SIGNALS
    signals = [s.strip() for s in (args.signals or ",".join(default)).split(",") if s.strip()]
    if MAIN not in signals:
        signals.insert(0, MAIN)
    pairs = read_pairs(args.input)
    name = args.name or f"{args.kind}-{'-'.join(signals)}"
    if args.kind == "ranking":
        return _fit_ranking(args, settings, pairs, signals, name)
    if LEX in signals:
        raise InputError("the lexical signal needs a corpus for its weights: use it with --kind ranking")
    cosines = _pair_cosines(settings, pairs, signals)
    config = FITS[args.kind](pairs, cosines, name, args.input.name)
    save_scorer(config, args.out)
    cv = cross_validate(pairs, cosines, args.kind, args.folds)
    fitted = correlations(pairs, Scorer(config).combine(cosines))
    _print_correlations(f"cross-validated ({args.folds} folds, groups kept together)", cv)
    _print_correlations("fitted on all pairs (not an estimate of quality)", fitted)
    print(f"scorer written to {args.out}")
    _write_json(args.json, {"cross_validated": cv, "fitted": fitted, "scorer": config.model_dump()})
    return 0


def _fit_ranking(
    args: argparse.Namespace, settings: Settings, pairs: list[Any], signals: list[str], name: str
) -> int:
    from embeddings.evaluation.commands import fit_ranking_scorer, retrieval_bundle

    settings = settings.model_copy(update={"embedding_cache": evaluation_cache(settings)})
    distractors = _distractors(args)
    with retrieval_bundle(settings, pairs, distractors, signals, args.input) as (bundles, queries):
        config, figures = fit_ranking_scorer(
            bundles, pairs, queries, signals, settings, name, args.input.name, args.folds
        )
    config.fitted_on["distractors"] = len(distractors)
    save_scorer(config, args.out)
    cv = figures["cross_validated"]
    print(f"cross-validated ({args.folds} folds, groups kept together), {len(queries)} queries")
    lists = cv["lists"]
    for lang, fig in [("all", lists), *lists["by_relation"].items(), *lists["by_lang"].items()]:
        figures_line = f"recall@1 {fig['recall@1']:.4f}  mrr@10 {fig['mrr@10']:.4f}"
        print(f"  lists {lang:16s} queries {fig['queries']:5d}  {figures_line}")
    _print_correlations("  pairs", cv["pairs"])
    for signal, fig in figures["baselines"].items():
        alone = fig["lists"]
        relations = "  ".join(f"{r} {f['recall@1']:.4f}" for r, f in alone["by_relation"].items())
        print(
            f"  {signal} alone: recall@1 {alone['recall@1']:.4f}  mrr@10 {alone['mrr@10']:.4f}  ({relations})"
        )
    story, floor = cv["story"], cv["floor"]
    print(
        f"  story threshold {story['threshold']:.2f} (best F0.5 out of fold): precision "
        f"{story['cross_validated']['precision']:.3f}, recall {story['cross_validated']['recall']:.3f}"
    )
    print(
        f"  relatedness floor {floor['floor']}: keeps out {floor['unrelated_below']} of the unrelated pairs, "
        f"{floor['same_story_below']} of the same-story ones"
    )
    print(f"weights, same language {json.dumps({n: round(s.weight, 3) for n, s in config.signals.items()})}")
    if config.across is not None:
        print(f"weights, across languages {json.dumps(config.across.weights)}")
    print(f"scorer written to {args.out}")
    _write_json(args.json, {**figures, "scorer": config.model_dump()})
    return 0


def evaluation_cache(settings: Settings) -> Path:
    """The embedding cache of the evaluation commands, so that reruns embed nothing twice."""
    return settings.embedding_cache or settings.cache_dir / "evaluation-cache.sqlite"


def settings_from(args: argparse.Namespace, *names: str) -> Settings:
    """Settings from the environment, overridden by the command-line options given."""
    keys = ("bundles", "model", "cache_dir", "log_level", "scorer", "backend", *names)
    return load_settings(**{k: getattr(args, k, None) for k in keys})


def run_build(args: argparse.Namespace) -> int:
    """`related-articles build`."""
    settings = settings_from(
        args,
        "skip_invalid",
        "rejects",
        "batch_size",
        "max_seq_length",
        "engine",
        "ray_address",
        "accept_write_log_loss",
    )
    configure_logging(settings.log_level)
    source = args.input or sample_corpus()
    if args.input is None:
        log.info("no --input given: building the sample corpus %s", source)
    report = build_bundle(
        settings,
        source,
        lambda: load_signal_encoders(settings, load_scorer(settings.scorer).dense, os.cpu_count() or 1),
        parse_field_map(args.field_map),
        progress=not args.no_progress,
    )
    print(report.summary())
    return 0


def run_adapt(args: argparse.Namespace) -> int:
    """`related-articles adapt`."""
    from embeddings.articles.readers import read_articles
    from embeddings.articles.text import article_text
    from embeddings.model.adapt import (
        MANY_PAIRS,
        AdaptOptions,
        adapt,
        check_pairs,
        check_training_libraries,
        text_pairs,
    )
    from embeddings.model.encoders import default_model
    from embeddings.settings import DEFAULT_MODEL

    settings = settings_from(args)
    configure_logging(settings.log_level)
    if args.input is None:
        raise InputError(
            "adapt learns from your archive: give it with --input FILE (JSONL or CSV, as `build` reads "
            "them; --field-map for other column names)"
        )
    if settings.model != DEFAULT_MODEL:
        raise InputError(f"adapt adapts the default model, not RELATED_MODEL={settings.model!r}")
    check_training_libraries()  # before reading a large archive
    if not args.input.exists():
        raise InputError(f"{args.input}: no such file or directory")
    read = read_articles(args.input, parse_field_map(args.field_map))
    if read.errors:
        log.warning(
            "%d invalid row(s) of %s left out, the first: %s", len(read.errors), args.input, read.errors[0]
        )
    texts = [article_text(a.title, a.body) for a in read.articles]
    pairs = text_pairs(texts, args.max_articles, args.seed)
    log.info("%d articles read, %d of them to learn from", len(texts), len(pairs))
    check_pairs(pairs)
    if len(pairs) < MANY_PAIRS:
        log.warning("only %d articles to learn from: measure the adapted model before using it", len(pairs))
    if settings.adapter is not None:
        log.info("RELATED_ADAPTER (%s) is set: the new adapter is trained without it", settings.adapter)
    base = settings.model_copy(update={"adapter": None})
    folder, name = default_model(base)
    options = AdaptOptions(
        max_articles=args.max_articles,
        minutes=args.minutes,
        seq_length=args.max_seq_length,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        seed=args.seed,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    result = adapt(folder, name, pairs, settings.bundles / "adapters", options, args.input.name)
    stopped = (
        f", stopped by the time budget at step {result.steps} of {result.planned_steps}"
        if result.stopped_early
        else ""
    )
    print(
        f"adapter {result.fingerprint} written to {result.path}\n"
        f"  learnt from {result.pairs} of {len(texts)} articles in {result.steps} steps, "
        f"{result.seconds / 60:.1f} minutes{stopped}; final mean loss {result.loss:.3f}\n"
        "Next: set it for the build and the service alike, then rebuild (every article is embedded again; "
        "until then the service refuses the bundles built without it):\n"
        f"  export RELATED_ADAPTER={result.path}\n"
        f"  related-articles build --input {args.input} --bundles {settings.bundles}"
        + (f" --field-map {args.field_map}" if args.field_map else "")
        + "\nWithout RELATED_ADAPTER, the model and the bundles stay as they were."
    )
    return 0


def make_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The top-level parser with the batch commands registered."""
    parser = argparse.ArgumentParser(prog="related-articles", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_build(sub)
    add_adapt(sub)
    add_evaluate(sub)
    return parser, sub


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen command; project errors become a message and exit code 1."""
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (RelatedArticlesError, OSError) as exc:  # OSError: a full disk, a read-only mount, no access
        print(f"related-articles {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        what = "settings" if exc.title == Settings.__name__ else exc.title
        print(f"related-articles {args.command}: invalid {what}:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"related-articles {args.command}: interrupted; the published bundle is unchanged",
            file=sys.stderr,
        )
        return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point for the batch commands alone."""
    parser, _ = make_parser()
    return run(parser, argv)
