"""Opening a local HTML file in the system's headless Chromium (Playwright), for tests of pages rewardlab writes.

A page rewardlab writes (a report, the reward-model card) must work offline and call nothing, so the helper records
every request the page makes, every console message and script error, and saves a full-page screenshot a person can
look at. The browser is the system's (``/usr/bin/chromium`` or ``$REWARDLAB_CHROMIUM``); nothing is ever
downloaded. Without one the test module is skipped, unless ``REWARDLAB_REQUIRE_BROWSER`` is set (CI with a browser
installed), where a missing browser is an error.

Usage::

    from browser_helpers import open_file, require_chromium, save_screenshot

    require_chromium()  # at module level: skip (or fail) before any test runs

    def test_page(tmp_path):
        with open_file(path) as opened:
            assert opened.outside_requests() == []
            save_screenshot(opened.page, "card", tmp_path)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("REWARDLAB_CHROMIUM", "/usr/bin/chromium"))
#: where screenshots go when set (e.g. a CI job's artifact folder); else the test's own tmp_path
ARTIFACTS_ENV = "REWARDLAB_TEST_ARTIFACTS"


def require_chromium() -> Path:
    """The browser's path; skips the calling test module when there is none (raises instead when
    ``REWARDLAB_REQUIRE_BROWSER`` is set, so a CI job meant to run browser tests cannot pass by skipping them)."""
    if not CHROMIUM.exists():
        if os.environ.get("REWARDLAB_REQUIRE_BROWSER"):
            raise RuntimeError(f"{CHROMIUM} not found: install it (apt-get install chromium)")
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
    return CHROMIUM


@dataclass
class OpenedPage:
    """A loaded page and what it did while loading: ``requests`` (every URL the page asked for, the file itself and
    any ``data:`` URLs included; Chromium reports a request before its Content-Security-Policy check, so a refused
    one is listed too), ``failed`` (URL -> Chromium's reason, e.g. ``net::ERR_BLOCKED_BY_CSP``), ``console``
    (console messages, e.g. a policy's refusal) and ``errors`` (uncaught script errors)."""

    page: Any  # playwright.sync_api.Page
    url: str
    requests: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """The requests for anything but the file itself and inline ``data:`` URLs, refused or not: what a
        self-contained page must not even try."""
        return [url for url in self.requests if url != self.url and not url.startswith("data:")]

    def unblocked_requests(self) -> list[str]:
        """The outside requests the page's Content-Security-Policy did not refuse (those that may have gone out)."""
        return [url for url in self.outside_requests() if self.failed.get(url) not in ("csp", "net::ERR_BLOCKED_BY_CSP")]


@contextmanager
def open_file(path: str | Path, *, width: int = 1200, height: int = 900) -> Iterator[OpenedPage]:
    """Opens ``path`` as a ``file://`` URL in headless Chromium and waits until it has loaded (images included);
    yields an `OpenedPage` whose lists keep growing while the page is used. The browser closes on exit."""
    from playwright.sync_api import sync_playwright

    url = Path(path).resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(require_chromium()), args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            opened = OpenedPage(page, url)
            page.on("request", lambda request: opened.requests.append(request.url))
            page.on("requestfailed", lambda request: opened.failed.update({request.url: request.failure or "?"}))
            page.on("console", lambda message: opened.console.append(f"{message.type}: {message.text}"))
            page.on("pageerror", lambda error: opened.errors.append(str(error)))
            page.goto(url, wait_until="load")
            yield opened
        finally:
            browser.close()


@contextmanager
def listening_server() -> Iterator[tuple[str, list[str]]]:
    """A plain HTTP server on a free 127.0.0.1 port that answers 404 and records each path asked for; yields
    (base URL, paths). Point a page's would-be outside load at it to prove the load never arrived."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            hits.append(self.path)
            self.send_error(404)

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def artifact_dir(tmp_path: Path) -> Path:
    """``$REWARDLAB_TEST_ARTIFACTS`` (created if needed) when set, else ``tmp_path``."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    """Saves a full-page PNG screenshot of ``page`` as ``<artifact dir>/<name>.png`` and prints where it went
    (``pytest -s`` shows it), so a person can check the layout a test only asserts facts about."""
    path = artifact_dir(tmp_path) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
