"""The app factory: settings in, a FastAPI app out; the model and bundle load in the lifespan."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from types import FrameType

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from embeddings import __version__
from embeddings.errors import ModelError, NotReadyError
from embeddings.live.corpus import LiveCorpus
from embeddings.live.list_cache import ListCache
from embeddings.live.loaded import Loaded
from embeddings.live.lookup import UrlFinder
from embeddings.model.signals import SignalEncoders, load_signal_encoders
from embeddings.ranking.policy import ListPolicy
from embeddings.ranking.scorer import load_scorer
from embeddings.settings import Settings
from embeddings.vectors import LEX
from service.api import api_router
from service.auth import is_writer
from service.cached_lists import CachedLists
from service.errors import install_error_handlers
from service.guards import SegmentPaths, StrictUtf8
from service.metrics import Metrics
from service.middleware import BodyLimit, RequestContext

log = logging.getLogger(__name__)


def create_app(settings: Settings, encoders: SignalEncoders | None = None) -> FastAPI:
    """Build the app; the scorer's `encoders` are loaded from the settings in the lifespan when not given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import faiss
        import threadpoolctl

        # One query at a time over a flat index is fastest single-threaded; requests run in parallel.
        faiss.omp_set_num_threads(settings.search_threads)
        # The scorer's small matrix products gain nothing from BLAS threads, whose spinning workers
        # tripled the endpoint's 99th percentile over HTTP on 2 cores (33.7 ms against 11.7 ms).
        threadpoolctl.threadpool_limits(limits=settings.search_threads, user_api="blas")
        scorer = load_scorer(settings.scorer)
        app.state.encoders = encoders or load_signal_encoders(settings, scorer.dense)
        missing = set(scorer.dense) - set(app.state.encoders.encoders)
        if missing:
            raise ModelError(f"scorer {scorer.name!r} needs signals without an encoder: {sorted(missing)}")
        app.state.policy = ListPolicy.from_settings(settings)
        corpus = LiveCorpus(settings, app.state.encoders, scorer)
        lists = ListCache(settings.response_cache, lexical=LEX in scorer.signals)
        corpus.subscribe(lists.follow)
        try:
            corpus.start()
        except BaseException:
            corpus.stop()  # the log and the watcher go with a start that failed
            raise
        app.state.corpus, app.state.lists = corpus, lists
        restore = _drain_on_signals(corpus)
        try:
            corpus.snapshot(catch_up=False)
        except NotReadyError as exc:
            log.warning("not ready: %s", exc)
        try:
            yield
        finally:
            restore()
            corpus.stop()

    app = FastAPI(
        title="related-articles",
        version=__version__,
        summary="Related headlines for news articles, multilingual, Arabic first.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics(partial(_served, app), lambda: getattr(app.state, "lists", None))
    app.state.urls = UrlFinder()  # the bundle's URLs, hashed at the first lookup by URL
    install_error_handlers(app)
    app.include_router(api_router(settings.console))
    app.add_middleware(SegmentPaths)
    app.add_middleware(StrictUtf8)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        writer_limit=settings.max_write_bytes,
        is_writer=partial(is_writer, settings),
    )
    # Inside CORS (a cached answer gets its headers too), outside the rest: a hit skips routing.
    app.add_middleware(CachedLists, state=app.state)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )
    # Outermost: every answer, CORS preflights and body-limit refusals included, gets its request id.
    app.add_middleware(RequestContext, metrics=app.state.metrics)
    return app


def _served(app: FastAPI) -> Loaded | None:
    """The snapshot served (for the metrics), or None."""
    corpus: LiveCorpus | None = getattr(app.state, "corpus", None)
    try:
        return None if corpus is None else corpus.snapshot(catch_up=False)
    except NotReadyError:
        return None


def _drain_on_signals(corpus: LiveCorpus) -> Callable[[], None]:
    """From the first SIGTERM or SIGINT, readiness fails, then the server's own handler runs.

    The server keeps answering the connections it has while it drains (a worker whose parent was
    killed, too): without this, their /readyz said ready until the end. Returns the undo.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals are the main thread's (a test client runs the app in another)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        corpus.drain()
        then = previous[signal.Signals(sig)]
        if callable(then):
            then(sig, frame)
        else:  # the default action, as if this handler were not there
            signal.signal(sig, then or signal.SIG_DFL)
            signal.raise_signal(sig)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, then in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, then)

    return restore
