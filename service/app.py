"""The app factory: settings in, a FastAPI app out; the model and bundle load in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from embeddings import __version__
from embeddings.model import Encoder, load_encoder
from embeddings.settings import Settings
from service.errors import install_error_handlers
from service.routes import router
from service.state import LiveBundle

log = logging.getLogger(__name__)


def create_app(settings: Settings, encoder: Encoder | None = None) -> FastAPI:
    """Build the app; `encoder` is loaded from the settings in the lifespan when not given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import faiss

        # One query at a time over a flat index is fastest single-threaded; requests run in parallel.
        faiss.omp_set_num_threads(settings.search_threads)
        app.state.encoder = encoder or load_encoder(settings)
        live = LiveBundle(
            settings.bundles, app.state.encoder, settings.duplicate_threshold, settings.reload_interval
        )
        live.start()
        app.state.live = live
        if live.loaded is None:
            log.warning("not ready: %s", live.last_error)
        try:
            yield
        finally:
            live.stop()

    app = FastAPI(
        title="related-articles",
        version=__version__,
        summary="Related headlines for news articles, multilingual, Arabic first.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(router)
    return app
