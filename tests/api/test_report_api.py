"""Read twins of pages: alignment figures, the HR export, a plan's .xlsx, the simulator's
scenarios, the appeal form's live check. Same figures and permissions as the pages."""

from __future__ import annotations

import csv
import io

import pytest
from confirm_support import draft_plan, fresh_period
from openpyxl import load_workbook
from plan_support import OWN_PERIOD, own_period, readable_by_all

from quotaflow.services import confirmation as conf
from quotaflow.services import plans
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import Plan

TOTAL = 249_500_000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:500])
    return response.get_json()["error"]


@pytest.fixture(scope="module")
def plan_id(app) -> int:
    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "cfo"), period,
                                 "aggressive", TOTAL, "report api")
        return readable_by_all(db.session, plan.id)  # region heads and sales see no drafts


@pytest.fixture
def published(app, as_user):
    """A fresh period with a published plan: (period id, code, plan id)."""
    with app.app_context():
        period = fresh_period(db.session)
        plan = draft_plan(db.session, period)
        ids = period.id, period.code, plan.id
    assert as_user("hrbp").post(f"/plans/{ids[2]}/publish").status_code == 302
    return ids


# ---------------------------------------------------------------------------- alignment


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 200), ("cfo", 200), ("head.east", 403),
    ("lead.east.t1", 403), ("sales.p0001", 403),
])
def test_who_reads_the_alignment(as_user, username: str, status: int) -> None:
    assert as_user(username).get("/api/v1/confirm/alignment").status_code == status


def test_alignment_figures_match_the_page(app, as_user, published) -> None:
    period_id, code, plan_id = published
    body = as_user("ceo").get(f"/api/v1/confirm/alignment?period={code}").get_json()
    assert body["period"] == code and body["plan"]["id"] == plan_id
    assert body["published_at"] and body["aligned_at"] is None
    region = next(lv for lv in body["levels"] if lv["level"] == "region")
    with app.app_context():
        regions = [i for i in cq.period_items(db.session, period_id) if i.group.level == "region"]
    assert region["items"] == len(regions) and region["pending"] == len(regions)
    assert body["appeals"] == [] and body["appeals_by_status"]["open"] == 0
    assert error(as_user("ceo").get("/api/v1/confirm/alignment?period=1999Q1"),
                 404)["code"] == "not_found"


# ---------------------------------------------------------------------------- HR export


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 403), ("cfo", 403), ("head.east", 403),
    ("sales.p0001", 403),
])
def test_who_downloads_the_hr_export(as_user, username: str, status: int) -> None:
    client = as_user(username)
    assert client.get("/api/v1/hr/export?period=2026Q4").status_code == status
    assert client.get("/api/v1/hr/export?period=2026Q4&format=csv").status_code == status


def test_hr_export_as_json_csv_and_xlsx(app, as_user) -> None:
    with app.app_context():
        no_plan = fresh_period(db.session).code
    client = as_user("hrbp")
    body = client.get("/api/v1/hr/export?period=2026Q4",
                      headers={"Accept-Language": "en"}).get_json()
    assert body["header"][0] == "Person code"
    assert body["period"] == "2026Q4" and body["rows"]
    assert sum(r[body["target_column"]] for r in body["rows"]) == body["target_total"]
    assert all(str(r[0]).startswith("P") for r in body["rows"])
    as_csv = client.get("/api/v1/hr/export?period=2026Q4&format=csv")
    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(as_csv.data.decode("utf-8-sig"))))
    assert len([row for row in lines if row and row[0].startswith("P")]) == len(body["rows"])
    as_xlsx = client.get("/api/v1/hr/export?period=2026Q4&format=xlsx")
    assert as_xlsx.status_code == 200 and as_xlsx.mimetype == XLSX
    assert "attachment" in as_xlsx.headers["Content-Disposition"]
    zh = client.get("/api/v1/hr/export?period=2026Q4",
                    headers={"Accept-Language": "zh"}).get_json()
    assert zh["header"][0] == "人员编码"
    assert [r[body["target_column"]] for r in zh["rows"]] == \
        [r[body["target_column"]] for r in body["rows"]]
    assert error(client.get("/api/v1/hr/export?format=pdf"), 422)["code"] == "bad_format"
    assert error(client.get(f"/api/v1/hr/export?period={no_plan}"),
                 404)["code"] == "no_published_plan"


# ---------------------------------------------------------------------------- plan export


def _rows(data: bytes) -> list[tuple]:
    return list(load_workbook(io.BytesIO(data)).worksheets[1].iter_rows(values_only=True))


def test_plan_export_is_the_pages_file_within_the_scope(as_user, plan_id) -> None:
    response = as_user("cfo").get(f"/api/v1/plans/{plan_id}/export.xlsx")
    assert response.status_code == 200 and response.mimetype == XLSX
    assert f"plan-{OWN_PERIOD}-" in response.headers["Content-Disposition"]
    rows = _rows(response.data)
    assert rows[0][:5] == ("Code", "Name", "Level", "Parent", "Target (yuan)")
    page = _rows(as_user("cfo").get(f"/plans/{plan_id}/export.xlsx").data)
    assert rows == page
    east = [r[0] for r in _rows(as_user("head.east").get(
        f"/api/v1/plans/{plan_id}/export.xlsx").data)[1:]]
    assert east[0] == "EAST" and "WEST" not in east and "HQ" not in east
    mine = _rows(as_user("sales.p0001").get(f"/api/v1/plans/{plan_id}/export.xlsx").data)
    assert [r[0] for r in mine[1:]] == ["P0001"]
    zh = _rows(as_user("cfo").get(f"/api/v1/plans/{plan_id}/export.xlsx",
                                  headers={"Accept-Language": "zh"}).data)
    assert zh[0][0] != "Code"
    assert error(as_user("cfo").get("/api/v1/plans/999999/export.xlsx"), 404)


