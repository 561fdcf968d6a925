"""API twins of the Spreadsheets, configuration bundle and what-if pages: the same use
cases, the same permissions (role x scope), the page's reports as JSON errors."""

from __future__ import annotations

import copy
import io
import json
import re

import openpyxl
import pytest
from plan_support import OWN_PERIOD, own_period, readable_by_all
from sheet_support import (
    PERIOD,
    attribute_rows,
    cell_for,
    codes_under,
    post_file,
    saved,
    workbook,
)
from sqlalchemy import func, select

from quotaflow.services import plans
from quotaflow.services.auth import create_api_token
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import (
    AttributeValue,
    AuditEntry,
    OrgUnit,
    Plan,
    PlanUnit,
    SpecVersion,
    UnitResult,
    Upload,
)
from quotaflow.store.queries import period_by_code, unit_by_code


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.mimetype == "application/json"
    return response.get_json()["error"]


# ---------------------------------------------------------------------------- inputs


def test_inputs_download_holds_the_callers_scope(app, as_user) -> None:
    client = as_user("head.east")
    book = workbook(client.get("/api/v1/inputs.xlsx"))
    codes = {row[0] for row in book.worksheets[0].iter_rows(min_row=3, max_col=1,
                                                            values_only=True)}
    assert codes == codes_under(app, "EAST")
    response = client.get(f"/api/v1/inputs.csv?period={PERIOD}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data.decode("utf-8-sig").splitlines()
    assert {line.split(",")[0] for line in body[2:]} == codes_under(app, "EAST")


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("head.west", 200), ("lead.east.t1", 200),
    ("ceo", 403), ("cfo", 403), ("sales.p0001", 403),
])
def test_who_may_download_inputs(as_user, username: str, status: int) -> None:
    client = as_user(username)
    for fmt in ("xlsx", "csv"):
        response = client.get(f"/api/v1/inputs.{fmt}")
        assert response.status_code == status
        if status != 200:
            assert error(response, status)["code"] == "forbidden"


def test_unknown_format_or_period_is_a_json_404(as_user) -> None:
    client = as_user("head.east")
    assert error(client.get("/api/v1/inputs.pdf"), 404)["code"] == "not_found"
    assert error(client.get("/api/v1/inputs.xlsx?period=1999Q1"), 404)["code"] == "not_found"


@pytest.mark.usefixtures("inputs_open")
def test_inputs_round_trip_through_the_api(app, as_user) -> None:
    client = as_user("head.ne")
    original = client.get("/api/v1/inputs.xlsx").data
    book = openpyxl.load_workbook(io.BytesIO(original))
    target = cell_for(book.worksheets[0], "NE-T3", "cost")
    target.value = (target.value or 0) + 1000
    response = post_file(client, "/api/v1/inputs", saved(book), "ne.xlsx", period=PERIOD)
    assert response.status_code == 200, response.data[:500]
    result = response.get_json()
    assert result["period"] == PERIOD and result["values_changed"] == 1
    assert result["units_changed"] == 1 and result["filename"] == "ne.xlsx"
    with app.app_context():
        unit = unit_by_code(db.session, "NE-T3")
        period = period_by_code(db.session, PERIOD)
        assert db.session.get(AttributeValue, (period.id, "cost", unit.id)).value == target.value
    assert post_file(client, "/api/v1/inputs", original, "ne.xlsx",
                     period=PERIOD).status_code == 200
    with app.app_context():
        assert db.session.get(AttributeValue,
                              (period.id, "cost", unit.id)).value == target.value - 1000


def test_bad_rows_answer_the_report_and_change_nothing(app, as_user) -> None:
    client = as_user("admin")
    book = workbook(client.get("/api/v1/inputs.xlsx"))
    sheet = book.worksheets[0]
    bad = cell_for(sheet, "SOUTH-T3", "product_fit")
    bad.value = "very good"
    high = cell_for(sheet, "SOUTH-T4", "new_city_share")
    high.value = 3
    cell_for(sheet, "SOUTH-T5", "product_fit").value = 12.5  # a good change, not applied
    before = attribute_rows(app)
    refused = error(post_file(client, "/api/v1/inputs", saved(book), "all.xlsx",
                              period=PERIOD), 422)
    assert refused["code"] == "invalid_sheet"
    issues = {(i["code"], i["row"], i["column"]): i for i in refused["details"]["issues"]}
    assert issues[("cell.not_a_number", bad.row, bad.column_letter)]["message"] == \
        "“very good” is not a number."
    assert issues[("input.maximum", high.row, high.column_letter)]["message"] == \
        "3 is above the maximum, 1."
    assert refused["details"]["total"] == 2 and refused["details"]["hidden"] == 0
    assert attribute_rows(app) == before
    # The same report in the caller's language.
    zh = error(post_file(client, "/api/v1/inputs", saved(book), "all.xlsx",
                         headers={"Accept-Language": "zh"}, period=PERIOD), 422)
    assert {i["code"] for i in zh["details"]["issues"]} == {"cell.not_a_number", "input.maximum"}
    assert all(i["message"] != issues[(i["code"], i["row"], i["column"])]["message"]
               for i in zh["details"]["issues"])


