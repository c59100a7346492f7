"""Writes (puts and deletes) as the write log keeps them, what every log offers, and folding one in."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from embeddings.articles.article import Article
from embeddings.articles.rules import Rules
from embeddings.articles.text import article_text
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.reprints import NO_SIGNATURE, signature

Op = Literal["put", "delete", "rules"]


@dataclass(frozen=True)
class Write:
    """One write: a put (insert or replace) carries the article, its vectors and reprint signature;
    a rules write, the editorial rules of the article's list (empty: cleared)."""

    op: Op
    article_id: str
    article: Article | None = None
    vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    specs: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    signature: np.ndarray = field(default_factory=lambda: NO_SIGNATURE)
    seq: int = 0  # assigned by the log
    rules: Rules | None = None


def puts(articles: Sequence[Article], encoders: SignalEncoders, batch_size: int = 32) -> list[Write]:
    """Puts of `articles`, embedded in batches."""
    texts = [article_text(a.title, a.body) for a in articles]
    vectors = encoders.encode(texts, batch_size=batch_size) if texts else {}
    specs = encoders.specs()
    return [
        Write(
            "put",
            a.id,
            a,
            {name: rows[i] for name, rows in vectors.items()},
            specs,
            signature(texts[i]),
        )
        for i, a in enumerate(articles)
    ]


def delete(article_id: str) -> Write:
    """A delete of `article_id` (recorded even if the id is unknown, so no rebuild brings it back)."""
    return Write("delete", article_id)


def rules_write(article_id: str, rules: Rules) -> Write:
    """A write of the rules of `article_id`'s list (empty rules clear them)."""
    return Write("rules", article_id, rules=rules)


def encode_payload(write: Write) -> str | None:
    """What a log keeps in a write's `article` column: the article's JSON for a put, the rules' for rules."""
    if write.article is not None:
        return write.article.model_dump_json()
    return write.rules.to_json() if write.rules is not None else None


class WriteLog(Protocol):
    """What the service and the build need of a write log (SQLite on one machine, PostgreSQL past it)."""

    name: str  # for messages: a file name, or a URL without its password
    log_id: str | None

    def check(self) -> None:
        """Raise WriteLogLostError if the log was removed or replaced under the service."""

    def append(self, writes: Sequence[Write]) -> list[Write]:
        """Write `writes` in one transaction; return them with their sequence numbers once durable."""
        ...

    def data_version(self) -> int:
        """A number that changes whenever any process commits writes (cheap: asked per request)."""
        ...

    def last_seq(self) -> int:
        """The highest sequence number the log has given (0 when none): compaction never lowers it."""
        ...

    def number_after(self, seq: int) -> None:
        """Number the next writes after `seq` at least (sequence numbers are never reused)."""

    def folding(self) -> tuple[int, list[Write]]:
        """The last sequence number and the last write of each id (and of its rules) up to it, at once."""
        ...

    def read(self, after: int = 0) -> list[Write]:
        """The writes after sequence number `after`, in order."""
        ...

    def compact(self) -> int:
        """Drop the writes a later write of the same id supersedes; return how many."""
        ...

    def close(self) -> None:
        """Release the log's connections."""


# A rules write supersedes only the rules of its article; a put or a delete, only the article.
SAME_KIND = "(l.op = 'rules') = (w.op = 'rules')"
LAST_OF_EACH = "SELECT max(seq) FROM {writes} WHERE seq <= {through} GROUP BY id, op = 'rules'"


def encode_vectors(write: Write) -> list[tuple[str, str, bytes]]:
    """(signal, spec as JSON, float32 bytes) of each of a put's vectors, as a log stores them."""
    return [
        (name, json.dumps(write.specs[name], sort_keys=True), np.asarray(v, np.float32).tobytes())
        for name, v in write.vectors.items()
    ]


def encode_signature(write: Write) -> bytes | None:
    """A put's reprint signature as a log stores it (None for a delete)."""
    return np.asarray(write.signature, dtype=np.uint32).tobytes() if write.article else None


def decode(
    rows: Iterable[tuple[int, str, str, str | None, bytes | None]],
    vector_rows: Iterable[tuple[int, str, str, bytes]],
) -> list[Write]:
    """Writes from a log's rows (seq, op, id, article JSON, signature) and vector rows, in row order."""
    vectors: dict[int, dict[str, np.ndarray]] = {}
    specs: dict[int, dict[str, dict[str, Any]]] = {}
    for seq, name, spec, blob in vector_rows:
        vectors.setdefault(seq, {})[name] = np.frombuffer(bytes(blob), dtype=np.float32)
        specs.setdefault(seq, {})[name] = json.loads(spec)
    out = []
    for seq, op, ident, article, mark_bytes in rows:
        if op == "rules":
            out.append(Write("rules", ident, seq=seq, rules=Rules.from_json(article or "{}")))
            continue
        if op == "delete" or article is None:
            out.append(Write("delete", ident, seq=seq))
            continue
        stored = Article.model_validate_json(article)
        mark = np.frombuffer(bytes(mark_bytes or b""), dtype=np.uint32)
        if mark.shape != NO_SIGNATURE.shape:  # logged by a version whose signatures were other
            mark = signature(article_text(stored.title, stored.body))
        out.append(Write("put", ident, stored, vectors.get(seq, {}), specs.get(seq, {}), mark, seq))
    return out


@dataclass(frozen=True)
class Folded:
    """An input's articles with the write log applied, and what the log changed."""

    articles: list[Article]
    through: int  # the last sequence number folded in
    log_id: str | None  # which log: a new log numbers its writes from 1 again
    puts: list[Write]  # the last put of each id (their vectors can seed the embedding cache)
    deletes: int
    rules: dict[str, Rules] = field(default_factory=dict)  # the lists' editorial rules, by article id


def fold(articles: Sequence[Article], log: WriteLog | None) -> Folded:
    """Apply the log's last write of each id to `articles`: puts replace or add, deletes remove."""
    if log is None:
        return Folded(list(articles), 0, None, [], 0)
    through, last = log.folding()
    latest = {w.article_id: w for w in last if w.op != "rules"}
    rules = {w.article_id: w.rules for w in last if w.op == "rules" and w.rules}
    out = [latest[a.id].article if a.id in latest else a for a in articles]
    seen = {a.id for a in articles}
    out += [w.article for ident, w in latest.items() if ident not in seen]
    kept = [a for a in out if a is not None]  # deletes leave None behind
    puts = [w for w in latest.values() if w.op == "put"]
    return Folded(kept, through, log.log_id, puts, len(latest) - len(puts), rules)
