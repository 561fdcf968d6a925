"""What-if in a real browser: a region head moves an input and their team targets change
in place (htmx), without a page load. head.north's locale is Chinese."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser_support import sign_in
from plan_support import own_period, readable_by_all
from playwright.sync_api import Page, expect

from quotaflow.services import plans
from quotaflow.store import db
from quotaflow.store import queries as q

TOTAL = 249_500_000
TEAMS = [f"NORTH-T{k}" for k in range(1, 7)]


@pytest.fixture
def plan_id(app: Any) -> int:
    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "admin"), period,
                                 "balanced", TOTAL, "what-if browser test")
        return readable_by_all(db.session, plan.id)  # region heads do not see drafts


def _targets(page: Page) -> dict[str, str]:
    return {code: page.get_by_test_id(f"whatif-{code}").inner_text() for code in TEAMS}


def _some_diff_moved(page: Page, codes: list[str]) -> None:
    selector = ",".join(f'[data-testid="diff-{c}"]' for c in codes)
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].some(e => e.textContent.trim() !== '0')",
        arg=selector)


def test_a_region_head_moves_an_input_and_sees_the_teams_change(page: Page, plan_id: int) -> None:
    sign_in(page, "head.north")
    page.goto(f"/whatif/NORTH?plan={plan_id}")
    expect(page.get_by_test_id("whatif-title")).to_contain_text("华北")
    page.evaluate("window.__no_reload = true")
    before = _targets(page)
    for code in TEAMS:
        expect(page.get_by_test_id(f"diff-{code}")).to_have_text("0")

    # A weight: historical performance up to the top of its band.
    page.get_by_test_id("weight-historical_performance").fill("40")
    _some_diff_moved(page, TEAMS)
    expect(page.locator("#weff-historical_performance")).to_have_text("40%")
    after = _targets(page)
    assert after != before
    total = page.get_by_test_id("whatif-root-target").inner_text()
    assert sum(int(v.replace(",", "")) for v in after.values()) == int(total.replace(",", ""))

    # A person's input: open a team's people, change one, see their row and team move.
    page.get_by_test_id("expand-NORTH-T2").click()
    people = page.get_by_test_id("people-NORTH-T2")
    expect(people).to_be_visible()
    first = people.locator('input[name$=":product_fit"]').first
    name = first.get_attribute("name")
    person = re.match(r"in:([^:]+):product_fit", name).group(1)
    expect(page.get_by_test_id(f"whatif-{person}")).to_be_visible()  # the team opened
    page.get_by_test_id("weight-historical_performance").fill("30")
    expect(page.locator("#weff-historical_performance")).to_have_text("30%")
    first.fill("100")
    expect(page.get_by_test_id("whatif-changes")).to_have_text("1")
    _some_diff_moved(page, [person])

    first.press("Enter")  # Enter does not post the form away from the sandbox
    assert page.evaluate("window.__no_reload") is True, "the page reloaded"

    # Attach to an appeal: a frozen copy is stored; the page links to it.
    page.get_by_test_id("attach").click()
    expect(page).to_have_url(re.compile(r"/whatif/NORTH/evidence/\d+"))
    expect(page.get_by_test_id("evidence-file")).to_contain_text("whatif-NORTH-")
