"""The write log, SQLite and PostgreSQL alike: order, contents, numbering, compaction, folding."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embeddings.articles.article import Article
from embeddings.articles.rules import Rules
from embeddings.live.sqlite_log import SCHEMA as SQLITE_SCHEMA
from embeddings.live.write_log import LogLocation, open_log
from embeddings.live.writes import delete, fold, puts, rules_write
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.pg_cluster import Cluster

NewLog = Callable[[], LogLocation]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def new_log(request: pytest.FixtureRequest, tmp_path: Path) -> NewLog:
    """Makes the location of a new, empty log of each kind."""
    if request.param == "sqlite":
        names = itertools.count()
        return lambda: tmp_path / f"writes-{next(names)}.sqlite"
    cluster: Cluster = request.getfixturevalue("postgresql")
    return cluster.new_database


def test_the_log_keeps_order_articles_vectors_and_signatures(new_log: NewLog) -> None:
    encoders = fake_signals(HashingEncoder())
    location = new_log()
    log = open_log(location)
    article = Article(id="x/1", title="عنوان الخبر", body="نص", lang="ar", keywords=("a", "b"))
    logged = log.append([*puts([article], encoders), delete("gone")])
    assert [w.seq for w in logged] == [1, 2]
    logged_id = log.log_id
    log.close()

    again = open_log(location)
    read = list(again.read())
    assert [(w.op, w.article_id, w.seq) for w in read] == [("put", "x/1", 1), ("delete", "gone", 2)]
    assert read[0].article == article
    for name, vector in logged[0].vectors.items():
        assert np.array_equal(read[0].vectors[name], vector)
        assert read[0].specs[name] == encoders.encoders[name].spec.as_dict()
    assert np.array_equal(read[0].signature, logged[0].signature)
    assert again.last_seq() == 2 and [w.seq for w in again.read(after=1)] == [2]
    assert again.log_id == logged_id and len(again.log_id) == 32
    again.close()
    other = open_log(new_log())
    assert other.log_id != logged_id  # a new log is another log
    other.close()


def test_fold_applies_the_last_write_of_each_id(new_log: NewLog) -> None:
    encoders = fake_signals(HashingEncoder())
    archive = [Article(id=i, title=f"title {i}") for i in ("a", "b", "c")]
    log = open_log(new_log())
    log.append(puts([Article(id="b", title="b, rewritten")], encoders))
    log.append([delete("c"), delete("d")])
    log.append(puts([Article(id="d", title="d is back"), Article(id="e", title="new")], encoders))
    log.append([delete("e")])
    folded = fold(archive, log)
    assert [(a.id, a.title) for a in folded.articles] == [
        ("a", "title a"),
        ("b", "b, rewritten"),
        ("d", "d is back"),
    ]
    assert folded.through == 6 and folded.deletes == 2 and {w.article_id for w in folded.puts} == {"b", "d"}
    assert fold(archive, None).articles == archive
    log.close()


def test_numbers_are_never_reused_and_compaction_keeps_the_last_of_each_id(new_log: NewLog) -> None:
    location = new_log()
    log = open_log(location)
    assert log.last_seq() == 0
    log.append([delete("a"), delete("b"), delete("a")])
    assert log.compact() == 1 and [(w.article_id, w.seq) for w in log.read()] == [("b", 2), ("a", 3)]
    log.number_after(10)  # a bundle folded through #10 of this log: never number a write #10 again
    assert log.last_seq() == 10 and [w.seq for w in log.append([delete("c")])] == [11]
    log.append([delete("c")])
    log.compact()
    assert log.last_seq() == 12  # the compacted #11 is not reused either
    reader = open_log(location, create=False)
    assert reader.folding()[0] == 12 and [w.seq for w in reader.read(after=3)] == [12]
    reader.close()
    log.close()


def test_rules_writes_are_kept_apart_from_the_article_they_rule(new_log: NewLog) -> None:
    log = open_log(new_log())
    log.append([rules_write("a", Rules(("b", "c"), ("d",))), delete("a")])  # the delete keeps a's rules
    log.append([rules_write("b", Rules(("a",))), rules_write("b", Rules())])
    assert log.compact() == 1  # b's first rules, superseded by its second; a's survive a's delete
    folded = fold([Article(id="a", title="t"), Article(id="b", title="u")], log)
    assert [a.id for a in folded.articles] == ["b"] and folded.rules == {"a": Rules(("b", "c"), ("d",))}
    assert next(w.rules for w in log.read() if w.op == "rules") == Rules(("b", "c"), ("d",))
    log.close()


def test_a_log_made_before_rules_writes_takes_them(tmp_path: Path) -> None:
    path = tmp_path / "writes.sqlite"
    with sqlite3.connect(path) as db:  # the schema of a log made by the version before
        db.executescript(SQLITE_SCHEMA.replace("IN ('put', 'delete', 'rules')", "IN ('put', 'delete')"))
        db.execute("INSERT INTO meta VALUES ('log_id', 'old')")
        db.execute("INSERT INTO writes (op, id, written_at) VALUES ('delete', 'x', '2026-01-01')")
    log = open_log(path)
    assert [w.seq for w in log.append([rules_write("y", Rules(("z",)))])] == [2]
    assert [w.op for w in log.read()] == ["delete", "rules"] and log.log_id == "old"
    log.close()
