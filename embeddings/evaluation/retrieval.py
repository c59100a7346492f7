"""Evaluate the lists the service returns: retrieval against scored pairs, and list statistics."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from embeddings.articles.article import Article, language_code
from embeddings.articles.readers import read_articles
from embeddings.articles.text import article_text
from embeddings.build.rebuild import build_bundle
from embeddings.errors import BundleCorruptError, InputError
from embeddings.evaluation.pairs import FITS, ScoredPair, fold_of, text_article
from embeddings.evaluation.ranking_fit import RANKING, candidate_pools, fit_ranking
from embeddings.index.bundle import Bundle
from embeddings.index.columns import title_key
from embeddings.index.publish import load_current
from embeddings.model.signals import SignalEncoders
from embeddings.ranking.finder import Hit, Listing, RelatedFinder, RelatedQuery
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.reprints import containment
from embeddings.ranking.scorer import COSINE_SCORER, Scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX, MAIN

RELEVANT_OVERALL = 1.5  # pairs at or below this score are the same story
LIST_DEPTH = 10  # MRR@10 and nDCG@10


@dataclass(frozen=True)
class Ranker:
    """A named way to rank: a scorer, a list policy, and whether it is the plain baseline pipeline."""

    name: str
    scorer: Scorer
    policy: ListPolicy
    plain: bool = False  # see RelatedFinder.from_settings


@dataclass(frozen=True)
class RetrievalQuery:
    """One side of a same-story pair, the other side it should find, and its own versions to set aside.

    Machine-translated rows repeat a pair in other languages: every version of the other side is
    relevant, and the query's own versions (translations of the query itself) are left out of the list.
    """

    query_id: str
    relevant: frozenset[str]
    own_versions: frozenset[str]
    lang: str
    group: str
    across: bool = False  # the other side is in another language: a cross-lingual list finds it
    # Every text the labels make the same story as the query (through any chain of same-story pairs,
    # each pair's versions included): what an unlabelled article ranked above the target may be.
    connected: frozenset[str] = frozenset()


def _side_id(side: tuple[str, str]) -> str:
    return "pair-" + hashlib.sha256(repr(side).encode()).hexdigest()[:16]


def retrieval_corpus(
    pairs: Sequence[ScoredPair], distractors: Sequence[Article]
) -> tuple[list[Article], list[RetrievalQuery]]:
    """Every pair side once (in its language), plus the distractors; and each same-story pair's two
    queries."""
    corpus: dict[str, Article] = {}
    for pair in pairs:
        for side, lang in zip((pair.side1, pair.side2), pair.languages, strict=True):
            corpus.setdefault(_side_id(side), text_article(_side_id(side), side, lang))
    texts = {article_text(a.title, a.body) for a in corpus.values()}
    for article in distractors:
        if article_text(article.title, article.body) not in texts:
            ident = "distractor-" + article.id
            corpus.setdefault(ident, article.model_copy(update={"id": ident}))
    versions: dict[tuple[str, int], set[str]] = defaultdict(set)
    for pair in pairs:
        versions[(pair.group, 1)].add(_side_id(pair.side1))
        versions[(pair.group, 2)].add(_side_id(pair.side2))
    story = _same_story(pairs, versions)
    queries = []
    for pair in pairs:
        if pair.overall > RELEVANT_OVERALL:
            continue
        for this, other in ((1, 2), (2, 1)):
            query = _side_id(pair.side1 if this == 1 else pair.side2)
            relevant = versions[(pair.group, other)] - {query}
            if relevant:
                own = versions[(pair.group, this)] - {query} - relevant
                connected = frozenset(story(query)) - {query} - own
                queries.append(
                    RetrievalQuery(
                        query,
                        frozenset(relevant),
                        frozenset(own),
                        pair.lang,
                        pair.group,
                        pair.across,
                        connected,
                    )
                )
    return list(corpus.values()), queries


def _same_story(
    pairs: Sequence[ScoredPair], versions: dict[tuple[str, int], set[str]]
) -> Callable[[str], set[str]]:
    """The texts the labels join to a text as one story: same-story pairs and versions, transitively."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: str, b: str) -> None:
        parent[root(a)] = root(b)

    for members in versions.values():  # a text and its machine translations
        first, *rest = sorted(members)
        for other in rest:
            join(first, other)
    for pair in pairs:
        if pair.overall <= RELEVANT_OVERALL:
            join(_side_id(pair.side1), _side_id(pair.side2))
    components: dict[str, set[str]] = defaultdict(set)
    for x in list(parent):
        components[root(x)].add(x)
    return lambda x: components.get(root(x), {x}) if x in parent else {x}


