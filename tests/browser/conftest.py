"""A real browser (Debian's chromium), the service over the sample bundle in a thread, a publisher's site."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embeddings.model.signals import SignalEncoders
from embeddings.settings import Settings
from service.app import create_app
from tests.support.browser import FOLLOW_UP, KEY, chrome, copy_published, picture, serving, site, unavailable


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless chromium; skipped where it is missing, unless RELATED_REQUIRE_CHROMIUM=1."""
    why = unavailable()
    if why:
        if os.environ.get("RELATED_REQUIRE_CHROMIUM") == "1":  # .ci/run installs it: a skip there is a bug
            pytest.fail(why)
        pytest.skip(why)
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def site_pages() -> dict[str, tuple[str, bytes]]:
    """The publisher's site's pages by path: (content type, body); the tests add theirs."""
    return {"/picture.png": ("image/png", picture())}


@pytest.fixture(scope="session")
def site_port(site_pages: dict[str, tuple[str, bytes]]) -> Iterator[int]:
    """The publisher's site: another origin than the service's (serving `site_pages`)."""
    with site(site_pages) as port:
        yield port


@pytest.fixture(scope="session")
def service(
    browser: Any,
    site_port: int,
    sample_bundles: Path,
    model_cache: Path,
    encoders: SignalEncoders,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The service over a copy of the sample bundle (real models), console on, CORS for the site only.

    `ar-live-1`, with a picture served by the site, is written over it.
    """
    bundles = copy_published(sample_bundles, tmp_path_factory.mktemp("browser") / "bundles")
    settings = Settings(
        bundles=bundles,
        cache_dir=model_cache,
        api_keys=KEY,
        console=True,
        cors_origins=f"http://127.0.0.1:{site_port}",
    )
    with serving(create_app(settings, encoders)) as base:
        article = {**FOLLOW_UP, "image_url": f"http://127.0.0.1:{site_port}/picture.png"}
        written = httpx.put(
            f"{base}/v1/articles/ar-live-1",
            json=article,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=60,
        )
        assert written.status_code == 200, written.text
        yield base
