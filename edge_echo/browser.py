"""Headless Chromium for the report's browser tests and its screenshot (not the runtime).

Debian's chromium package, driven by Playwright (a dev dependency) with no
browser download: where either is missing, why() says so in one line.
"""

from __future__ import annotations

import atexit
import shutil

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
