"""The list cache against lists made anew: an entry a write keeps is the list the new snapshot gives,
for lists that other languages fill in (two passes) as for the others (a differential test, seeded).

A list filled in reports the rows of both passes and admits every language: with the first pass's rows
or languages alone, a write to a row of the fill, or a new article in another language, keeps a stale
entry, and this test fails."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from embeddings.articles.article import Article
from embeddings.index.filters import Filters
from embeddings.live.corpus import LiveCorpus
from embeddings.live.list_cache import ListCache
from embeddings.live.loaded import Loaded
from embeddings.live.writes import delete, puts
from embeddings.ranking.listing import RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer, save_scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX
from tests.support.corpus import build_with, write_jsonl
from tests.support.fakes import HashingEncoder, fake_signals
from tests.support.story import linear_scorer

TOPICS = [f"topic{t} story{t} words{t}" for t in range(10)]
LANGS = ["ar"] * 6 + ["en"] * 3 + ["fr"]  # a few English and French reports per story: their lists fill in
# The lists asked: the default (the article's language, then others), only it, any, and a request's
# languages; a floor that the other stories' articles do not pass, so that many lists come back short.
POLICY = ListPolicy(min_score=0.3, window_days=None)
QUERIES = {
    "default": RelatedQuery(k=6, policy=POLICY),
    "same": RelatedQuery(k=6, policy=POLICY.with_overrides(lang_policy="same")),
    "any": RelatedQuery(k=6, policy=POLICY.with_overrides(lang_policy="any")),
    "fr": RelatedQuery(k=4, filters=Filters(langs=("fr",)), policy=POLICY),
}


def _row(rng: random.Random, ident: str) -> dict[str, Any]:
    topic = rng.randrange(len(TOPICS))
    own = " ".join(f"{ident}w{j}" for j in range(rng.randrange(4, 14)))
    row = {"id": ident, "title": f"{TOPICS[topic]} {ident}", "body": f"{TOPICS[topic]} {own}"}
    if rng.random() > 0.05:  # a few without a language
        row["lang"] = rng.choice(LANGS)
    return row


def _made(loaded: Loaded, ident: str, name: str) -> tuple[bytes, Any]:
    """The list `name` of `ident` as the cache keeps it: a body (its ids, scores and marks), the listing."""
    _, listing = loaded.finder.listing(ident, QUERIES[name])
    body = repr([(h.article.id, round(h.score, 5), h.other_language, h.copies) for h in listing.hits])
    return body.encode(), listing


@pytest.mark.parametrize("seed", [1])
def test_kept_entries_are_the_lists_made_anew(
    tmp_path: Path, make_settings: Callable[..., Settings], seed: int
) -> None:
    rng = random.Random(seed)
    rows = {f"a{i:03d}": _row(rng, f"a{i:03d}") for i in range(160)}  # past the 66 stored neighbours
    # A dense scorer: with the lexical signal, whose candidates no cosine bounds, a write drops every list.
    save_scorer(linear_scorer(None), tmp_path / "scorer.json")
    settings = make_settings(window_days=None, reload_interval=3600, scorer=str(tmp_path / "scorer.json"))
    build_with(settings, write_jsonl(tmp_path / "rows.jsonl", list(rows.values())), HashingEncoder())
    encoders = fake_signals(HashingEncoder())
    scorer = load_scorer(settings.scorer)
    corpus = LiveCorpus(settings, encoders, scorer)
    cache = ListCache(10_000, lexical=LEX in scorer.signals)
    corpus.subscribe(cache.follow)
    corpus.start()
    kept = filled_kept = 0
    try:
        watched = rng.sample(sorted(rows), 24)
        for step in range(20):
            loaded = corpus.snapshot()
            for ident in watched:
                if ident not in rows:
                    continue
                for name in QUERIES:
                    cached = cache.get(loaded.snapshot, (ident, name))
                    body, listing = _made(loaded, ident, name)
                    if cached is not None:
                        assert cached == body, (seed, step, ident, name)
                        kept += 1
                        filled_kept += b"True" in body
                    else:
                        cache.put(loaded.snapshot, (ident, name), body, ident, listing)
            if rng.random() < 0.75 or len(rows) < 100:  # a put: a new article or a replaced one
                ident = rng.choice([*rows, f"n{step:02d}"])
                rows[ident] = _row(rng, ident)
                corpus.write(puts([Article(**rows[ident])], encoders))
            else:
                ident = rng.choice(sorted(rows))
                del rows[ident]
                corpus.write([delete(ident)])
    finally:
        corpus.stop()
    # The cache kept lists across writes, lists filled in from other languages among them.
    assert kept > 250 and filled_kept > 20, (kept, filled_kept)
    print(f"seed {seed}: {kept} kept entries checked, {filled_kept} of them filled in from other languages")
