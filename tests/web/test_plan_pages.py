"""Plan pages: the simulator, saving, a plan within scope, explanations, .xlsx export."""

from __future__ import annotations

import io
import re
from collections import defaultdict

import pytest
from openpyxl import load_workbook
from plan_support import OWN_PERIOD, own_period, readable_by_all

from quotaflow.services import plans, specs
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AuditEntry, Plan

TOTAL = 249_500_000


SIMULATE = f"/plans/simulate?period={OWN_PERIOD}&total={TOTAL}"


@pytest.fixture(autouse=True)
def _own_period(app):
    with app.app_context():
        own_period(db.session)


@pytest.fixture(scope="module")
def plan_id(app) -> int:
    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "cfo"), period,
                                 "aggressive", TOTAL, "pages test")
        return readable_by_all(db.session, plan.id)  # only plan makers see drafts


def _section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    end = html.find("</section>", start)
    return html[start:end]


def test_simulator_shows_three_scenarios_with_their_risks(as_user) -> None:
    response = as_user("cfo").get(SIMULATE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    aggressive = _section(html, "scenario-aggressive")
    balanced = _section(html, "scenario-balanced")
    conservative = _section(html, "scenario-conservative")
    assert 'data-unit="WEST" data-rule="overload"' in aggressive  # West overloaded
    load = re.search(r"WEST \(West\): target is (\d+)% of capacity", aggressive)
    assert load and int(load.group(1)) > 100
    assert 'data-rule="overload"' not in balanced
    assert 'data-testid="shortfall"' in conservative  # does not add up to the goal
    assert 'data-rule="shortfall"' in conservative
    assert "short of the company total 249,500,000" in conservative
    assert 'data-testid="shortfall"' not in balanced
    assert re.search(r'data-testid="requested">274,450,000<', aggressive)
    assert re.search(r'data-testid="planned">249,500,000<', balanced)
    for key in ("aggressive", "balanced", "conservative"):
        assert f'data-testid="save-{key}"' in html
    assert 'name="csrf_token"' in html


def test_simulator_speaks_chinese(as_user) -> None:
    html = as_user("ceo").get(SIMULATE).get_data(as_text=True)
    assert "激进型" in html and "保守型" in html
    assert "WEST（西部）：目标为产能" in html


def test_simulator_recomputes_a_fragment_for_htmx(as_user) -> None:
    client = as_user("cfo")
    response = client.get(f"/plans/simulate?period={OWN_PERIOD}&total=200000000",
                          headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="scenarios"')
    assert "<html" not in html
    assert "200,000,000" in html
    bad = client.get(f"/plans/simulate?period={OWN_PERIOD}&total=lots", headers={"HX-Request": "true"})
    assert bad.status_code == 200  # htmx swaps only 2xx; the error is the content
    assert 'data-testid="simulate-error"' in bad.get_data(as_text=True)


def test_simulator_refuses_a_bad_total_beside_the_form(as_user) -> None:
    response = as_user("cfo").get(f"/plans/simulate?period={OWN_PERIOD}&total=-3")
    assert response.status_code == 422
    assert "positive number of yuan" in response.get_data(as_text=True)
    empty = as_user("cfo").get(f"/plans/simulate?period={OWN_PERIOD}&total=")
    assert empty.status_code == 200
    assert 'data-testid="scenario-' not in empty.get_data(as_text=True)


def test_save_as_plan_creates_the_plan(app, as_user) -> None:
    client = as_user("hrbp")
    response = client.post("/plans/simulate", data={
        "period": OWN_PERIOD, "total": "249,500,000", "scenario": "conservative", "note": "safe"})
    assert response.status_code == 302
    plan_id = int(response.location.rsplit("/", 1)[-1])
    with app.app_context():
        plan = db.session.get(Plan, plan_id)
        assert (plan.scenario, plan.company_total, plan.note) == ("conservative", TOTAL, "safe")
        assert plan.planned_total < TOTAL
        assert plan.created_by.username == "hrbp"
    page = client.get(f"/plans/{plan_id}").get_data(as_text=True)
    assert 'data-testid="plan-risks"' in page
    listing = client.get(f"/plans?period={OWN_PERIOD}").get_data(as_text=True)
    assert f'href="/plans/{plan_id}"' in listing


def test_save_with_an_unknown_scenario_is_refused(as_user) -> None:
    response = as_user("hrbp").post("/plans/simulate", data={
        "period": OWN_PERIOD, "total": str(TOTAL), "scenario": "reckless"})
    assert response.status_code == 422
    assert "reckless" in response.get_data(as_text=True)


@pytest.mark.parametrize("username", ["head.east", "lead.east.t1", "sales.p0001"])
def test_only_plan_creators_reach_the_simulator(as_user, username) -> None:
    client = as_user(username)
    assert client.get(SIMULATE).status_code == 403
    response = client.post("/plans/simulate", data={
        "period": OWN_PERIOD, "total": str(TOTAL), "scenario": "balanced"})
    assert response.status_code == 403


@pytest.mark.parametrize("username", ["admin", "hrbp", "ceo", "cfo"])
def test_admins_hrbp_and_executives_reach_the_simulator(as_user, username) -> None:
    assert as_user(username).get(SIMULATE).status_code == 200


def test_everyone_sees_the_plan_list(as_user, plan_id) -> None:
    for username in ("sales.p0001", "head.east", "cfo"):
        html = as_user(username).get("/plans").get_data(as_text=True)
        assert f'href="/plans/{plan_id}"' in html
    assert 'href="/plans/simulate' not in as_user("head.east").get("/plans").get_data(as_text=True)
    assert 'href="/plans"' in as_user("sales.p0001").get("/").get_data(as_text=True)


def _row_codes(html: str) -> set[str]:
    table = html[html.index('data-testid="plan-rows"'):]
    table = table[:table.index("</table>")]
    return set(re.findall(r'<tr data-unit="([^"]+)"', table))


def test_executive_sees_regions_and_plan_risks(as_user, plan_id) -> None:
    html = as_user("cfo").get(f"/plans/{plan_id}").get_data(as_text=True)
    assert _row_codes(html) == {"CENTRAL", "EAST", "NE", "NORTH", "SOUTH", "WEST"}
    assert 'data-testid="plan-risks"' in html
    assert "Load (target / capacity)" in html and "Growth over last year" in html
    west = html[html.index('<tr data-unit="WEST"'):]
    assert west.startswith('<tr data-unit="WEST" class="flagged">')
    assert "of capacity" in west[:west.index("</tr>")]


def test_region_head_sees_only_their_region(as_user, plan_id) -> None:
    html = as_user("head.east").get(f"/plans/{plan_id}").get_data(as_text=True)
    codes = _row_codes(html)
    assert "EAST" in codes and "EAST-T1" in codes
    assert all(c.startswith("EAST") for c in codes)
    assert "WEST" not in html.split("<main")[1].replace("WEST（", "")
    assert 'data-testid="plan-risks"' not in html


def test_sales_person_sees_only_their_own_row(as_user, plan_id) -> None:
    client = as_user("sales.p0001")
    html = client.get(f"/plans/{plan_id}").get_data(as_text=True)
    assert _row_codes(html) == {"P0001"}
    assert client.get(f"/plans/{plan_id}/units/P0001").status_code == 200
    assert client.get(f"/plans/{plan_id}/units/P0002").status_code == 404
    assert client.get(f"/plans/{plan_id}/units/EAST-T1").status_code == 404


def test_unit_explanation_adds_up(app, as_user, plan_id) -> None:
    client = as_user("head.east")
    response = client.get(f"/plans/{plan_id}/units/EAST-T1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    table = html[html.index('data-testid="explanation"'):html.index("</table>")]
    amounts = [int(a.replace(",", "").replace("+", "")) for a in
               re.findall(r'<td class="num">([+\-]?[\d,]+)</td></tr>', table)]
    target = int(re.search(r'data-testid="target">([\d,]+)<', table).group(1).replace(",", ""))
    # five factor lines, the factor subtotal, bounds, rounding
    assert len(amounts) == 8
    assert sum(amounts[:5]) == amounts[5]
    assert amounts[5] + amounts[6] + amounts[7] == target
    assert "历史业绩" in table
    children = html[html.index('data-testid="children"'):]
    assert 'data-unit="P0001"' in children
    assert client.get(f"/plans/{plan_id}/units/WEST").status_code == 404
    assert client.get(f"/plans/{plan_id}/units/WEST-T1").status_code == 404
    assert client.get(f"/plans/{plan_id}/units/NOPE").status_code == 404
    assert client.get("/plans/987654/units/EAST").status_code == 404
    assert client.get("/plans/987654").status_code == 404


def test_root_explanation_starts_from_the_requested_total(as_user, plan_id) -> None:
    html = as_user("cfo").get(f"/plans/{plan_id}/units/HQ").get_data(as_text=True)
    assert "Requested total" in html and "274,450,000" in html


def _sheet_rows(data: bytes, sheet: int) -> list[tuple]:
    book = load_workbook(io.BytesIO(data))
    return list(book.worksheets[sheet].iter_rows(values_only=True))


def _check_sums(rows: list[tuple], n_factors: int = 5) -> dict[str, int]:
    body = rows[1:]
    targets = {r[0]: r[4] for r in body}
    by_parent = defaultdict(int)
    for r in body:
        assert isinstance(r[4], int)
        if r[3]:
            factors = r[5:5 + n_factors]
            assert sum(factors) + r[5 + n_factors] + r[6 + n_factors] == r[4], r[0]
            by_parent[r[3]] += r[4]
    for parent, total in by_parent.items():
        if parent in targets:
            assert targets[parent] == total, parent
    return targets


def test_export_opens_and_sums_right(as_user, plan_id) -> None:
    response = as_user("cfo").get(f"/plans/{plan_id}/export.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert f"plan-{OWN_PERIOD}-" in response.headers["Content-Disposition"]
    rows = _sheet_rows(response.data, 1)
    assert rows[0][:5] == ("Code", "Name", "Level", "Parent", "Target (yuan)")
    assert rows[0][5] == "Historical performance"
    targets = _check_sums(rows)
    assert targets["HQ"] == sum(targets[c] for c in ("CENTRAL", "EAST", "NE", "NORTH", "SOUTH",
                                                     "WEST"))
    book = load_workbook(io.BytesIO(response.data))
    summary = {r[0]: r[1] for r in book.worksheets[0].iter_rows(values_only=True) if r and r[0]}
    assert summary["Planned total"] == targets["HQ"]
    assert book.worksheets[1]["E2"].number_format == "#,##0"


def test_export_holds_only_the_scope(as_user, plan_id) -> None:
    rows = _sheet_rows(as_user("head.east").get(f"/plans/{plan_id}/export.xlsx").data, 1)
    codes = [r[0] for r in rows[1:]]
    assert codes[0] == "EAST" and "WEST" not in codes and "HQ" not in codes
    assert all(c.startswith("EAST") or c.startswith("P") for c in codes)
    _check_sums(rows)
    mine = _sheet_rows(as_user("sales.p0001").get(f"/plans/{plan_id}/export.xlsx").data, 1)
    assert [r[0] for r in mine[1:]] == ["P0001"]


def test_impact_page_compares_a_model_version(app, as_user, plan_id) -> None:
    with app.app_context():
        active = specs.active_version(db.session, "factor_model", "default").id
    client = as_user("hrbp")
    listing = client.get(f"/plans/{plan_id}/impact")
    assert listing.status_code == 200
    html = client.get(f"/plans/{plan_id}/impact?model_version={active}").get_data(as_text=True)
    table = html[html.index('data-testid="impact"'):]
    assert 'data-unit="WEST"' in table and 'data-unit="HQ"' in table
    assert client.get(f"/plans/{plan_id}/impact?model_version=999999").status_code == 404
    assert as_user("head.east").get(f"/plans/{plan_id}/impact").status_code == 403
    assert as_user("cfo").get(f"/plans/{plan_id}/impact").status_code == 403


def test_saving_from_the_page_is_audited(app, as_user) -> None:
    as_user("ceo").post("/plans/simulate", data={
        "period": OWN_PERIOD, "total": str(TOTAL), "scenario": "balanced"})
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(action="create_plan").order_by(
            AuditEntry.id.desc()).first()
        assert entry.actor_name == "ceo"
        assert entry.remote_addr is not None