def test_rows_outside_the_scope_are_refused(app, as_user) -> None:
    client = as_user("lead.east.t1")
    book = workbook(client.get("/api/v1/inputs.xlsx"))
    sheet = book.worksheets[0]
    sheet.cell(sheet.max_row + 1, 1).value = "SOUTH"
    refused = error(post_file(client, "/api/v1/inputs", saved(book), "t1.xlsx",
                              period=PERIOD), 422)
    assert ("unit.unknown", sheet.max_row, "A") in {
        (i["code"], i["row"], i["column"]) for i in refused["details"]["issues"]}


@pytest.mark.parametrize("username", ["sales.p0001", "cfo", "ceo"])
def test_readers_cannot_upload_inputs(app, as_user, username: str) -> None:
    book = workbook(as_user("head.east").get("/api/v1/inputs.xlsx"))
    book.worksheets[0]["D3"] = 1
    before = attribute_rows(app)
    response = post_file(as_user(username), "/api/v1/inputs", saved(book), "x.xlsx",
                         period=PERIOD)
    assert error(response, 403)["code"] == "forbidden"
    assert attribute_rows(app) == before


def test_missing_or_unreadable_files(as_user) -> None:
    client = as_user("admin")
    missing = error(client.post("/api/v1/inputs", data={"period": PERIOD}), 422)
    assert missing["details"]["issues"][0]["code"] == "file.missing"
    assert missing["details"]["issues"][0]["message"] == "Choose a file to upload."
    pdf = error(post_file(client, "/api/v1/inputs", b"%PDF-1.4", "a.pdf"), 422)
    assert pdf["details"]["issues"][0]["code"] == "file.unsupported"


def test_without_sign_in_it_is_401(client) -> None:
    assert error(client.get("/api/v1/inputs.xlsx"), 401)["code"] == "unauthenticated"
    assert error(client.post("/api/v1/imports/org"), 401)["code"] == "unauthenticated"


# ---------------------------------------------------------------------------- admin imports


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 403), ("head.east", 403), ("lead.east.t1", 403),
    ("sales.p0001", 403),
])
def test_who_may_use_templates_and_imports(app, as_user, username: str, status: int) -> None:
    client = as_user(username)
    assert client.get("/api/v1/imports/templates/org.xlsx").status_code == status
    content = "code,parent_code,level,name_en,name_zh\nEAST-T1,EAST,team,Hacked,改\n".encode()
    response = post_file(client, "/api/v1/imports/org", content, "org.csv")
    if status == 200:
        assert response.status_code == 200, response.data[:300]
        assert response.get_json()["rows"] == 1
    else:
        assert error(response, status)["code"] == "forbidden"
        with app.app_context():
            assert unit_by_code(db.session, "EAST-T1").name_en != "Hacked"


def test_templates(as_user) -> None:
    client = as_user("hrbp")
    sheet = workbook(client.get("/api/v1/imports/templates/org.xlsx")).worksheets[0]
    assert [c.value for c in sheet[1]][:3] == ["code", "parent_code", "level"]
    history = client.get("/api/v1/imports/templates/history.csv")
    assert history.data.decode("utf-8-sig").startswith("unit_code,period,sales")
    assert error(client.get("/api/v1/imports/templates/plans.xlsx"), 404)["code"] == "not_found"
    assert error(client.get("/api/v1/imports/templates/org.pdf"), 404)["code"] == "not_found"
    assert error(client.post("/api/v1/imports/plans"), 404)["code"] == "not_found"


def test_org_import_report_and_nothing_changed(app, as_user) -> None:
    content = ("code,parent_code,level,name_en,name_zh\n"
               "NE,NE-T1,region,North-East,东北\n"
               "ZZ-9,NOWHERE,team,A,甲\n").encode()
    with app.app_context():
        before = sorted(db.session.execute(select(OrgUnit.id, OrgUnit.path)).all())
    refused = error(post_file(as_user("admin"), "/api/v1/imports/org", content, "org.csv"), 422)
    found = {(i["code"], i["row"], i["column"]) for i in refused["details"]["issues"]}
    assert {("org.cycle", 2, "B"), ("org.unknown_parent", 3, "B")} <= found
    with app.app_context():
        assert sorted(db.session.execute(select(OrgUnit.id, OrgUnit.path)).all()) == before


