"""Make docs/screenshot.png: the East region's unit page in Chinese, signed in as head.east.

Runs on its own (no benchmark, no pytest), over a throwaway SQLite database seeded with
the demo company:

    /work/venv/bin/python tests/e2e/make_screenshot.py [output.png]
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support import DEMO_PASSWORD  # noqa: E402


def _e2e_conftest():
    """tests/e2e/conftest.py, for its server and browser launcher (not importable by name)."""
    spec = importlib.util.spec_from_file_location("e2e_conftest", Path(__file__).with_name("conftest.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_helpers = _e2e_conftest()
LiveServer, launch_chromium = _helpers.LiveServer, _helpers.launch_chromium

VIEWPORT = {"width": 1280, "height": 800}


def build_app(workdir: Path):
    """The same steps as the ``app`` fixture in tests/conftest.py."""
    os.environ["QUOTAFLOW_INSTANCE_PATH"] = str(workdir / "instance")
    from quotaflow import create_app
    from quotaflow.i18n import compile_catalogs
    from quotaflow.services.seeding import load_demo
    from quotaflow.store import db
    from quotaflow.store.migrate import upgrade

    compile_catalogs()
    database_url = f"sqlite:///{workdir / 'quotaflow.db'}"
    app = create_app({
        "DATABASE_URL": database_url,
        "SECRET_KEY": "screenshot-only-secret-key",
    })
    upgrade(database_url)
    with app.app_context():
        load_demo(db.session, password=DEMO_PASSWORD)
    return app


def main(output: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="quotaflow-shot-") as tmp:
        app = build_app(Path(tmp))
        with LiveServer(app) as url, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            context = browser.new_context(base_url=url, locale="zh-CN", viewport=VIEWPORT)
            page = context.new_page()
            page.goto("/login")
            page.fill("#username", "head.east")
            page.fill("#password", DEMO_PASSWORD)
            page.locator("main form button[type=submit]").click()
            expect(page.get_by_test_id("scope-root")).to_be_visible()
            page.goto("/org/EAST")
            expect(page.get_by_test_id("unit-name")).to_contain_text("华东")
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
            page.evaluate("document.fonts.ready")
            output.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(output))  # the viewport: 1280x800
            context.close()
            browser.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshot.png")
