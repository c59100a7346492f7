"""The batch rebuild: read and validate an archive, embed (reusing the cache), write and publish a bundle."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embeddings.articles.readers import ReadResult, input_files, read_articles
from embeddings.articles.text import article_text
from embeddings.build.bundle_writer import write_bundle
from embeddings.build.embed import Engine, embed_signals
from embeddings.errors import BuildError, InvalidArticlesError, WriteLogError
from embeddings.index.bundle import file_sha256
from embeddings.index.lexical_index import LexicalIndex
from embeddings.index.publish import build_lock, new_version, prune
from embeddings.live.binding import check_for_build, published_stamp
from embeddings.live.write_log import log_exists, log_name, open_log
from embeddings.live.writes import WriteLog, fold
from embeddings.model.lexical import LexicalModel
from embeddings.model.lexical import counts as lexical_counts
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.reprints import signatures as reprint_signatures
from embeddings.settings import Settings
from embeddings.vectors import LEX

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build read, indexed, rejected and how long it took."""

    version: str
    path: str
    read: int
    indexed: int
    rejected: int
    embedded: int  # distinct texts embedded by this build
    reused: int  # articles whose vector was already in the cache
    seconds: float
    rejects_file: str | None

    def summary(self) -> str:
        """One line for people."""
        extra = f", rejects in {self.rejects_file}" if self.rejects_file else ""
        return (
            f"read {self.read}, indexed {self.indexed}, rejected {self.rejected}{extra}; "
            f"embedded {self.embedded} texts, {self.reused} articles from the cache; "
            f"bundle {self.version} published in {self.seconds:.1f}s"
        )


def _input_checksum(input_path: Path) -> dict[str, Any]:
    files = input_files(input_path)
    sums = {f.name: file_sha256(f) for f in files}
    combined = (
        sums[files[0].name] if len(files) == 1 else hashlib.sha256(json.dumps(sums).encode()).hexdigest()
    )
    return {"name": input_path.name, "files": sums, "sha256": combined}


def _write_rejects(path: Path, result: ReadResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in result.rejected_rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


@contextlib.contextmanager
def _engine(settings: Settings, version: str, progress: bool) -> Iterator[Engine | None]:
    """The configured engine, started for this build and stopped after it (None: this process)."""
    if settings.engine == "local":
        yield None
        return
    from embeddings.build.ray_engine import RayEngine

    with RayEngine(settings, version, progress) as engine:
        yield engine


def lexical_index(texts: list[str]) -> LexicalIndex:
    """The lexical rows of a build's texts, weighted by an IDF fitted on those very texts."""
    started = time.monotonic()
    counts = lexical_counts(texts)
    model = LexicalModel.fit(counts)
    index = LexicalIndex(model.weigh(counts), model.idf)
    log.info("lexical: %d non-zeros in %.1fs", index.rows.nnz, time.monotonic() - started)
    return index


def _bound_log(settings: Settings) -> WriteLog | None:
    """The write log to fold in, read-only; refused when it is not the one the bundles are bound to."""
    bundles, location = settings.bundles, settings.resolved_write_log()
    check_for_build(bundles, location, published_stamp(bundles), settings.accept_write_log_loss)
    if not log_exists(location):
        return None
    try:
        return open_log(location, create=False)
    except WriteLogError:
        if not settings.accept_write_log_loss:
            raise
        log.warning("the write log %s is unusable: building without it (loss accepted)", log_name(location))
        return None


def build_bundle(
    settings: Settings,
    input_path: Path,
    encoders_factory: Callable[[], SignalEncoders],
    field_map: dict[str, str] | None = None,
    progress: bool = True,
) -> BuildReport:
    """Run a whole build and publish its bundle; the live bundle is untouched unless this succeeds."""
    started = time.monotonic()
    bundles = settings.bundles
    version = new_version()
    with build_lock(bundles):
        prune(bundles, settings.keep_bundles)  # clears staging dirs of builds that died
        result = read_articles(input_path, field_map)
        log.info(
            "read %d rows from %s: %d valid, %d invalid",
            result.rows_read,
            input_path,
            len(result.articles),
            len(result.errors),
        )
        rejects_file: Path | None = None
        if result.errors:
            if not settings.skip_invalid:
                raise InvalidArticlesError(str(input_path), result.errors)
            rejects_file = settings.rejects or bundles / "rejects" / f"{version}.jsonl"
            _write_rejects(rejects_file, result)
            for err in result.errors:
                log.warning("skipped %s", err)
        write_log = _bound_log(settings)
        try:
            folded = fold(result.articles, write_log)
        finally:
            if write_log is not None:
                write_log.close()
        articles = folded.articles
        if folded.through:
            log.info(
                "folded in the write log through #%d: %d puts, %d deletes",
                folded.through,
                len(folded.puts),
                folded.deletes,
            )
        if not articles:
            raise BuildError(f"{input_path}: no valid articles to index")

        encoders = encoders_factory()
        with _engine(settings, version, progress) as engine:
            signals, embedded, reused = embed_signals(
                articles, encoders, settings, progress, folded.puts, engine
            )

        texts = [article_text(a.title, a.body) for a in articles]
        lexical = lexical_index(texts)
        final, count = write_bundle(
            settings,
            version,
            articles,
            signals,
            reprint_signatures(texts),
            encoders.main.spec,
            {**encoders.specs(), LEX: LexicalModel.spec()},
            {
                "counts": {
                    "read": result.rows_read,
                    "rejected": len(result.errors),
                    "embedded": embedded,
                    "reused": reused,
                },
                "input": _input_checksum(input_path),
                # The service replays the logged writes after this one over the bundle.
                "writes": {
                    "log_id": folded.log_id,
                    "folded_through": folded.through,
                    "puts": len(folded.puts),
                    "deletes": folded.deletes,
                },
                "engine": settings.engine,
                "lexical": {"nonzeros": int(lexical.rows.nnz)},
                "build_seconds": round(time.monotonic() - started, 3),
            },
            lexical,
            folded.rules,
        )

    report = BuildReport(
        version=version,
        path=str(final),
        read=result.rows_read,
        indexed=count,
        rejected=len(result.errors),
        embedded=embedded,
        reused=reused,
        seconds=round(time.monotonic() - started, 3),
        rejects_file=str(rejects_file) if rejects_file else None,
    )
    log.info("build summary: %s", json.dumps(asdict(report)))
    return report
