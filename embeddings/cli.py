"""The command line of the batch side: `related-articles build` (the service adds `serve`)."""

from __future__ import annotations

import argparse
import importlib.resources
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from embeddings.articles import parse_field_map
from embeddings.build import build_bundle
from embeddings.errors import RelatedArticlesError
from embeddings.model import load_encoder
from embeddings.settings import Settings, load_settings

log = logging.getLogger("related_articles")


def sample_corpus() -> Path:
    """The sample corpus shipped with the package (written for the project)."""
    return Path(str(importlib.resources.files("embeddings") / "data" / "sample_articles.jsonl"))


def configure_logging(level: str) -> None:
    """Plain timestamped log lines on stderr."""
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The libraries' own start-up chatter (which CPU kernels load, which prompts exist).
    for noisy in ("faiss.loader", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def add_common(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command (each also settable as RELATED_<NAME>)."""
    parser.add_argument("--bundles", type=Path, help="bundles directory (RELATED_BUNDLES)")
    parser.add_argument("--model", help="'default', a local model folder or a hub id (RELATED_MODEL)")
    parser.add_argument("--cache-dir", type=Path, help="where the converted default model lives")
    parser.add_argument("--log-level", help="debug, info, warning, error")


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
    build.set_defaults(handler=run_build)


def add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `evaluate pairs`."""
    evaluate = sub.add_parser("evaluate", help="measure relatedness quality against human judgements")
    modes = evaluate.add_subparsers(dest="mode", required=True)
    pairs = modes.add_parser("pairs", help="Pearson and Spearman against SemEval-2022 Task 8 scored pairs")
    add_common(pairs)
    pairs.add_argument("--input", type=Path, required=True, help="JSONL of scored pairs")
    pairs.add_argument("--json", type=Path, help="also write the figures here")
    pairs.set_defaults(handler=run_evaluate_pairs)


def run_evaluate_pairs(args: argparse.Namespace) -> int:
    """`related-articles evaluate pairs`."""
    from embeddings.evaluate import evaluate_pairs, read_pairs

    settings = settings_from(args)
    configure_logging(settings.log_level)
    pairs = read_pairs(args.input)
    result = evaluate_pairs(pairs, load_encoder(settings), settings.batch_size)
    for name, fig in [("all", result), *result["by_lang"].items()]:
        print(
            f"{name:6s} pairs {fig['pairs']:5d}  pearson {fig['pearson']:.4f}  spearman {fig['spearman']:.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def settings_from(args: argparse.Namespace, *names: str) -> Settings:
    """Settings from the environment, overridden by the command-line options given."""
    keys = ("bundles", "model", "cache_dir", "log_level", *names)
    return load_settings(**{k: getattr(args, k, None) for k in keys})


def run_build(args: argparse.Namespace) -> int:
    """`related-articles build`."""
    settings = settings_from(args, "skip_invalid", "rejects", "batch_size", "max_seq_length")
    configure_logging(settings.log_level)
    source = args.input or sample_corpus()
    if args.input is None:
        log.info("no --input given: building the sample corpus %s", source)
    report = build_bundle(
        settings,
        source,
        lambda: load_encoder(settings),
        parse_field_map(args.field_map),
        progress=not args.no_progress,
    )
    print(report.summary())
    return 0


def make_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The top-level parser with the batch commands registered."""
    parser = argparse.ArgumentParser(prog="related-articles", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_build(sub)
    add_evaluate(sub)
    return parser, sub


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse `argv` and run the chosen command; project errors become a message and exit code 1."""
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except RelatedArticlesError as exc:
        print(f"related-articles {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        print(f"related-articles {args.command}: invalid settings:\n{exc}", file=sys.stderr)
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
