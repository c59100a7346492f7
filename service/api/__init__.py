"""The HTTP API, one module per resource, composed here."""

from __future__ import annotations

from fastapi import APIRouter

from service.api import articles, operations, pages, related, rules, search, story


def api_router(console: bool) -> APIRouter:
    """Every route of the service (the console's pages only if `console`)."""
    router = APIRouter()
    # Ids are one path segment, so the order of these does not matter.
    for part in (related, story, rules, articles, search, operations, pages):
        router.include_router(part.router)
    if console:
        router.include_router(pages.console_router)
    return router
