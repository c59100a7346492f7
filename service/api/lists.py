"""What the list routes share: the related options as one dependency, a list made as the JSON route makes it,
and the article found by its URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from embeddings.articles.article import MAX_URL_LENGTH
from embeddings.articles.urls import is_web_url
from embeddings.errors import InvalidQueryError, UrlNotFoundError
from embeddings.index.filters import Filters
from embeddings.index.store import StoredArticle
from embeddings.live.loaded import Loaded
from embeddings.live.lookup import UrlFinder
from embeddings.ranking.finder import RelatedQuery
from embeddings.ranking.listing import Listing
from embeddings.ranking.policy import ListPolicy
from embeddings.settings import Settings
from service.deps import ExcludeDep, ExplainDep, FiltersDep, KDep, PolicyDep, excluded_ids
from service.metrics import Metrics
from service.schemas import ArticleRef, ListRules, RelatedItem, RelatedResponse


@dataclass(frozen=True)
class ListOptions:
    """The options of a related list, as the query string gave them."""

    filters: Filters
    policy: ListPolicy
    k: int | None
    exclude: tuple[str, ...]
    explain: bool

    def query(self, settings: Settings) -> RelatedQuery:
        """The finder's query, as `GET /v1/articles/{id}/related` makes it."""
        return RelatedQuery(
            k=self.k or settings.default_k, filters=self.filters, exclude=self.exclude, policy=self.policy
        )


async def _options(
    filters: FiltersDep,
    policy: PolicyDep,
    k: KDep = None,
    exclude: ExcludeDep = None,
    explain: ExplainDep = False,
) -> ListOptions:
    return ListOptions(filters, policy, k, excluded_ids(exclude), explain)


def related_list(
    loaded: Loaded, settings: Settings, metrics: Metrics, article_id: str, options: ListOptions
) -> tuple[StoredArticle, Listing, RelatedResponse]:
    """The article, its listing and the JSON route's answer for it."""
    query = options.query(settings)
    article, listing = loaded.finder.listing(article_id, query)
    if len(listing.hits) < query.k:
        metrics.short_lists.inc()
    response = RelatedResponse(
        article=ArticleRef(id=article.id, title=article.title, url=article.url, copies=list(listing.copies)),
        related=[RelatedItem.from_hit(h, options.explain) for h in listing.hits],
        bundle=loaded.bundle.version,
        scorer=loaded.finder.scorer.name,
        rules=_rules(loaded, article.id) if options.explain else None,
    )
    return article, listing, response


def _rules(loaded: Loaded, article_id: str) -> ListRules:
    """The rules `article_id`'s list was made with, as explain reports them."""
    rules = loaded.snapshot.rules_for(article_id)
    if rules is None:
        return ListRules(pin=[], block=[])
    pins = [i for i in rules.pin if (found := loaded.snapshot.get(i)) is not None and found.listed]
    return ListRules(pin=pins, block=list(rules.block))


async def _url_finder(request: Request) -> UrlFinder:
    finder: UrlFinder = request.app.state.urls
    return finder


UrlQuery = Annotated[
    str,
    Query(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="The article's address (http or https), compared canonically: scheme and host case, "
        "default port, trailing slash, fragment and tracking parameters (utm_*, fbclid, gclid, ...) aside.",
    ),
]


def article_at(finder: UrlFinder, loaded: Loaded, url: str) -> StoredArticle:
    """The live article at `url`, or UrlNotFoundError (InvalidQueryError for what is no web address)."""
    if not is_web_url(url):
        raise InvalidQueryError(f"url must be an absolute http:// or https:// address, got {url[:200]!r}")
    article = finder.find(loaded.snapshot, url)
    if article is None:
        raise UrlNotFoundError(url[:300])
    return article


OptionsDep = Annotated[ListOptions, Depends(_options)]
UrlFinderDep = Annotated[UrlFinder, Depends(_url_finder)]
