"""The OpenAPI document and the code cannot drift: every route of the API is documented
with the same methods and path parameters, every documented operation answers for a
suitable signed-in user, and the document is valid OpenAPI 3.1."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from api_support import day
from sqlalchemy import func, select
from support import sign_in

from quotaflow.api.openapi import openapi_document
from quotaflow.store import db
from quotaflow.store.models import SpecVersion

PREFIX = "/api/v1"
IGNORED_METHODS = {"HEAD", "OPTIONS"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
DOC = openapi_document()


def documented() -> set[tuple[str, str]]:
    return {(path, method) for path, item in DOC["paths"].items() for method in item
            if method in HTTP_METHODS}


def routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(PREFIX + "/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(PREFIX):])
            found |= {(path, m.lower()) for m in rule.methods - IGNORED_METHODS}
    return found


def test_every_route_is_documented_with_its_methods(app) -> None:
    code, doc = routes(app), documented()
    assert sorted(code - doc) == [], "routes missing from /api/v1/openapi.json"
    assert sorted(doc - code) == [], "documented operations without a route"


@pytest.mark.parametrize(("path", "method"), sorted(documented()))
def test_path_parameters_are_documented(path: str, method: str) -> None:
    op = DOC["paths"][path][method]
    declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
    assert declared == set(re.findall(r"{([^}]+)}", path))


def test_the_document_is_valid_openapi_3_1(client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    served = client.get(f"{PREFIX}/openapi.json").get_json()
    assert served["openapi"].startswith("3.1")
    validator.validate(served)


# -- every documented operation answers -----------------------------------------------------

Case = Callable[[Any], tuple[str, str, dict[str, Any]]]


def _csv(period: str) -> dict[str, Any]:
    rows = f"unit_code,date,value,source_id\nP0001,{day(period)},1000,openapi-file\n".encode()
    return {"data": {"file": (io.BytesIO(rows), "actuals.csv")},
            "content_type": "multipart/form-data"}


#: (path, method) -> world -> (username, URL, test-client keywords): minimal valid input.
CASES: dict[tuple[str, str], Case] = {
    ("/openapi.json", "get"): lambda w: ("sales.p0001", "/openapi.json", {}),
    ("/me", "get"): lambda w: ("sales.p0001", "/me", {}),
    ("/periods", "get"): lambda w: ("head.east", "/periods", {}),
    ("/planning-period", "get"): lambda w: ("head.east", "/planning-period", {}),
    ("/planning-period", "put"): lambda w: (
        "hrbp", "/planning-period", {"json": {"period": "2026Q4"}}),
    ("/units", "get"): lambda w: ("head.east", "/units", {}),
    ("/units/{code}", "get"): lambda w: ("head.east", "/units/EAST", {}),
    ("/units/{code}/children", "get"): lambda w: ("head.east", "/units/EAST/children", {}),
    ("/units/{code}/attributes", "get"): lambda w: (
        "head.east", "/units/EAST/attributes?period=2026Q4", {}),
    ("/units/{code}/attributes", "put"): lambda w: (
        "head.east", "/units/EAST/attributes",
        {"json": {"period": w.period, "values": {"api_check": 1}}}),
    ("/units/{code}/history", "get"): lambda w: ("head.east", "/units/EAST/history", {}),
    ("/units/{code}/progress", "get"): lambda w: (
        "head.east", "/units/EAST/progress?period=2026Q4&week=6", {}),
    ("/audit", "get"): lambda w: ("admin", "/audit", {}),
    ("/specs", "get"): lambda w: ("hrbp", "/specs", {}),
    ("/specs/{kind}/{key}", "get"): lambda w: ("hrbp", "/specs/factor_model/default", {}),
    ("/specs/{kind}/{key}/versions/{version}", "get"): lambda w: (
        "hrbp", "/specs/factor_model/default/versions/1", {}),
    ("/specs/{kind}/{key}/versions", "post"): lambda w: (
        "hrbp", "/specs/factor_model/default/versions", {"json": {"content": {}}}),
    ("/specs/{kind}/{key}/versions/{version}/activate", "post"): lambda w: (
        "hrbp", "/specs/factor_model/default/versions/1/activate", {}),
    ("/plans", "get"): lambda w: ("head.east", f"/plans?period={w.period}", {}),
    ("/plans", "post"): lambda w: (
        "cfo", "/plans", {"json": {"period": w.period, "scenario": "balanced",
                                   "total": 249_500_000}}),
    ("/plans/{plan_id}", "get"): lambda w: ("head.east", f"/plans/{w.plan_id}?limit=5", {}),
    ("/plans/{plan_id}/units/{code}", "get"): lambda w: (
        "head.east", f"/plans/{w.plan_id}/units/EAST", {}),
    ("/plans/{plan_id}/publish", "post"): lambda w: ("hrbp", f"/plans/{w.plan_id}/publish", {}),
    ("/plans/{plan_id}/diff", "get"): lambda w: (
        "hrbp", f"/plans/{w.draft_id}/diff?against={w.plan_id}", {}),
    ("/tasks", "get"): lambda w: ("lead.east.t1", "/tasks", {}),
    ("/flows/{instance_id}", "get"): lambda w: ("head.north", f"/flows/{w.flow_id}", {}),
    ("/flows/{instance_id}/actions", "post"): lambda w: (
        "head.north", f"/flows/{w.flow_id}/actions",
        {"json": {"action": "comment", "comment": "More detail attached."}}),
    ("/actuals", "post"): lambda w: (
        "head.east", "/actuals", {"json": [{"unit": "P0001", "date": day(w.period),
                                            "value": 1000, "source_id": "openapi-check"}]}),
    ("/alerts", "get"): lambda w: ("head.east", "/alerts?period=2026Q4", {}),
    ("/alerts/{alert_id}/acknowledge", "post"): lambda w: (
        "admin", f"/alerts/{w.alert_id}/acknowledge", {}),
    ("/confirmations", "get"): lambda w: ("head.east", "/confirmations", {}),
    ("/confirmations/{item_id}/accept", "post"): lambda w: (
        "head.east", f"/confirmations/{w.east_item}/accept", {"json": {}}),
    ("/confirmations/accept", "post"): lambda w: (
        "head.east", "/confirmations/accept", {"json": {"items": [{"id": w.east_item}]}}),
    ("/confirmations/{item_id}/appeal", "get"): lambda w: (
        "head.east", f"/confirmations/{w.east_item}/appeal", {}),
    ("/confirmations/{item_id}/appeal", "post"): lambda w: (
        "head.east", f"/confirmations/{w.east_item}/appeal",
        {"json": {"requested": 1, "reason": "x"}}),
    ("/appeals/{appeal_id}", "get"): lambda w: ("head.north", f"/appeals/{w.appeal_id}", {}),
    ("/uploads", "post"): lambda w: (
        "head.east", "/uploads", {"data": {"unit": "EAST", "file": (
            io.BytesIO(b"notes\n"), "notes.txt")}, "content_type": "multipart/form-data"}),
    ("/uploads/{upload_id}", "get"): lambda w: ("head.north", f"/uploads/{w.upload_id}", {}),
    ("/letters", "get"): lambda w: ("lead.east.t1", "/letters", {}),
    ("/letters/{letter_id}", "get"): lambda w: ("sales.p0001", f"/letters/{w.letter_id}", {}),
    ("/letters/{letter_id}/sign", "post"): lambda w: (
        "sales.p0001", f"/letters/{w.letter_id}/sign", {}),
    ("/letters/{letter_id}/countersign", "post"): lambda w: (
        "lead.east.t1", f"/letters/{w.letter_id}/countersign", {}),
    ("/letters/{letter_id}/pdf", "get"): lambda w: (
        "sales.p0001", f"/letters/{w.letter_id}/pdf", {}),
    ("/alerts/scan", "post"): lambda w: ("hrbp", "/alerts/scan",
                                         {"json": {"period": "2026Q4", "week": 6}}),
    ("/actuals/import", "post"): lambda w: ("head.east", "/actuals/import", _csv(w.period)),
    ("/actuals/template", "get"): lambda w: ("head.east", "/actuals/template?format=csv", {}),
    ("/outbox", "get"): lambda w: ("hrbp", "/outbox", {}),
    ("/outbox/deliveries/{delivery_id}/retry", "post"): lambda w: (
        "hrbp", f"/outbox/deliveries/{w.delivery_id}/retry", {}),
    ("/inbox", "get"): lambda w: ("head.north", "/inbox", {}),
    ("/inbox/{message_id}/read", "post"): lambda w: (
        "head.north", f"/inbox/{w.message_id}/read", {}),
    ("/inbox/read-all", "post"): lambda w: ("head.north", "/inbox/read-all", {}),
    ("/users", "get"): lambda w: ("admin", "/users?active=true", {}),
    ("/users", "post"): lambda w: (
        "admin", "/users", {"json": {"username": f"api.{w.period.lower()}", "display_name": "A",
                                     "password": "a-long-password", "role": "sales",
                                     "scope": "P0001"}}),
    ("/users/{username}", "get"): lambda w: ("admin", "/users/head.east", {}),
    ("/users/{username}/deactivate", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/deactivate", {}),
    ("/users/{username}/activate", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/activate", {}),
    ("/users/{username}/grants", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/grants", {"json": {"role": "sales", "scope": "P0002"}}),
    ("/users/{username}/grants/{grant_id}", "delete"): lambda w: (
        "admin", f"/users/{w.spare_user}/grants/{w.spare_grant}", {}),
    ("/users/{username}/tokens", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/tokens", {"json": {"name": "ci"}}),
    ("/users/{username}/sign-out-everywhere", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/sign-out-everywhere", {}),
    ("/users/{username}/password", "post"): lambda w: (
        "admin", f"/users/{w.spare_user}/password", {"json": {"password": "another-long-one"}}),
    ("/tokens", "get"): lambda w: ("head.east", "/tokens", {}),
    ("/me/password", "post"): lambda w: (
        "head.east", "/me/password", {"json": {"current_password": "wrong-password",
                                               "new_password": "another-long-one"}}),
    ("/tokens", "post"): lambda w: ("head.east", "/tokens", {"json": {"name": "erp", "days": 7}}),
    ("/tokens/{token_id}", "delete"): lambda w: ("admin", f"/tokens/{w.spare_token}", {}),
    ("/emergency", "get"): lambda w: ("hrbp", f"/emergency?period={w.period}", {}),
    ("/emergency/preview", "post"): lambda w: (
        "hrbp", "/emergency/preview", {"json": {"period": w.period, "cities": ["Jinan"]}}),
    ("/emergency", "post"): lambda w: (
        "hrbp", "/emergency", {"json": {"period": w.period, "cities": ["Jinan"],
                                        "reason": "Local policy change in Jinan."}}),
    ("/emergency/{request_id}", "get"): lambda w: (
        "ceo", f"/emergency/{w.emergency_id}", {}),
    ("/config/bundle", "get"): lambda w: ("hrbp", "/config/bundle", {}),
    ("/config/bundle", "post"): lambda w: ("hrbp", "/config/bundle", {"json": {}}),
    ("/confirm/alignment", "get"): lambda w: ("hrbp", f"/confirm/alignment?period={w.period}", {}),
    ("/confirm/appeal-check", "get"): lambda w: (
        "head.east", f"/confirm/appeal-check?item={w.east_item}&requested=1", {}),
    ("/dashboard", "get"): lambda w: ("head.east", "/dashboard", {}),
    ("/dashboard/units/{code}", "get"): lambda w: ("head.east", "/dashboard/units/EAST", {}),
    ("/hr/export", "get"): lambda w: ("hrbp", f"/hr/export?period={w.period}", {}),
    ("/imports/templates/{kind}.{fmt}", "get"): lambda w: (
        "admin", "/imports/templates/org.csv", {}),
    ("/imports/{kind}", "post"): lambda w: (
        "admin", "/imports/history", {"data": {"file": (io.BytesIO(b"x\n"), "h.csv")},
                                       "content_type": "multipart/form-data"}),
    ("/inputs", "post"): lambda w: (
        "head.east", "/inputs", {"data": {"period": "2026Q4", "file": (
            io.BytesIO(b"x\n"), "i.csv")}, "content_type": "multipart/form-data"}),
    ("/inputs.{fmt}", "get"): lambda w: ("head.east", "/inputs.csv?period=2026Q4", {}),
    ("/plans/simulate", "post"): lambda w: (
        "hrbp", "/plans/simulate", {"json": {"period": "2026Q4", "total": 249500000}}),
    ("/plans/{plan_id}/export.xlsx", "get"): lambda w: (
        "hrbp", f"/plans/{w.plan_id}/export.xlsx", {}),
    ("/whatif/{code}", "post"): lambda w: ("head.east", "/whatif/EAST", {"json": {}}),
    ("/whatif/{code}/snapshot", "post"): lambda w: (
        "head.east", "/whatif/EAST/snapshot", {"json": {}}),
    ("/builder/check", "post"): lambda w: (
        "hrbp", "/builder/check", {"json": {"expression": "headcount", "level": 2}}),
    ("/builder/weights", "post"): lambda w: (
        "hrbp", "/builder/weights", {"json": {"weights": {}}}),
    ("/builder/factors", "post"): lambda w: (
        "hrbp", "/builder/factors", {"json": {"key": "", "weight": 10}}),
    ("/builder/factors/{key}", "put"): lambda w: (
        "hrbp", "/builder/factors/historical_performance", {"json": {"weight": 30}}),
    ("/collect", "get"): lambda w: ("head.east", "/collect", {}),
    ("/whatif", "get"): lambda w: ("head.east", "/whatif", {}),
    ("/collect/{code}", "get"): lambda w: ("head.east", "/collect/EAST", {}),
    ("/collect/{code}", "post"): lambda w: (
        "head.east", "/collect/EAST", {"json": {"form_version": 0, "values": {}}}),
    ("/plans/{plan_id}/impact", "get"): lambda w: (
        "hrbp", f"/plans/{w.plan_id}/impact?model_version={_factor_model_version_id()}", {}),
    ("/units/search", "get"): lambda w: ("head.east", "/units/search?q=EAST", {}),
    ("/whatif/{code}/people", "get"): lambda w: (
        "head.east", f"/whatif/EAST/people?team=EAST-T1&plan={w.plan_id}", {}),
}


def _factor_model_version_id() -> int:
    with db.session.no_autoflush:
        return db.session.scalar(select(func.min(SpecVersion.id))
                                 .where(SpecVersion.kind == "factor_model"))


def test_every_documented_operation_has_a_case() -> None:
    assert sorted(documented() - set(CASES)) == []


@pytest.mark.parametrize(("path", "method"), sorted(documented()))
def test_every_documented_operation_answers(app, world, path: str, method: str) -> None:
    if (path, method) not in CASES:
        pytest.fail(f"add a case for {method.upper()} {path} to CASES")
    username, url, kwargs = CASES[(path, method)](world)
    client = sign_in(app.test_client(), username)
    response = client.open(PREFIX + url, method=method.upper(), **kwargs)
    assert response.status_code not in (404, 405), (response.status_code, response.data[:300])
    assert response.status_code < 500, (response.status_code, response.data[:300])
    documented_statuses = DOC["paths"][path][method]["responses"]
    assert str(response.status_code) in documented_statuses, (
        f"{response.status_code} is not documented for {method.upper()} {path}",
        response.data[:300])
