"""The plan API: create, list, read within scope, explain one unit; errors with pointers."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from plan_support import OWN_PERIOD, own_period, readable_by_all

from quotaflow.store import db

TOTAL = 249_500_000


@pytest.fixture(autouse=True)
def _own_period(app):
    with app.app_context():
        own_period(db.session)


@pytest.fixture(scope="module")
def created(app):
    from support import sign_in

    with app.app_context():
        own_period(db.session)
    client = sign_in(app.test_client(), "cfo")
    response = client.post("/api/v1/plans", json={
        "period": OWN_PERIOD, "scenario": "aggressive", "total": TOTAL, "note": "api test"})
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        readable_by_all(db.session, response.get_json()["id"])  # only plan makers see drafts
    return response


def test_create_returns_the_plan_summary(created) -> None:
    body = created.get_json()
    assert created.headers["Location"] == f"/api/v1/plans/{body['id']}"
    assert (body["period"], body["scenario"], body["note"]) == (OWN_PERIOD, "aggressive", "api test")
    assert body["company_total"] == TOTAL
    assert body["requested_total"] == 274_450_000
    assert body["planned_total"] == body["summary"]["planned_total"]
    assert body["created_by"] == "cfo"
    assert set(body["spec_versions"]) == {"factor_model", "scenario_presets", "risk_rules"}
    assert all(isinstance(v, int) for v in body["spec_versions"].values())
    rules = [r["rule"] for r in body["summary"]["plan_risks"]]
    assert "overloaded_units" in rules
    assert body["summary"]["weights"]["regional_potential"] == 40


@pytest.mark.parametrize("username", ["admin", "hrbp", "ceo"])
def test_admins_hrbp_and_executives_create(as_user, username) -> None:
    response = as_user(username).post("/api/v1/plans", json={
        "period": OWN_PERIOD, "scenario": "balanced", "total": TOTAL})
    assert response.status_code == 201
    assert response.get_json()["planned_total"] == TOTAL


@pytest.mark.parametrize("username", ["head.east", "lead.east.t1", "sales.p0001"])
def test_others_may_not_create(as_user, username) -> None:
    response = as_user(username).post("/api/v1/plans", json={
        "period": OWN_PERIOD, "scenario": "balanced", "total": TOTAL})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("body", "pointer"), [
    ({"period": OWN_PERIOD, "scenario": "reckless", "total": TOTAL}, "/scenario"),
    ({"period": OWN_PERIOD, "total": TOTAL}, "/scenario"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": -1}, "/total"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": 0}, "/total"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": "lots"}, "/total"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": "249500000"}, "/total"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": True}, "/total"),
    ({"period": OWN_PERIOD, "scenario": "balanced"}, "/total"),
    ({"period": "2031Q1", "scenario": "balanced", "total": TOTAL}, "/period"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": TOTAL, "note": 5}, "/note"),
    ({"period": OWN_PERIOD, "scenario": "balanced", "total": TOTAL, "note": "x" * 2001}, "/note"),
])
def test_bad_input_points_at_the_member(as_user, body, pointer) -> None:
    response = as_user("hrbp").post("/api/v1/plans", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["pointer"] == pointer
    assert error["message"]


def test_body_must_be_an_object(as_user) -> None:
    response = as_user("hrbp").post("/api/v1/plans", json=[1, 2])
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_body"


def test_list_plans(as_user, created) -> None:
    plan_id = created.get_json()["id"]
    for username in ("sales.p0001", "head.east"):
        plans = as_user(username).get(f"/api/v1/plans?period={OWN_PERIOD}").get_json()["plans"]
        assert plan_id in [p["id"] for p in plans]
    assert as_user("cfo").get("/api/v1/plans?period=1999Q1").status_code == 404


def test_read_a_plan_with_every_unit(as_user, created) -> None:
    plan_id = created.get_json()["id"]
    client = as_user("admin")
    body = client.get(f"/api/v1/plans/{plan_id}?limit=10000").get_json()
    units = {u["code"]: u for u in body["units"]}
    assert len(units) == body["units_total"] and body["next_offset"] is None
    children = defaultdict(int)
    for u in units.values():
        if u["parent"]:
            children[u["parent"]] += u["target"]
            assert sum(u["factor_amounts"].values()) + u["bounds_adjustment"] \
                + u["rounding_adjustment"] == u["target"]
    for parent, total in children.items():
        assert units[parent]["target"] == total
    assert sorted(units["P0001"]["factor_amounts"]) == sorted(body["factors"])
    page = client.get(f"/api/v1/plans/{plan_id}?limit=100&offset=0").get_json()
    assert len(page["units"]) == 100 and page["next_offset"] == 100
    second = client.get(f"/api/v1/plans/{plan_id}?limit=100&offset=100").get_json()
    assert {u["code"] for u in page["units"]}.isdisjoint({u["code"] for u in second["units"]})
    assert client.get(f"/api/v1/plans/{plan_id}?limit=0").status_code == 400
    assert client.get("/api/v1/plans/987654").status_code == 404


def test_region_head_reads_only_their_region(as_user, created) -> None:
    plan_id = created.get_json()["id"]
    body = as_user("head.east").get(f"/api/v1/plans/{plan_id}").get_json()
    codes = [u["code"] for u in body["units"]]
    assert codes[0] == "EAST"
    assert not any(c.startswith(("WEST", "SOUTH", "NORTH", "CENTRAL", "NE")) or c == "HQ"
                   for c in codes)
    assert "plan_risks" not in body["summary"]
    assert all(x["unit"].startswith(("EAST", "P")) for x in body["summary"]["infeasible"])


def test_sales_reads_only_themself(as_user, created) -> None:
    plan_id = created.get_json()["id"]
    body = as_user("sales.p0001").get(f"/api/v1/plans/{plan_id}").get_json()
    assert [u["code"] for u in body["units"]] == ["P0001"]
    assert body["units_total"] == 1


def test_unit_explanation_is_scope_checked(as_user, created) -> None:
    plan_id = created.get_json()["id"]
    client = as_user("head.east")
    response = client.get(f"/api/v1/plans/{plan_id}/units/EAST")
    assert response.status_code == 200
    ex = response.get_json()
    assert ex["adds_up"] is True
    assert sum(f["amount"] for f in ex["factors"]) + ex["bounds_adjustment"] \
        + ex["rounding_adjustment"] == ex["target"]
    assert sum(c["target"] for c in ex["children"]) == ex["target"]
    assert [f["key"] for f in ex["factors"]][:2] == ["historical_performance", "regional_potential"]
    assert ex["parent"]["code"] == "HQ"
    west = client.get(f"/api/v1/plans/{plan_id}/units/WEST")
    assert west.status_code == 404
    assert west.get_json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/plans/987654/units/EAST").status_code == 404


def test_every_plan_route_is_documented(app, client) -> None:
    documented = {f"/api/v1{path}": set(ops) for path, ops in
                  client.get("/api/v1/openapi.json").get_json()["paths"].items()}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if not path.startswith("/api/v1/plans"):
            continue
        assert path in documented, path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in documented[path], (method, path)