# ---------------------------------------------------------------------------- simulator


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 200), ("cfo", 200), ("head.east", 403),
    ("lead.east.t1", 403), ("sales.p0001", 403),
])
def test_who_may_simulate(app, as_user, username: str, status: int) -> None:
    with app.app_context():
        before = db.session.query(Plan).count()
    response = as_user(username).post("/api/v1/plans/simulate",
                                      json={"period": OWN_PERIOD, "total": TOTAL})
    assert response.status_code == status
    with app.app_context():
        assert db.session.query(Plan).count() == before


def test_simulate_answers_the_three_scenarios(as_user) -> None:
    body = as_user("cfo").post("/api/v1/plans/simulate",
                               json={"period": OWN_PERIOD, "total": TOTAL}).get_json()
    assert body["period"] == OWN_PERIOD and body["total"] == TOTAL
    assert len(body["scenarios"]) == 3
    for card in body["scenarios"]:
        assert card["planned"] + card["shortfall"] == TOTAL
        assert {r["code"] for r in card["regions"]} == {"CENTRAL", "EAST", "NE", "NORTH",
                                                        "SOUTH", "WEST"}
        assert sum(r["target"] for r in card["regions"]) == card["planned"]
    bad = error(as_user("cfo").post("/api/v1/plans/simulate",
                                    json={"period": OWN_PERIOD, "total": -5}), 422)
    assert bad["code"] == "bad_total"
    assert error(as_user("cfo").post("/api/v1/plans/simulate", json={"period": OWN_PERIOD}),
                 422)["details"]["pointer"] == "/total"
    assert error(as_user("cfo").post("/api/v1/plans/simulate", json=[]), 400)
    assert error(as_user("cfo").post("/api/v1/plans/simulate",
                                     json={"period": "1999Q1", "total": TOTAL}), 404)


# ---------------------------------------------------------------------------- appeal check


def test_appeal_check_tells_the_range_and_the_change(app, as_user, published) -> None:
    period_id, _code, _plan = published
    with app.app_context():
        item = cq.item_for_unit(db.session, period_id, q.unit_by_code(db.session, "EAST").id)
        bounds = conf.appeal_bounds(db.session, item)
        item_id = item.id
    head = as_user("head.east")
    url = "/api/v1/confirm/appeal-check"
    inside = head.get(url, query_string={"item": item_id, "requested": bounds.minimum})
    assert inside.status_code == 200
    body = inside.get_json()
    assert body["ok"] and body["change"] == bounds.minimum - bounds.allocated
    assert body["bounds"]["maximum"] == bounds.maximum
    outside = head.get(url, query_string={"item": item_id,
                                          "requested": bounds.maximum + bounds.step}).get_json()
    assert not outside["ok"] and outside["error"]["code"] == "out_of_range"
    assert outside["error"]["details"]["maximum"] == bounds.maximum
    empty = head.get(url, query_string={"item": item_id}).get_json()
    assert not empty["ok"] and empty["error"] is None and empty["requested"] is None
    # Only the unit's own head answers for its item: anyone else finds nothing.
    assert error(as_user("head.north").get(url, query_string={
        "item": item_id, "requested": 1}), 404)["code"] == "not_found"
    assert error(as_user("hrbp").get(url, query_string={"item": item_id}), 403)
    assert error(head.get(url, query_string={"item": "x"}), 400)["code"] == "invalid_parameter"


# ---------------------------------------------------------------------------- dashboard


@pytest.mark.parametrize(("username", "kind", "unit"), [
    ("admin", "operations", None),
    ("hrbp", "operations", None),
    ("ceo", "executive", "HQ"),
    ("head.east", "region", "EAST"),
    ("lead.east.t1", "team", "EAST-T1"),
    ("sales.p0001", "person", "P0001"),
])
def test_dashboard_is_the_callers_own(as_user, username: str, kind: str, unit) -> None:
    response = as_user(username).get("/api/v1/dashboard?period=2026Q4")
    assert response.status_code == 200, response.data[:300]
    body = response.get_json()
    assert body["kind"] == kind
    if unit is not None:
        assert body["unit_code"] == unit and body["status"] == "ok"


@pytest.mark.parametrize(("username", "code", "status"), [
    ("head.east", "EAST-T1", 200),
    ("head.east", "WEST", 404),
    ("lead.east.t1", "EAST", 404),
    ("lead.east.t1", "P0001", 200),
    ("sales.p0001", "P0002", 404),
    ("hrbp", "HQ", 200),
    ("cfo", "NORTH-T4", 200),
])
def test_unit_dashboards_within_the_scope(as_user, username: str, code: str,
                                          status: int) -> None:
    response = as_user(username).get(f"/api/v1/dashboard/units/{code}?period=2026Q4")
    assert response.status_code == status
    if status == 200:
        assert response.get_json()["unit_code"] == code


def test_unit_dashboard_holds_the_pages_numbers(as_user) -> None:
    body = as_user("head.east").get("/api/v1/dashboard/units/EAST?period=2026Q4").get_json()
    assert body["kind"] == "region" and body["week"] >= 1
    children = body.get("children") or []
    assert children and all(c["code"].startswith("EAST-") for c in children)
    assert error(as_user("head.east").get("/api/v1/dashboard/units/EAST?week=99"), 404)
    assert error(as_user("head.east").get("/api/v1/dashboard?week=x"), 400)