def test_history_and_people_imports(app, as_user) -> None:
    with app.app_context():
        unit = unit_by_code(db.session, "P0001")
        period = period_by_code(db.session, "2026Q3")
        value = db.session.get(UnitResult, (unit.id, period.id, "sales")).value
    content = f"unit_code,period,sales\nP0001,2026Q3,{value!r}\n".encode()
    response = post_file(as_user("hrbp"), "/api/v1/imports/history", content, "history.csv")
    assert response.status_code == 200, response.data[:300]
    assert response.get_json()["kind"] == "history" and response.get_json()["rows"] == 1
    team = "code,parent_code,level,name_en,name_zh\nEAST-T1,EAST,team,East 1,东一\n".encode()
    refused = error(post_file(as_user("admin"), "/api/v1/imports/people", team, "p.csv"), 422)
    assert refused["details"]["issues"][0]["code"] == "org.not_person"


# ---------------------------------------------------------------------------- config bundle


def count_versions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(SpecVersion))


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 403), ("cfo", 403), ("head.east", 403),
    ("lead.east.t1", 403), ("sales.p0001", 403),
])
def test_who_may_export_and_import_the_bundle(app, as_user, username: str, status: int) -> None:
    client = as_user(username)
    export = client.get("/api/v1/config/bundle")
    assert export.status_code == status
    bundle = as_user("hrbp").get("/api/v1/config/bundle").get_json()
    before = count_versions(app)
    response = client.post("/api/v1/config/bundle", json=bundle)
    assert response.status_code == status, response.data[:300]
    assert count_versions(app) == before


def test_bundle_round_trip_and_refusal_with_pointers(app, as_user) -> None:
    client = as_user("hrbp")
    bundle = client.get("/api/v1/config/bundle").get_json()
    assert {s["kind"] for s in bundle["specs"]} >= {"factor_model", "scenario_presets"}
    same = client.post("/api/v1/config/bundle", json=bundle).get_json()["imported"]
    assert same and {i["action"] for i in same} == {"unchanged"}
    # A multipart file like the page's form.
    raw = json.dumps(bundle).encode()
    assert post_file(client, "/api/v1/config/bundle", raw, "b.json",
                     field="bundle").status_code == 200

    bad = copy.deepcopy(bundle)
    at = next(i for i, s in enumerate(bad["specs"]) if s["kind"] == "factor_model")
    bad["specs"][at]["content"]["weights"]["product_fit"] = 1
    del bad["specs"][at]["content_hash"]
    before = count_versions(app)
    refused = error(client.post("/api/v1/config/bundle", json=bad), 422)
    assert refused["code"] == "invalid_bundle"
    assert any(i["pointer"].startswith(f"/specs/{at}/content/weights")
               for i in refused["details"]["issues"])
    assert count_versions(app) == before
    not_json = error(client.post("/api/v1/config/bundle", data=b"{oops",
                                 content_type="application/json"), 422)
    assert not_json["details"]["issues"][0]["code"] == "not_json"
    assert error(client.post("/api/v1/config/bundle"), 400)["code"] == "invalid_body"


# ---------------------------------------------------------------------------- what-if


TOTAL = 249_500_000


@pytest.fixture(scope="module")
def plan_id(app) -> int:
    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "admin"), period,
                                 "balanced", TOTAL, "what-if api")
        return readable_by_all(db.session, plan.id)  # region heads do not see drafts


def _counts(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(t))
                     for t in (Plan, PlanUnit, AttributeValue, Upload, AuditEntry))


@pytest.mark.parametrize(("username", "code", "status"), [
    ("head.east", "EAST", 200),
    ("head.east", "NORTH", 404),  # outside the scope looks absent
    ("head.west", "WEST", 200),
    ("lead.east.t1", "EAST-T1", 403),  # team leads do not run what-ifs
    ("sales.p0001", "P0001", 403),
    ("ceo", "NORTH", 200),
    ("cfo", "EAST", 200),
    ("hrbp", "WEST", 200),
    ("admin", "SOUTH", 200),
])
def test_who_may_run_a_what_if_where(app, as_user, plan_id, username, code, status) -> None:
    client = as_user(username)
    before = _counts(app)
    response = client.post(f"/api/v1/whatif/{code}", json={"plan": plan_id})
    assert response.status_code == status, response.data[:300]
    snapshot = client.post(f"/api/v1/whatif/{code}/snapshot", json={"plan": plan_id})
    assert snapshot.status_code == (201 if status == 200 else status)
    if status != 200:
        assert _counts(app) == before


