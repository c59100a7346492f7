"""The write log: order, contents, and folding it into a build."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embeddings.articles.article import Article
from embeddings.live.write_log import WriteLog, delete, fold, puts
from tests.fakes import HashingEncoder, fake_signals


def test_the_log_keeps_order_articles_vectors_and_signatures(tmp_path: Path) -> None:
    encoders = fake_signals(HashingEncoder())
    log = WriteLog(tmp_path / "writes.sqlite")
    article = Article(id="x/1", title="عنوان الخبر", body="نص", lang="ar", keywords=("a", "b"))
    logged = log.append([*puts([article], encoders), delete("gone")])
    assert [w.seq for w in logged] == [1, 2]
    logged_id = log.log_id
    log.close()

    again = WriteLog(tmp_path / "writes.sqlite")
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
    assert WriteLog(tmp_path / "other.sqlite").log_id != logged_id  # a new log is another log


def test_fold_applies_the_last_write_of_each_id(tmp_path: Path) -> None:
    encoders = fake_signals(HashingEncoder())
    archive = [Article(id=i, title=f"title {i}") for i in ("a", "b", "c")]
    log = WriteLog(tmp_path / "writes.sqlite")
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
