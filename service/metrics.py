"""Prometheus metrics of one app: request latency and errors per route, lists, the loaded bundle."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from embeddings.live.list_cache import ListCache
from embeddings.live.loaded import Loaded

# Milliseconds matter for this endpoint: buckets from 1 ms to 2.5 s.
_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _BundleCollector(Collector):
    """Reads the loaded bundle at scrape time."""

    def __init__(self, loaded: Callable[[], Loaded | None]) -> None:
        self._loaded = loaded

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loaded = self._loaded()
        articles = GaugeMetricFamily(
            "related_index_articles", "Articles served: the bundle's and the writes'."
        )
        age = GaugeMetricFamily("related_bundle_age_seconds", "Seconds since the loaded bundle was built.")
        ready = GaugeMetricFamily("related_bundle_loaded", "1 when a bundle is loaded, else 0.")
        pending = GaugeMetricFamily(
            "related_writes_pending", "Acknowledged writes served from the overlay, waiting for a rebuild."
        )
        ready.add_metric([], 0.0 if loaded is None else 1.0)
        if loaded is not None:
            articles.add_metric([], float(len(loaded.snapshot)))
            created = datetime.fromisoformat(str(loaded.bundle.manifest.get("created_at")))
            age.add_metric([], (datetime.now(UTC) - created).total_seconds())
            pending.add_metric([], float(loaded.snapshot.pending))
        yield from (articles, age, ready, pending)


class _ListCacheCollector(Collector):
    """Reads the list cache's counters at scrape time."""

    def __init__(self, lists: Callable[[], ListCache | None]) -> None:
        self._lists = lists

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        lists = self._lists()
        hits = CounterMetricFamily("related_list_cache_hits", "Related lists answered from the list cache.")
        misses = CounterMetricFamily(
            "related_list_cache_misses", "Related lists made anew (not in the list cache, or it is off)."
        )
        capacity = GaugeMetricFamily("related_list_cache_capacity", "Lists the cache may hold (0: off).")
        if lists is not None:
            hits.add_metric([], float(lists.hits))
            misses.add_metric([], float(lists.misses))
            capacity.add_metric([], float(lists.capacity))
        yield from (hits, misses, capacity)


class Metrics:
    """The app's own registry (one per app, so that test apps do not share counters)."""

    def __init__(
        self, loaded: Callable[[], Loaded | None], lists: Callable[[], ListCache | None] = lambda: None
    ) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "related_request_duration_seconds",
            "Time to answer a request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "related_errors",
            "Responses with status 400 or more.",
            ["route", "status"],
            registry=self.registry,
        )
        self.short_lists = Counter(
            "related_short_lists", "Related lists with fewer results than asked for.", registry=self.registry
        )
        self.writes = Counter(
            "related_writes", "Acknowledged writes, by operation.", ["op"], registry=self.registry
        )
        self.registry.register(_BundleCollector(loaded))
        self.registry.register(_ListCacheCollector(lists))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self.latency.labels(route, method, str(status)).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()
