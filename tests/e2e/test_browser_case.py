"""The case's promise, end to end in a real browser, with no code and no JSON:

an HRBP adds "cross-border service capability" (跨境服务能力) as a sixth factor at 10%
with a new input field, the other weights rebalance, the impact on the current plan is
shown, the HRBP activates it; the East region head fills the new input through the
generated form; the next plan differs and a person's explanation lists the new factor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import sign_in, switch_language
from playwright.sync_api import Page, expect
from sqlalchemy import select

from quotaflow.services import specs
from quotaflow.store import db
from quotaflow.store.models import OrgUnit, Plan, PlanUnit
from quotaflow.store.queries import unit_by_code

# Below what the units' upper bounds can take, so the factors, not the bounds, decide.
TOTAL = "200000000"


@pytest.fixture
def restore_active_model(app: Any) -> Iterator[None]:
    """Tests share one database: the seeded model is active again afterwards."""
    with app.app_context():
        before = specs.active_version(db.session, "factor_model", "default").version
    yield
    with app.app_context():
        if specs.active_version(db.session, "factor_model", "default").version != before:
            specs.activate_version(db.session, "factor_model", "default", before, None)


def save_balanced_plan(page: Page) -> int:
    page.goto("/plans/simulate")
    page.fill("#total", TOTAL)
    page.locator("#simulate-form button[type=submit]").click()
    page.get_by_test_id("save-balanced").click()
    expect(page.get_by_test_id("plan-title")).to_be_visible()
    return int(re.search(r"/plans/(\d+)", page.url).group(1))


def fill_rating(page: Page, code: str, value: str) -> None:
    page.goto(f"/collect/{code}")
    field = page.locator("#f-cross_border_rating")
    expect(field).to_be_visible()
    expect(page.locator("label[for=f-cross_border_rating]")).to_contain_text("Cross-border")
    field.fill(value)
    page.locator("form.collect-form button.primary").click()
    expect(page.locator(".flash.success")).to_be_visible()


def target(app: Any, plan_id: int, code: str) -> int:
    with app.app_context():
        unit = unit_by_code(db.session, code)
        return db.session.scalar(select(PlanUnit.target).where(PlanUnit.plan_id == plan_id,
                                                               PlanUnit.unit_id == unit.id))


@pytest.mark.usefixtures("inputs_open")
def test_cross_border_factor_from_builder_to_explanation(
    page: Page, browser: Any, live_server: str, app: Any, restore_active_model: None
) -> None:
    sign_in(page, "hrbp")
    switch_language(page, "en")
    first_plan = save_balanced_plan(page)

    # The HRBP adds the factor and its input field in the builder.
    page.goto("/builder/")
    page.get_by_test_id("add-factor").click()
    page.fill("#key", "cross_border")
    page.fill("#label_zh", "跨境服务能力")
    page.fill("#label_en", "Cross-border service capability")
    page.select_option("#normalisation", "score")
    page.fill("#field-0-name", "cross_border_rating")
    page.fill("#field-0-label_zh", "跨境服务能力评分")
    page.fill("#field-0-label_en", "Cross-border capability rating")
    page.fill("#field-0-min", "0")
    page.fill("#field-0-max", "100")
    page.fill("#field-0-default", "50")
    page.fill("#expression", "cross_border_ratin")  # a typo: the check points at it
    expect(page.get_by_test_id("expr-error")).to_be_visible()
    page.fill("#expression", "cross_border_rating")
    expect(page.get_by_test_id("expr-preview")).to_be_visible()
    page.fill("#scale", "headcount")
    page.fill("#weight", "10")
    page.get_by_test_id("save-factor").click()

    # The draft: weights rebalanced to 100, its impact on the current plan, then activation.
    expect(page.get_by_test_id("draft-badge")).to_be_visible()
    expect(page.get_by_test_id("factor-row")).to_have_count(6)
    expect(page.locator("#weight-historical_performance")).to_have_value("27")
    expect(page.locator("#weight-cross_border")).to_have_value("10")
    expect(page.get_by_test_id("impact-row")).to_have_count(6)
    page.get_by_test_id("activate").click()
    expect(page.locator(".flash.success")).to_contain_text("now active")

    # The East region head fills the new input through the generated form.
    context = browser.new_context(base_url=live_server, locale="en-US")
    head = context.new_page()
    sign_in(head, "head.east")
    switch_language(head, "en")
    for code in ("EAST", "EAST-T1"):
        fill_rating(head, code, "95")
    context.close()

    # The next plan uses the new factor: East's share moves, and a person's
    # explanation lists the factor with its amount.
    second_plan = save_balanced_plan(page)
    # East rated itself 95 where the others read the default 50: its share grows.
    assert target(app, second_plan, "EAST") > target(app, first_plan, "EAST")
    with app.app_context():
        plan = db.session.get(Plan, second_plan)
        assert "cross_border" in plan.model_version.content["weights"]
        person = db.session.scalar(select(OrgUnit.code).where(
            OrgUnit.parent_id == unit_by_code(db.session, "EAST-T1").id).order_by(OrgUnit.code))
    page.goto(f"/plans/{second_plan}/units/{person}")
    explanation = page.get_by_test_id("explanation")
    expect(explanation).to_contain_text("Cross-border service capability")
    # The earlier plan still explains itself with the model it ran under.
    page.goto(f"/plans/{first_plan}/units/{person}")
    expect(page.get_by_test_id("explanation")).not_to_contain_text("Cross-border service capability")