def read_distractors(
    path: Path, field_map: dict[str, str], limit: int | None, seed: int = 0, lang: str | None = None
) -> list[Article]:
    """Valid articles of a distractor archive (bad rows are skipped), optionally a seeded sample;
    `lang` is given to those that name no language."""
    articles = read_articles(path, field_map).articles
    if lang:
        try:
            code = language_code(lang)
        except ValueError as exc:
            raise InputError(f"--distractor-lang: {exc}") from exc
        articles = [a if a.lang else a.model_copy(update={"lang": code}) for a in articles]
    if limit is not None and limit < len(articles):
        articles = random.Random(seed).sample(articles, limit)
    return articles


def build_corpus_bundle(
    articles: Sequence[Article],
    settings: Settings,
    encoders_factory: Callable[[], SignalEncoders],
    workdir: Path,
) -> Path:
    """Build a bundle of `articles` with the real build; return its bundles directory."""
    source = workdir / "corpus.jsonl"
    with source.open("w", encoding="utf-8") as handle:
        for article in articles:
            handle.write(article.model_dump_json(exclude_none=True) + "\n")
    bundles = workdir / "bundles"
    local = settings.model_copy(update={"bundles": bundles, "skip_invalid": False})
    build_bundle(local, source, encoders_factory, progress=True)
    return bundles


def _rank_of(listing: Listing, relevant: frozenset[str]) -> int | None:
    """Where the first relevant article is: a republished copy of the query counts as found first."""
    if relevant & set(listing.copies):
        return 1
    for position, hit in enumerate(listing.hits, start=1):
        if hit.article.id in relevant or relevant & set(hit.copies):
            return position
    return None


@dataclass(frozen=True)
class Found:
    """Where a query's list found its labelled target, and where the first text of its story."""

    labelled: int | None
    story: int | None


def _found(listing: Listing, query: RetrievalQuery) -> Found:
    return Found(_rank_of(listing, query.relevant), _rank_of(listing, query.relevant | query.connected))


def _retrieval_figures(found: Sequence[Found]) -> dict[str, Any]:
    ranks = [f.labelled for f in found]
    n = len(ranks)
    found_ranks = [r for r in ranks if r is not None]
    return {
        "queries": n,
        "recall@1": round(sum(r <= 1 for r in found_ranks) / n, 4) if n else None,
        # An unlabelled text of the query's story ranked first counts as found (labels are incomplete).
        "recall@1_story": round(sum(f.story == 1 for f in found) / n, 4) if n else None,
        "recall@4": round(sum(r <= 4 for r in found_ranks) / n, 4) if n else None,
        "mrr@10": round(sum(1.0 / r for r in found_ranks if r <= LIST_DEPTH) / n, 4) if n else None,
        "ndcg@10": round(sum(1.0 / np.log2(r + 1) for r in found_ranks if r <= LIST_DEPTH) / n, 4)
        if n
        else None,
    }


def _ranks(finder: RelatedFinder, queries: Sequence[RetrievalQuery], policy: ListPolicy) -> list[Found]:
    """Each query's list, as the service makes it; a query whose other side is in another language asks
    for a cross-lingual list (lang_policy any), as a site that wants them would."""
    found = []
    for q in queries:
        asked = policy.with_overrides(lang_policy="any") if q.across else policy
        request = RelatedQuery(k=LIST_DEPTH, policy=asked, exclude=tuple(sorted(q.own_versions)))
        found.append(_found(finder.listing(q.query_id, request)[1], q))
    return found


