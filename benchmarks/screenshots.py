"""PNGs of what people see, by headless chromium: the HTML list, the widget on a page, the console.

    python -m benchmarks.screenshots --bundles var/bundles --out docs/screenshots   (make screenshots)

It serves a copy of the published bundle (the demo's own is left as it is) with an Arabic follow-up
written over it, whose picture the publisher's test site serves, and shoots each view in Arabic and
in English.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.support.browser import (
    FOLLOW_UP,
    chrome,
    copy_published,
    picture,
    serving,
    site,
    unavailable,
)
from tests.support.wait import wait_for

KEY = "screenshots"
PAGE = """<!doctype html>
<html lang="{lang}" dir="{dir}"><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
.related {{ --related-accent: #8a1538; margin-top: 2rem; }}</style></head>
<body><article><h1>{title}</h1><p>{lead}</p></article>
<div class="related" {attribute}="{value}" data-k="4"></div>
<script src="{service}/widget.js" defer></script></body></html>
"""
PAGES = {
    "ar": {
        "lang": "ar",
        "dir": "rtl",
        "title": "نجاة محافظ وادي صفا من محاولة اغتيال على طريق السدر",
        "lead": "صفحة ناشر تجريبية: القائمة أدناه يملؤها widget.js من خدمة المقالات ذات الصلة.",
        "attribute": "data-related-article",
        "value": "ar-0006",
    },
    "en": {
        "lang": "en",
        "dir": "ltr",
        "title": "Wadi Safa governor survives gun attack on motorcade",
        "lead": "A publisher's test page: widget.js fills the list below, found by this page's URL.",
        "attribute": "data-related-url",
        "value": "https://gulfobserver.example.com/politics/en-0004?utm_source=newsletter",
    },
}
ARTICLES = {"ar": "ar-0006", "en": "en-0004"}
CONSOLE_READY = ["#related > li", "#story-panel[data-state]"]


def viewport(driver: Any, width: int, height: int) -> None:
    """Set the page's viewport exactly (a headless window's size counts a toolbar's height too)."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def shoot(driver: Any, url: str, ready: list[str], path: Path, width: int = 1200) -> None:
    """Open `url`, wait for every CSS selector of `ready`, and save the whole page as `path`."""
    from selenium.webdriver.common.by import By

    viewport(driver, width, 300)  # the page's own height is measured below
    driver.get(url)
    for selector in ready:
        wait_for(lambda s=selector: driver.find_elements(By.CSS_SELECTOR, s), what=selector)
    height = min(max(int(driver.execute_script("return document.documentElement.scrollHeight")), 300), 2400)
    viewport(driver, width, height)
    # Lazy pictures load once the viewport shows them.
    wait_for(lambda: driver.execute_script("return [...document.images].every(i => i.complete)"))
    driver.save_screenshot(str(path))


def main() -> None:
    """Serve, write the follow-up, shoot every view."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=Path("var/bundles"))
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    why = unavailable()
    if why:
        raise SystemExit(f"screenshots: {why}")
    from embeddings.settings import Settings
    from service.app import create_app

    args.out.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[str, bytes]] = {"/picture.png": ("image/png", picture())}
    with tempfile.TemporaryDirectory() as tmp, site(files) as port:
        bundles = copy_published(args.bundles, Path(tmp) / "bundles")
        settings = Settings(
            bundles=bundles,
            api_keys=KEY,
            console=True,
            cors_origins=f"http://127.0.0.1:{port}",
            accept_write_log_loss=True,  # the copy has no write log: it starts one
        )
        with serving(create_app(settings)) as service:
            article = {**FOLLOW_UP, "image_url": f"http://127.0.0.1:{port}/picture.png"}
            auth = {"Authorization": f"Bearer {KEY}"}
            written = httpx.put(f"{service}/v1/articles/ar-live-1", json=article, headers=auth, timeout=120)
            written.raise_for_status()
            for lang, fields in PAGES.items():
                files[f"/{lang}.html"] = (
                    "text/html; charset=utf-8",
                    PAGE.format(service=service, **fields).encode(),
                )
            driver = chrome()
            try:
                for lang, article_id in ARTICLES.items():
                    shots = [
                        (
                            f"related-{lang}.png",
                            f"{service}/v1/articles/{article_id}/related.html?k=4",
                            ["aside"],
                        ),
                        (
                            f"widget-{lang}.png",
                            f"http://127.0.0.1:{port}/{lang}.html",
                            ["[data-related-state=done]"],
                        ),
                        (f"console-{lang}.png", f"{service}/#article={article_id}", CONSOLE_READY),
                    ]
                    for name, url, ready in shots:
                        shoot(driver, url, ready, args.out / name, width=1400 if "console" in name else 1000)
                        print(args.out / name)
            finally:
                driver.quit()


if __name__ == "__main__":
    main()
