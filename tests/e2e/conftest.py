"""Real-browser fixtures: the test app served over HTTP, driven by Debian's headless chromium.

Playwright's own browser download is not used: ``CHROMIUM`` (Debian's package) is
launched instead.  A missing browser is an error, never a skip.

The live server answers from threads of its own, so these tests cannot share the test's
transaction: every test here is ``committing`` (tests/conftest.py) and the server works on
the test's own copy of the seeded database.  Give them function-scoped fixtures.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = os.environ.get("QUOTAFLOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
MISSING_BROWSER = "install Debian's chromium: apt-get install chromium"
E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.committing)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Keep each phase's report on the item (``rep_setup``, ``rep_call``...) for the page fixture."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def launch_chromium(playwright: Any) -> Any:
    """Debian's chromium, headless; fails with an install hint when it is absent."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"chromium not found at {CHROMIUM}: {MISSING_BROWSER}")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


class QuietRequestHandler(WSGIRequestHandler):
    """No access log line per request (errors are still logged)."""

    def log_request(self, *_args: object) -> None:
        pass


class LiveServer:
    """A WSGI app on 127.0.0.1 and a free port, served from a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True,
                                  request_handler=QuietRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(app: Any) -> Iterator[str]:
    """The base URL of the seeded test app, served for the whole session."""
    with LiveServer(app) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        pytest.fail(f"the playwright package is missing ({exc}): pip install -e '.[dev]'", pytrace=False)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: {MISSING_BROWSER}", pytrace=False)
    playwright = sync_playwright().start()
    try:
        try:
            chromium = launch_chromium(playwright)
        except Exception as exc:
            pytest.fail(f"chromium at {CHROMIUM} did not start ({exc}); {MISSING_BROWSER}", pytrace=False)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def browser_locale() -> str:
    """The browser's language (Accept-Language); override in a test module to change it."""
    return "en-US"


@pytest.fixture
def page(browser: Any, live_server: str, browser_locale: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies); a screenshot is kept if the test fails."""
    context = browser.new_context(base_url=live_server, locale=browser_locale,
                                  viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            artifacts = request.config.rootpath / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            try:
                tab.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
            except Exception as exc:  # the page may be gone; the failure itself matters more
                print(f"could not save a screenshot: {exc}")
        context.close()
