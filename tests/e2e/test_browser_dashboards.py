"""The executive dashboard in a real browser (Debian's chromium): the attainment forecast
curve and the resource comparison are drawn by Chart.js with the demo's figures, the
tables beside them show the same numbers and sort by clicking a header, and in
Chinese the axis writes amounts with 万/亿."""

from __future__ import annotations

import re
from typing import Any

from browser_support import sign_in, switch_language
from playwright.sync_api import Page, expect

from quotaflow.services import dashboards
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue


def expected(app: Any) -> tuple[dict, dict[str, dict[str, float]]]:
    """The dashboard's figures from the services, and the stored headcount/cost inputs."""
    with app.app_context():
        period = q.periods(db.session)[-1]
        hq = q.unit_by_code(db.session, "HQ")
        view = dashboards.unit_dashboard(Context(db.session), period, hq)
        inputs: dict[str, dict[str, float]] = {}
        for row in view["resources"]:
            unit = q.unit_by_code(db.session, row["code"])
            values = db.session.query(AttributeValue.name, AttributeValue.value).filter(
                AttributeValue.period_id == period.id, AttributeValue.unit_id == unit.id,
                AttributeValue.name.in_(("headcount", "cost"))).all()
            inputs[row["code"]] = dict(values)
    return view, inputs


def chart_data(page: Page, chart_id: str) -> dict[str, list]:
    """The datasets of the Chart.js instance drawn on a canvas, by dataset key."""
    return page.evaluate("""(id) => {
        const chart = Chart.getChart(document.getElementById("chart-" + id));
        const out = {labels: chart.data.labels};
        chart.data.datasets.forEach((ds) => { out[ds.qfKey] = ds.data; });
        return out;
    }""", chart_id)


def test_executive_sees_the_forecast_curve_and_resource_comparison(page: Page, app: Any) -> None:
    view, inputs = expected(app)
    sign_in(page, "cfo")  # English
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(re.compile(r"/dashboard/unit/HQ$"))
    expect(page.get_by_test_id("dashboard-title")).to_contain_text("Executive dashboard")

    # The forecast curve: a drawn canvas whose Chart holds the services' numbers.
    curve = page.get_by_test_id("chart-curve")
    expect(curve).to_be_visible()
    expect(curve).to_have_attribute("data-drawn", "true")
    drawn = chart_data(page, "curve")
    c = view["curve"]
    assert drawn["labels"] == [f"W{w}" for w in c["weeks"]]
    for key in ("actual", "red_line", "target", "forecast", "forecast_low", "forecast_high"):
        assert drawn[key] == c[key], key
    week, hq = view["week"], view["unit"]
    assert drawn["actual"][week] == hq["actual"] > 0
    assert drawn["forecast"][-1] == hq["forecast"] and drawn["target"][0] == hq["target"]
    assert page.evaluate("Chart.getChart(document.getElementById('chart-curve')).config.type") == "line"
    expect(page.get_by_test_id("wmape")).to_contain_text("WMAPE")

    # ... and its table, visible, with the same numbers.
    table = page.get_by_role("table", name=re.compile("Attainment forecast curve"))
    expect(table).to_be_visible()
    row = table.locator(f'tbody tr[data-week="{week}"]')
    expect(row.locator("td").nth(1)).to_have_text(f"{hq['actual']:,}")
    expect(row.locator("td").nth(2)).to_have_text(f"{c['red_line'][week]:,}")
    last = table.locator(f'tbody tr[data-week="{c["weeks"][-1]}"]')
    expect(last.locator("td").nth(4)).to_have_text(f"{hq['forecast']:,}")

    # The resource comparison: headcount and cost per region against target and actual.
    resources = page.get_by_test_id("chart-resources")
    resources.scroll_into_view_if_needed()
    expect(resources).to_have_attribute("data-drawn", "true")
    drawn = chart_data(page, "resources")
    rows = view["resources"]
    assert drawn["headcount"] == [inputs[r["code"]]["headcount"] for r in rows]
    assert drawn["cost"] == [round(inputs[r["code"]]["cost"]) for r in rows]
    assert drawn["target"] == [r["target"] for r in rows]
    assert drawn["actual"] == [r["actual"] for r in rows]
    assert sum(drawn["headcount"]) > 0 and all(v > 0 for v in drawn["target"])

    table = page.get_by_role("table", name="Resource input comparison")
    expect(table).to_be_visible()
    east = next(r for r in rows if r["code"] == "EAST")
    cells = table.locator('tr[data-unit="EAST"] td')
    expect(cells.nth(0)).to_have_text(f"{east['headcount']:,}")
    expect(cells.nth(1)).to_have_text(f"{east['cost']:,}")
    expect(cells.nth(2)).to_have_text(f"{east['target']:,}")
    expect(cells.nth(3)).to_have_text(f"{east['actual']:,}")

    # Sortable: headcount ascending, then descending.
    header = table.get_by_role("button", name="Headcount")
    header.click()
    by_heads = sorted(rows, key=lambda r: r["headcount"])
    expect(table.locator("tbody tr").first).to_have_attribute("data-unit", by_heads[0]["code"])
    expect(table.locator("thead th").nth(1)).to_have_attribute("aria-sort", "ascending")
    header.click()
    expect(table.locator("tbody tr").first).to_have_attribute("data-unit", by_heads[-1]["code"])
    expect(table.locator("thead th").nth(1)).to_have_attribute("aria-sort", "descending")

    # A region's curve instead of the company's.
    page.get_by_test_id("curve-choice").select_option("NORTH")
    expect(page).to_have_url(re.compile(r"curve=NORTH"))
    expect(page.get_by_test_id("chart-curve")).to_have_attribute("data-drawn", "true")
    north = next(r for r in view["children"] if r["code"] == "NORTH")
    assert chart_data(page, "curve")["target"][0] == north["target"]


def test_in_chinese_the_axis_uses_wan_and_yi(page: Page) -> None:
    sign_in(page, "cfo")
    switch_language(page, "zh")
    page.goto("/dashboard/unit/HQ")
    expect(page.get_by_test_id("chart-curve")).to_have_attribute("data-drawn", "true")
    ticks = page.evaluate("""() => Chart.getChart(document.getElementById("chart-curve"))
        .scales.y.ticks.map((t) => t.label)""")
    assert any("亿" in str(t) for t in ticks), ticks
    expect(page.get_by_test_id("figure-target")).to_have_text(re.compile(r"^[\d,.]+亿$"))
