"""The live corpus against a fresh build: random writes, deletes, rules and rebuilds applied live give the
lists that a build of the same final state gives (a differential test, seeded)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from embeddings.articles.article import Article
from embeddings.articles.rules import Rules
from embeddings.errors import NotReadyError
from embeddings.index.filters import Filters
from embeddings.live.corpus import Change, LiveCorpus
from embeddings.live.writes import Write, delete, puts, rules_write
from embeddings.ranking.listing import RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals

WORDS = [f"w{i}" for i in range(60)]  # a small vocabulary: articles share words, lists have neighbours


def _row(rng: random.Random, ident: str) -> dict[str, Any]:
    topic = rng.randrange(6)
    words = [f"t{topic}", f"t{topic}x", *rng.sample(WORDS, 5)]
    return {
        "id": ident,
        "title": " ".join(words[:4]) + f" {ident}",
        "body": " ".join(words) + f" {ident}",
        "lang": rng.choice(["ar", "ar", "en", None]),
        "published_at": f"2026-03-{rng.randrange(1, 28):02d}T12:00:00+00:00",
        "listed": rng.random() > 0.1,
    }


def _lists(
    corpus: LiveCorpus, settings: Settings, ids: list[str]
) -> dict[tuple[str, str], list[tuple[str, float, bool]]]:
    """The lists of the articles `ids`, under each language policy: (id, score, other language)."""
    loaded = corpus.snapshot()
    policy = ListPolicy.from_settings(settings)
    queries = {
        "default": RelatedQuery(k=6, policy=policy),
        # A floor that leaves lists short: the article's language first, then the others.
        "filled": RelatedQuery(k=6, policy=policy.with_overrides(min_score=0.3)),
        "same": RelatedQuery(k=6, policy=policy.with_overrides(lang_policy="same", min_score=0.3)),
        "any": RelatedQuery(k=6, policy=policy.with_overrides(lang_policy="any")),
        "en": RelatedQuery(k=4, filters=Filters(langs=("en",)), policy=policy.with_overrides(min_score=0.3)),
    }
    out = {}
    for ident in ids:
        for name, query in queries.items():
            _, listing = loaded.finder.listing(ident, query)
            out[ident, name] = [(h.article.id, round(h.score, 5), h.other_language) for h in listing.hits]
    return out


def _corpus(settings: Settings) -> LiveCorpus:
    corpus = LiveCorpus(settings, fake_signals(HashingEncoder()), load_scorer(settings.scorer))
    corpus.start()
    return corpus


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_changes_give_the_lists_of_a_fresh_build(
    tmp_path: Path, make_settings: Callable[..., Settings], seed: int
) -> None:
    rng = random.Random(seed)
    encoders = fake_signals(HashingEncoder())
    rows = {f"a{i:02d}": _row(rng, f"a{i:02d}") for i in range(30)}
    archive = write_jsonl(tmp_path / "archive.jsonl", list(rows.values()))
    # The dense scorer: a write's lexical row is weighed by its bundle's IDF, which a fresh build refits
    # on every article, so with the lexical signal the two lists differ by that drift alone.
    settings = make_settings(
        bundles=tmp_path / "live", window_days=None, min_score=-1, reload_interval=3600, scorer="cosine"
    )
    build_with(settings, archive, HashingEncoder())
    corpus = _corpus(settings)
    changes: list[Change] = []
    corpus.subscribe(changes.append)
    rules: dict[str, Rules] = {}
    rebuilds = 0
    try:
        for step in range(60):
            listed = sorted(i for i, r in rows.items() if r["listed"])
            roll = rng.random()
            writes: list[Write]
            if roll < 0.45:  # a put: a new article or a replaced one
                ident = rng.choice([*rows, f"n{step:02d}"])
                rows[ident] = _row(rng, ident)
                writes = puts([Article(**rows[ident])], encoders)
            elif roll < 0.65 and len(rows) > 10:
                ident = rng.choice(sorted(rows))
                del rows[ident]
                writes = [delete(ident)]
            elif roll < 0.9:
                ident = rng.choice(sorted(rows))
                others = [i for i in listed if i != ident]
                pins = rng.sample(others, min(2, len(others)))
                blocks = rng.sample([i for i in sorted(rows) if i != ident and i not in pins], 2)
                rules[ident] = Rules(tuple(pins), tuple(blocks))
                writes = [rules_write(ident, rules[ident])]
            else:  # a rebuild from the archive folds the write log in; the watcher would load it
                build_with(settings, archive, HashingEncoder())
                assert corpus.refresh()
                rebuilds += 1
                assert changes[-1].writes is None  # another bundle: listeners start over
                continue
            before = len(changes)
            applied = corpus.write(writes)
            assert [w.article_id for w in applied.logged] == [w.article_id for w in writes]
            assert len(changes) == before + 1 and changes[-1].new is applied.loaded.snapshot
        live = _lists(corpus, settings, sorted(rows))
    finally:
        corpus.stop()

    # The same final state, built fresh: the articles as an archive, the rules written over it.
    fresh = make_settings(
        bundles=tmp_path / "fresh", window_days=None, min_score=-1, reload_interval=3600, scorer="cosine"
    )
    build_with(fresh, write_jsonl(tmp_path / "final.jsonl", list(rows.values())), HashingEncoder())
    again = _corpus(fresh)
    try:
        kept = {i: r for i, r in rules.items() if i in rows and (r.pin or r.block)}
        if kept:
            again.write([rules_write(i, r) for i, r in sorted(kept.items())])
        assert _lists(again, fresh, sorted(rows)) == live
    finally:
        again.stop()
    assert any(live.values())
    assert any(other for hits in live.values() for _, _, other in hits)  # some lists were filled in
    print(f"seed {seed}: {len(rows)} articles, {len(kept)} with rules, {rebuilds} rebuilds")


def test_a_corpus_without_a_bundle_is_not_ready(make_settings: Callable[..., Settings]) -> None:
    corpus = _corpus(make_settings())
    try:
        with pytest.raises(NotReadyError, match="no bundle published yet"):
            corpus.snapshot()
        with pytest.raises(NotReadyError):
            corpus.ready()
    finally:
        corpus.stop()


def test_a_draining_corpus_is_not_ready(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    build_with(settings, write_jsonl(tmp_path / "a.jsonl", [_row(random.Random(0), "a")]), HashingEncoder())
    corpus = _corpus(settings)
    try:
        assert corpus.ready().snapshot.get("a") is not None
        corpus.drain()
        with pytest.raises(NotReadyError, match="shutting down"):
            corpus.ready()
        assert corpus.snapshot().snapshot.get("a") is not None  # reads go on while it drains
    finally:
        corpus.stop()