def test_a_what_if_recomputes_the_subtree_and_saves_nothing(app, as_user, plan_id) -> None:
    client = as_user("head.north")
    before = _counts(app)
    plain = client.post("/api/v1/whatif/NORTH", json={"plan": plan_id}).get_json()
    assert plain["unit"]["code"] == "NORTH" and plain["plan"]["period"] == OWN_PERIOD
    assert plain["units"] and all(u["diff"] == 0 for u in plain["units"])
    assert codes_under(app, "NORTH") - {"NORTH"} == {u["code"] for u in plain["units"]}
    moved = client.post("/api/v1/whatif/NORTH", json={
        "plan": plan_id, "weights": {"historical_performance": 40}}).get_json()
    weights = {w["factor"]: w["whatif"] for w in moved["weights"]}
    assert weights["historical_performance"] == 40 and moved["weights_changed"]
    assert any(u["diff"] != 0 for u in moved["units"])
    assert sum(u["whatif"] for u in moved["units"] if u["parent"] == "NORTH") == moved["planned"]
    assert _counts(app) == before


def test_what_if_inputs_are_clipped_or_refused(as_user, plan_id) -> None:
    client = as_user("head.east")
    clipped = client.post("/api/v1/whatif/EAST", json={
        "plan": plan_id, "inputs": {"EAST-T1": {"new_city_share": 5}}}).get_json()
    assert clipped["clipped"] and clipped["clipped"][0]["unit"] == "EAST-T1"
    bad = error(client.post("/api/v1/whatif/EAST", json={
        "plan": plan_id, "inputs": {"EAST-T1": {"market_potential": "lots"}}}), 422)
    assert bad["code"] == "not_a_number"
    outside = error(client.post("/api/v1/whatif/EAST", json={
        "plan": plan_id, "inputs": {"NORTH-T1": {"market_potential": 1}}}), 404)
    assert outside["code"] == "unknown_unit"
    assert error(client.post("/api/v1/whatif/EAST", json={"plan": 10**9}), 404)
    assert error(client.post("/api/v1/whatif/EAST", json=[1]), 400)["code"] == "invalid_body"
    assert error(client.post("/api/v1/whatif/EAST", json={"inputs": [1]}),
                 422)["details"]["pointer"] == "/inputs"


def test_a_what_if_snapshot_is_kept_as_evidence(app, as_user, plan_id) -> None:
    client = as_user("head.east")
    uploads = _counts(app)[3]
    response = client.post("/api/v1/whatif/EAST/snapshot", json={
        "plan": plan_id, "inputs": {"EAST-T1": {"product_fit": 99.5}}})
    assert response.status_code == 201, response.data[:300]
    upload_id = response.get_json()["upload_id"]
    assert _counts(app)[3] == uploads + 1
    file = client.get(f"/uploads/{upload_id}")
    assert file.status_code == 200 and b"EAST-T1,product_fit," in file.data
    assert as_user("head.north").get(f"/uploads/{upload_id}").status_code == 404


# ---------------------------------------------------------------------------- documented

TWINS = ("/api/v1/inputs", "/api/v1/imports", "/api/v1/config/bundle", "/api/v1/whatif",
         "/api/v1/confirm/alignment", "/api/v1/confirm/appeal-check", "/api/v1/hr/export",
         "/api/v1/plans/simulate", "/api/v1/plans/{plan_id}/export.xlsx", "/api/v1/dashboard")


def test_every_twin_route_is_documented_with_its_methods_and_params(app, client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()["paths"]
    seen = 0
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if not path.startswith(TWINS):
            continue
        seen += 1
        operations = document[path.removeprefix("/api/v1")]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = operations[method.lower()]
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == set(rule.arguments), (method, path)
    # /config/bundle is two rules (GET, POST); /whatif also prefixes GET /whatif and
    # GET /whatif/{code}/people (tests/api/test_page_twins_api.py)
    assert seen == 17


def test_a_token_client_round_trips_the_inputs_with_csrf_on(app) -> None:
    """Token clients need no CSRF token (cookie sessions do, like the pages)."""
    with app.app_context():
        token = create_api_token(db.session, q.user_by_username(db.session, "head.ne"), "sheets")
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        original = client.get("/api/v1/inputs.csv", headers=headers)
        assert original.status_code == 200
        response = post_file(client, "/api/v1/inputs", original.data, "ne.csv",
                             headers=headers, period=PERIOD)
        assert response.status_code == 200, response.data[:300]
        assert response.get_json()["values_changed"] == 0
        assert client.post("/api/v1/whatif/NE", headers=headers, json={}).status_code == 200
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