def _figures_by_lang(queries: Sequence[RetrievalQuery], found: Sequence[Found]) -> dict[str, Any]:
    by_lang: dict[str, list[Found]] = defaultdict(list)
    by_relation: dict[str, list[Found]] = defaultdict(list)
    for query, rank in zip(queries, found, strict=True):
        by_lang[query.lang].append(rank)
        by_relation["across languages" if query.across else "same language"].append(rank)
    figures = _retrieval_figures(found)
    figures["by_relation"] = {name: _retrieval_figures(r) for name, r in sorted(by_relation.items())}
    figures["by_lang"] = {lang: _retrieval_figures(r) for lang, r in sorted(by_lang.items())}
    return figures


def bundle_pair_cosines(
    bundle: Bundle, pairs: Sequence[ScoredPair], signals: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each signal's cosine of each pair, read off the evaluation bundle's vectors."""
    rowid = {}
    for pair in pairs:
        for side in (pair.side1, pair.side2):
            ident = _side_id(side)
            if ident not in rowid:
                article = bundle.store.get(ident)
                if article is None:
                    raise BundleCorruptError(f"the evaluation bundle lacks the pair text {ident}")
                rowid[ident] = article.rowid
    first = np.array([rowid[_side_id(p.side1)] for p in pairs])
    second = np.array([rowid[_side_id(p.side2)] for p in pairs])
    out = {}
    for n in signals:
        if n == LEX:
            rows = bundle.lexical_rows(first).multiply(bundle.lexical_rows(second))
            out[n] = np.asarray(rows.sum(axis=1), dtype=np.float64).ravel()
        else:
            out[n] = np.einsum("ij,ij->i", bundle.vectors(n, first), bundle.vectors(n, second)).astype(
                np.float64
            )
    return out


def cross_validated_ranks(
    bundle: Bundle,
    pairs: Sequence[ScoredPair],
    queries: Sequence[RetrievalQuery],
    ranker: Ranker,
    kind: str,
    settings: Settings,
    folds: int = 5,
) -> list[Found]:
    """Ranks from scorers of `kind` fitted without the query's fold (its pair group never in training)."""
    cosines = bundle_pair_cosines(bundle, pairs, ranker.scorer.signals)
    pair_fold = np.array([fold_of(p.group, folds) for p in pairs])
    pools = None
    if kind == RANKING:
        pools = candidate_pools(
            bundle,
            [(q.query_id, q.relevant, q.own_versions) for q in queries],
            ranker.scorer.signals,
            settings.rerank_depth,
        )
    query_across = np.array([q.across for q in queries], dtype=bool)
    ranks: dict[int, Found] = {}
    for f in range(folds):
        held_out = [i for i, q in enumerate(queries) if fold_of(q.group, folds) == f]
        train = pair_fold != f
        if not held_out or not train.any():
            continue
        train_pairs = [p for p, t in zip(pairs, train, strict=True) if t]
        train_cosines = {n: c[train] for n, c in cosines.items()}
        if pools is not None:
            train_queries = np.array([i for i, q in enumerate(queries) if fold_of(q.group, folds) != f])
            config = fit_ranking(
                train_pairs, train_cosines, pools.take(train_queries), query_across[train_queries], f"cv-{f}"
            )
        else:
            config = FITS[kind](train_pairs, train_cosines, f"cv-{f}", "")
        finder = RelatedFinder.from_settings(bundle, Scorer(config), settings, ranker.plain)
        fold_ranks = _ranks(finder, [queries[i] for i in held_out], ranker.policy)
        ranks.update(zip(held_out, fold_ranks, strict=True))
    return [ranks.get(i, Found(None, None)) for i in range(len(queries))]


def evaluate_retrieval(
    bundles: Path,
    pairs: Sequence[ScoredPair],
    queries: Sequence[RetrievalQuery],
    rankers: Sequence[Ranker],
    settings: Settings,
) -> dict[str, Any]:
    """Recall@1, recall@4, MRR@10 and nDCG@10 of each ranker's lists, overall and per language pair.

    A ranker whose scorer was fitted on labelled pairs is also scored by cross-validation: each
    query ranked by a scorer of the same kind fitted on the other folds' pairs.
    """
    bundle = load_current(bundles)
    try:
        result: dict[str, Any] = {"corpus": len(bundle.store), "queries": len(queries), "rankers": {}}
        for ranker in rankers:
            finder = RelatedFinder.from_settings(bundle, ranker.scorer, settings, ranker.plain)
            result["rankers"][ranker.name] = _figures_by_lang(queries, _ranks(finder, queries, ranker.policy))
            kind = str(ranker.scorer.config.fitted_on.get("kind"))
            if (kind in FITS or kind == RANKING) and ranker.scorer.name != COSINE_SCORER:
                ranks = cross_validated_ranks(bundle, pairs, queries, ranker, kind, settings)
                result["rankers"][f"{ranker.name} (cross-validated)"] = _figures_by_lang(queries, ranks)
        return result
    finally:
        bundle.close()


def list_statistics(
    finder: RelatedFinder,
    article_ids: Sequence[str],
    k: int,
    policy: ListPolicy,
    story_threshold: float,
    reprint_containment: float,
) -> dict[str, Any]:
    """What the lists of `article_ids` look like: reprints, languages, date gaps, short lists."""
    with_story_pair = with_reprint_pair = short = same_lang = results = 0
    # By the query's language: lists, results, results in another language, lists filled in by them.
    by_lang: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    gaps: list[float] = []
    for ident in article_ids:
        article, hits = finder.for_article(ident, RelatedQuery(k=k, policy=policy))
        results += len(hits)
        short += len(hits) < k
        same = sum(h.article.lang == article.lang for h in hits)
        same_lang += same
        counts = by_lang[article.lang or "none"]
        counts[0] += 1
        counts[1] += len(hits)
        counts[2] += len(hits) - same
        counts[3] += any(h.other_language for h in hits)
        if article.published_at:
            gaps += [
                abs((h.article.published_at - article.published_at).total_seconds()) / 86400
                for h in hits
                if h.article.published_at
            ]
        with_story_pair += _has_story_pair(finder, hits, story_threshold)
        with_reprint_pair += _has_reprint_pair(finder, hits, reprint_containment)
    n = len(article_ids)
    return {
        "lists": n,
        "k": k,
        "results": results,
        "share_lists_with_two_from_one_story": round(with_story_pair / n, 4) if n else None,
        "share_lists_with_two_reprints": round(with_reprint_pair / n, 4) if n else None,
        "share_results_in_query_language": round(same_lang / results, 4) if results else None,
        # Under the articles of each language: the share of results in another language, and how many
        # lists the policy filled in with them (marked `other_language`: their own had too few).
        "other_language_by_query_language": {
            lang: {
                "lists": lists,
                "results": total,
                "share": round(other / total, 4) if total else None,
                "lists_filled_in": filled,
            }
            for lang, (lists, total, other, filled) in sorted(by_lang.items())
        },
        "median_age_gap_days": round(median(gaps), 3) if gaps else None,
        "share_lists_shorter_than_k": round(short / n, 4) if n else None,
    }


def _has_story_pair(finder: RelatedFinder, hits: Sequence[Hit], threshold: float) -> bool:
    """Whether two results are versions of one report (same title words, or main cosine >= threshold)."""
    if len(hits) < 2:
        return False
    keys = [title_key(h.article.title) for h in hits]
    if len(set(keys)) < len(keys):
        return True
    vectors = finder.corpus.vectors(MAIN, np.array([h.article.rowid for h in hits]))
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    return bool(similarity.max() >= threshold)


def _has_reprint_pair(finder: RelatedFinder, hits: Sequence[Hit], threshold: float) -> bool:
    """Whether one of two results holds at least `threshold` of the other's text."""
    if len(hits) < 2:
        return False
    signatures = finder.corpus.signatures(np.array([h.article.rowid for h in hits]))
    shared = containment(signatures, signatures)
    return bool(np.triu(shared >= threshold, k=1).any())


def sample_ids(bundle: Bundle, count: int | None, seed: int) -> list[str]:
    """A seeded sample of the bundle's article ids (all of them when `count` is None)."""
    ids = bundle.store.all_ids()
    if count is None or count >= len(ids):
        return ids
    return random.Random(seed).sample(ids, count)
