"""Headless Chromium: the report's browser tests, the README's screenshots, and the page the
JavaScript runtimes run in (jshost).

Debian's chromium package, driven by Playwright (a dev dependency) with no
browser download: where either is missing, why() says so in one line.
"""

from __future__ import annotations

import atexit
import shutil
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser")
# As root in a sandbox, and with nothing that calls home: this machine's network is closed.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions"]


def executable() -> str | None:
    return next((path for path in map(shutil.which, CHROMIUM) if path), None)


def why() -> str | None:
    """None when a headless browser can be started here; else why not, and how to add it."""
    if executable() is None:
        return ("no Chromium here: install Debian's chromium package "
                "(`apt-get install chromium`, as .ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: `pip install playwright` (in the dev extra)"
    return None


def launch(playwright, extra: tuple[str, ...] = ()):
    return playwright.chromium.launch(executable_path=executable(), args=[*ARGS, *extra],
                                      headless=True)


_STARTED: list = []


def playwright():
    """This process's Playwright (sync API), started on first use and stopped at exit: the sync
    API allows one per thread, and the JavaScript runtimes' host (jshost) holds one for the
    whole run, so every other user of a browser in the process shares it."""
    if not _STARTED:
        from playwright.sync_api import sync_playwright

        _STARTED.append(sync_playwright().start())
        atexit.register(_STARTED[0].stop)
    return _STARTED[0]


def screenshot(url: str, png: Path, width: int, height: int, offline: bool = False,
               ready: str | None = None) -> None:
    """A PNG of the page at url (the top width x height CSS pixels), once the selector ready
    matches where one is given: the README's pictures (tools/screenshot, tools/serve-web)."""
    chromium = launch(playwright())
    try:
        page = chromium.new_context(offline=offline,
                                    viewport={"width": width, "height": height}).new_page()
        page.goto(url)
        if ready:
            page.wait_for_selector(ready, timeout=60_000)
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png))
    finally:
        chromium.close()
