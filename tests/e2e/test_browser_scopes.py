"""Scopes as a person sees them in a real browser (headless chromium via Playwright).

Demo users (quotaflow/seed_data/users.csv): head.east is the East region head (locale zh);
sales.p0001 is a salesperson (locale en) in team EAST-T1, seeing only themself.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_support import sign_in, switch_language, translated
from playwright.sync_api import Page, expect

NOT_FOUND = "This page does not exist or is outside your scope."


def main_nav(page: Page) -> Any:
    return page.locator("header nav a")


def test_region_head_sees_own_region_and_not_another(page: Page) -> None:
    sign_in(page, "head.east")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")  # head.east's own locale

    root = page.get_by_test_id("scope-root")
    expect(root).to_have_count(1)
    expect(root).to_have_text("华东")
    root.click()
    expect(page).to_have_url(re.compile(r"/org/EAST$"))
    expect(page.get_by_test_id("unit-name")).to_contain_text("华东")
    expect(page.get_by_test_id("unit-name")).to_contain_text("EAST")

    # The tree: opening EAST fetches its teams with htmx, without a page load.
    page.goto("/org")
    page.evaluate("window.__no_reload = true")
    tree = page.get_by_role("tree")
    expect(tree.get_by_role("link", name="华东")).to_be_visible()
    expect(page.locator('a[href="/org/EAST-T1"]')).to_have_count(0)
    # Click the summary beside its link (the link itself would open the unit's page).
    tree.locator("summary", has=page.locator('a[href="/org/EAST"]')).locator(".muted").click()
    team = page.locator('a[href="/org/EAST-T1"]')
    expect(team).to_be_visible()
    expect(team).to_have_text("上海1组")
    assert page.evaluate("window.__no_reload") is True, "the page reloaded instead of swapping in the teams"

    # Another region by URL: the same 404 as a unit that does not exist.
    response = page.goto("/org/WEST")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("unit-name")).to_have_count(0)
    expect(page.locator("main h1")).to_contain_text("404")
    expect(page.locator("main")).to_contain_text(translated(NOT_FOUND, "zh"))
    assert "西部" not in page.content()  # WEST's name is not leaked

    api = page.request.get("/api/v1/units/WEST")
    assert api.status == 404
    assert api.json()["error"]["code"] == "not_found"
    assert page.request.get("/api/v1/units/EAST").status == 200


def test_salesperson_sees_only_themself(page: Page) -> None:
    sign_in(page, "sales.p0001")
    expect(page.get_by_test_id("scope-root")).to_have_count(1)

    page.goto("/org")
    roots = page.locator("ul.tree > li")
    expect(roots).to_have_count(1)
    expect(roots.first).to_contain_text("P0001")
    expect(roots.first.get_by_role("link", name="Cheng Chenlei")).to_be_visible()

    # A colleague in the same team, their own team above them and another team: all absent.
    for code in ("P0002", "EAST-T1", "EAST-T2"):
        response = page.goto(f"/org/{code}")
        assert response is not None and response.status == 404, code
        expect(page.get_by_test_id("unit-name")).to_have_count(0)
        expect(page.locator("main")).to_contain_text(NOT_FOUND)

    response = page.goto("/org/P0001")
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("unit-name")).to_contain_text("Cheng Chenlei")


def test_language_follows_the_user_and_the_switch(page: Page) -> None:
    sign_in(page, "head.east")  # the browser asks for en-US, the user's setting says zh
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "zh-CN")
    nav = main_nav(page)
    expect(nav.nth(1)).to_have_text("组织")  # "Organisation" in the zh catalogue
    expect(page.locator('header button[name=lang][value="zh"]')).to_have_attribute("aria-pressed", "true")

    switch_language(page, "en")
    expect(page).to_have_url(re.compile(r"/$"))  # back on the page it was sent from
    expect(nav.nth(1)).to_have_text("Organisation")
    expect(page.locator('header button[name=lang][value="en"]')).to_have_attribute("aria-pressed", "true")

    page.goto("/org/EAST")  # the choice lasts for the session
    expect(html).to_have_attribute("lang", "en")
    expect(page.get_by_test_id("unit-name")).to_contain_text("East")

    switch_language(page, "zh")
    expect(page).to_have_url(re.compile(r"/org/EAST$"))
    expect(page.get_by_test_id("unit-name")).to_contain_text("华东")


def test_wrong_password_stays_on_login(page: Page) -> None:
    page.goto("/login")
    page.fill("#username", "head.east")
    page.fill("#password", "not-the-password")
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as sent:
        page.locator("main form button[type=submit]").click()
    assert sent.value.status == 401
    expect(page).to_have_url(re.compile(r"/login$"))
    # Signed out, the browser's en-US decides the language.
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.locator("#password")).to_have_value("")
    expect(page.get_by_test_id("who")).to_have_count(0)


@pytest.mark.usefixtures("inputs_open")
def test_region_head_edits_an_input_in_scope(page: Page) -> None:
    sign_in(page, "head.east")
    page.goto("/org/EAST-T1")
    switch_language(page, "en")
    field = page.locator("#attr-product_fit")
    expect(field).to_be_editable()
    original = field.input_value()
    save = page.get_by_role("button", name="Save inputs")

    def save_value(value: str) -> None:
        field.fill(value)
        save.click()
        expect(page.locator(".flash.success")).to_have_text("Saved.")
        expect(page).to_have_url(re.compile(r"/org/EAST-T1\?period="))
        page.reload()
        expect(page.locator(".flash")).to_have_count(0)  # the message is shown once
        expect(page.locator("#attr-product_fit")).to_have_value(value)

    save_value("71.25")
    # Put the seed value back for whatever reads it later in the same database.
    save_value(original)
