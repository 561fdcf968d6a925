"""API twins of the page actions that had none (the builder's check and weights, a unit's
inputs form, a plan's impact preview, the unit search, the what-if people rows): the
same use cases as the pages, the pages' role x scope, JSON errors with pointers. And a
guard: every state-changing page route has a documented API twin."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from quotaflow.api.openapi import openapi_document
from quotaflow.services import specs
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import FormSubmission, SpecVersion

API = "/api/v1"


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.mimetype == "application/json"
    return response.get_json()["error"]


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def active_model(app) -> dict:
    with app.app_context():
        return specs.active_version(db.session, "factor_model", "default").content


# -- the factor builder: expression check ---------------------------------------------------


def test_the_expression_check_runs_the_same_preview_as_the_page(as_user) -> None:
    client = as_user("hrbp")
    body = client.post(f"{API}/builder/check", json={"expression": "headcount * 2", "level": 2})
    assert body.status_code == 200, body.data[:300]
    preview = body.get_json()
    assert preview["valid"] is True and preview["error"] is None
    assert preview["level"] == "team" and preview["summary"]["count"] > 0
    codes = [s["code"] for s in preview["samples"]]
    assert codes and all(re.fullmatch(r"[A-Z]+-T\d+", c) for c in codes)
    page = client.post("/builder/check", data={"expression": "headcount * 2", "level": "2"})
    html = page.get_data(as_text=True)
    assert all(code in html for code in codes)  # the page shows the same units


def test_an_invalid_expression_is_reported_with_its_column(as_user) -> None:
    body = as_user("admin").post(f"{API}/builder/check", json={"expression": "headcount +"})
    preview = body.get_json()
    assert body.status_code == 200 and preview["valid"] is False
    assert preview["error"]["code"] and isinstance(preview["error"]["column"], int)
    body = as_user("admin").post(f"{API}/builder/check",
                                 json={"expression": "rating * 2",
                                       "new_fields": [{"name": "rating", "type": "number"}]})
    assert body.get_json()["valid"] is True  # a new field is known while the factor is typed


@pytest.mark.parametrize(("payload", "status", "pointer"), [
    ([1, 2], 400, ""),
    ({}, 422, "/expression"),
    ({"expression": "  "}, 422, "/expression"),
    ({"expression": "headcount", "level": "two"}, 422, "/level"),
    ({"expression": "headcount", "new_fields": {"name": "x"}}, 422, "/new_fields"),
    ({"expression": "headcount", "new_fields": [{"name": "x", "type": "text"}]}, 422,
     "/new_fields/0/type"),
    ({"expression": "headcount", "new_fields": [{"name": "Bad Name"}]}, 422,
     "/new_fields/0/name"),
])
def test_an_invalid_check_body_is_refused_with_its_pointer(as_user, payload, status,
                                                             pointer) -> None:
    body = error(as_user("hrbp").post(f"{API}/builder/check", json=payload), status)
    assert body["details"]["pointer"] == pointer


@pytest.mark.parametrize("username", ["head.east", "ceo", "lead.east.t1", "sales.p0001"])
def test_only_configuration_roles_use_the_builder_twins(as_user, app, username) -> None:
    client = as_user(username)
    versions = count(app, SpecVersion, SpecVersion.kind == "factor_model")
    assert error(client.post(f"{API}/builder/check", json={"expression": "headcount"}),
                 403)["code"] == "forbidden"
    weights = active_model(app)["weights"]
    error(client.post(f"{API}/builder/weights", json={"weights": weights}), 403)
    error(client.post(f"{API}/builder/factors", json=CROSS_BORDER), 403)
    error(client.put(f"{API}/builder/factors/{next(iter(weights))}", json={"weight": 20}), 403)
    assert count(app, SpecVersion, SpecVersion.kind == "factor_model") == versions


# -- the factor builder: weights ----------------------------------------------------------


def test_weights_are_saved_as_a_new_draft_like_the_page(as_user, app) -> None:
    weights = dict(active_model(app)["weights"])
    first, second = list(weights)[:2]
    moved = min(weights[first], 5)
    weights[first] -= moved
    weights[second] += moved
    response = as_user("hrbp").post(f"{API}/builder/weights",
                                    json={"weights": weights, "note": "api twin"})
    assert response.status_code == 201, response.data[:300]
    saved = response.get_json()
    assert saved["status"] == "draft" and saved["note"] == "api twin"
    assert saved["content"]["weights"] == weights
    with app.app_context():
        latest = specs.latest_version(db.session, "factor_model", "default")
        assert latest.version == saved["version"] and latest.author.username == "hrbp"


@pytest.mark.parametrize(("change", "status", "code", "pointer"), [
    (lambda w: {**w, next(iter(w)): w[next(iter(w))] + 1}, 422, "weights_total", "/weights"),
    (lambda w: {k: v for i, (k, v) in enumerate(w.items()) if i}, 422, "missing_weight", None),
    (lambda w: {**w, "nope": 0}, 422, "unknown_factor", "/weights/nope"),
    (lambda w: {**w, next(iter(w)): "ten"}, 422, "invalid_weights", None),
])
def test_bad_weights_are_refused_with_their_pointer_and_nothing_is_saved(
        as_user, app, change, status, code, pointer) -> None:
    weights = dict(active_model(app)["weights"])
    first = next(iter(weights))
    versions = count(app, SpecVersion, SpecVersion.kind == "factor_model")
    body = error(as_user("hrbp").post(f"{API}/builder/weights",
                                      json={"weights": change(weights)}), status)
    assert body["code"] == code
    assert body["details"]["pointer"] == (pointer or f"/weights/{first}")
    assert count(app, SpecVersion, SpecVersion.kind == "factor_model") == versions


def test_a_weights_body_that_is_not_an_object_is_a_400(as_user) -> None:
    assert error(as_user("hrbp").post(f"{API}/builder/weights", json=[]),
                 400)["details"]["pointer"] == ""
    assert error(as_user("hrbp").post(f"{API}/builder/weights", json={"weights": 3}),
                 422)["details"]["pointer"] == "/weights"


# -- the factor builder: one factor ------------------------------------------------------------

CROSS_BORDER = {
    "key": "cross_border", "label_zh": "跨境服务能力", "label_en": "Cross-border service capability",
    "normalisation": "score", "expression": "cross_border_rating", "scale": "headcount",
    "weight": 10, "rebalance": True,
    "new_fields": [{"name": "cross_border_rating", "type": "number", "min": 0, "max": 100,
                "default": 50, "label_zh": "跨境服务能力评分",
                "label_en": "Cross-border capability rating"}],
}


def test_a_factor_is_added_as_a_draft_like_the_page(as_user, app) -> None:
    response = as_user("hrbp").post(f"{API}/builder/factors", json=CROSS_BORDER)
    assert response.status_code == 201, response.data[:500]
    doc = response.get_json()["content"]
    factor = next(f for f in doc["factors"] if f["key"] == "cross_border")
    assert factor["fields"] == ["cross_border_rating", "headcount"]  # derived, never typed
    assert factor["scale"] == "headcount"
    assert doc["weights"]["cross_border"] == 10
    assert round(sum(doc["weights"].values()), 6) == 100
    assert any(f["name"] == "cross_border_rating" for f in doc["fields"])
    assert response.get_json()["status"] == "draft"


def test_a_factor_is_rewritten_with_its_weight(as_user, app) -> None:
    key = next(iter(active_model(app)["weights"]))
    before = next(f for f in active_model(app)["factors"] if f["key"] == key)
    response = as_user("admin").put(f"{API}/builder/factors/{key}",
                                    json={**before, "weight": 25, "note": "api"})
    assert response.status_code == 201, response.data[:500]
    assert response.get_json()["content"]["weights"][key] == 25
    error(as_user("admin").put(f"{API}/builder/factors/no_such_factor",
                               json={**before, "weight": 25}), 404)


@pytest.mark.parametrize(("change", "code", "pointer"), [
    ({"weight": "ten"}, "invalid_factor", "/weight"),
    ({"key": ""}, "invalid_factor", "/key"),
    ({"label_en": 3}, "invalid_factor", "/label_en"),
    ({"rebalance": "yes"}, "invalid_factor", "/rebalance"),
    ({"new_fields": [{"name": "Rating"}]}, "bad_field_name", "/new_fields/0/name"),
    ({"weight": 120}, "weight_range", "/weights/cross_border"),
])
def test_an_invalid_factor_is_refused_with_its_pointer(as_user, app, change, code,
                                                         pointer) -> None:
    versions = count(app, SpecVersion, SpecVersion.kind == "factor_model")
    body = error(as_user("hrbp").post(f"{API}/builder/factors", json={**CROSS_BORDER, **change}),
                 422)
    assert (body["code"], body["details"]["pointer"]) == (code, pointer)
    assert count(app, SpecVersion, SpecVersion.kind == "factor_model") == versions


def test_an_existing_key_is_refused_for_a_new_factor(as_user, app) -> None:
    key = next(iter(active_model(app)["weights"]))
    body = error(as_user("hrbp").post(f"{API}/builder/factors",
                                      json={**CROSS_BORDER, "key": key}), 422)
    assert (body["code"], body["details"]["pointer"]) == ("duplicate_key", "/key")


# -- a unit's inputs form --------------------------------------------------------------------


def form_values(app, client, code: str, **changes) -> tuple[int, dict]:
    """The form version and a complete valid filling: stored values, else each field's min."""
    form = client.get(f"{API}/collect/{code}").get_json()
    values = dict(form["values"])
    for field in active_model(app)["fields"]:
        if field["name"] not in values and field.get("type") != "boolean":
            values[field["name"]] = field.get("min", 1)
    return form["form_version"], {**values, **changes}


def stored(app, code: str) -> dict[str, float]:
    with app.app_context():
        unit = q.unit_by_code(db.session, code)
        period = q.periods(db.session)[-1]
        return q.unit_attributes(db.session, unit.id, period.id)


@pytest.mark.usefixtures("inputs_open")
def test_a_region_head_saves_a_units_form_pinned_to_its_version(as_user, app) -> None:
    client = as_user("head.east")
    version, values = form_values(app, client, "EAST-T3", product_fit=61.5)
    before = count(app, FormSubmission)
    response = client.post(f"{API}/collect/EAST-T3",
                           json={"form_version": version, "values": values})
    assert response.status_code == 201, response.data[:500]
    body = response.get_json()
    assert body["form_version"] == version and body["values"]["product_fit"] == 61.5
    assert stored(app, "EAST-T3")["product_fit"] == 61.5
    assert count(app, FormSubmission) == before + 1
    with app.app_context():
        submission = db.session.get(FormSubmission, body["submission"])
        assert submission.form_version.version == version
    assert client.get(f"{API}/collect/EAST-T3").get_json()["values"]["product_fit"] == 61.5


def test_a_form_filled_against_a_stale_version_is_a_conflict(as_user, app) -> None:
    client = as_user("head.east")
    version, values = form_values(app, client, "EAST-T4", product_fit=12)
    before = stored(app, "EAST-T4")
    body = error(client.post(f"{API}/collect/EAST-T4",
                             json={"form_version": version - 1, "values": values}), 409)
    assert body["code"] == "stale_form" and body["details"]["pointer"] == "/form_version"
    assert body["details"]["current"] == version
    assert stored(app, "EAST-T4") == before


def test_every_refused_field_comes_back_with_its_pointer(as_user, app) -> None:
    client = as_user("head.east")
    version, values = form_values(app, client, "EAST-T4", product_fit=120, headcount=3.5,
                                  market_potential="lots")
    before, subs = stored(app, "EAST-T4"), count(app, FormSubmission)
    body = error(client.post(f"{API}/collect/EAST-T4", headers={"Accept-Language": "en"},
                             json={"form_version": version, "values": values}), 422)
    assert body["code"] == "invalid_form"
    issues = {i["pointer"]: i["message"] for i in body["details"]["issues"]}
    assert issues == {"/values/product_fit": "Enter 100 or less.",
                      "/values/headcount": "Enter a whole number.",
                      "/values/market_potential": "Enter a number."}
    assert body["details"]["pointer"] in issues
    assert stored(app, "EAST-T4") == before and count(app, FormSubmission) == subs


@pytest.mark.parametrize(("payload", "status", "pointer"), [
    ("nope", 400, ""),
    ({"values": {}}, 422, "/form_version"),
    ({"form_version": "3", "values": {}}, 422, "/form_version"),
    ({"form_version": 1, "values": []}, 422, "/values"),
    ({"form_version": 1, "values": {"no_such_field": 1}}, 422, "/values/no_such_field"),
    ({"form_version": 1, "values": {"headcount": [1]}}, 422, "/values/headcount"),
])
def test_an_invalid_form_body_is_refused_with_its_pointer(as_user, payload, status,
                                                            pointer) -> None:
    client = as_user("head.east")
    response = (client.post(f"{API}/collect/EAST-T5", data=payload,
                            content_type="application/json")
                if isinstance(payload, str) else
                client.post(f"{API}/collect/EAST-T5", json=payload))
    assert error(response, status)["details"]["pointer"] == pointer


@pytest.mark.parametrize(("username", "code", "status"), [
    ("sales.p0001", "P0001", 403),     # sales read their unit, never write it
    ("ceo", "EAST-T2", 403),           # executives read everything, write nothing
    ("head.east", "SOUTH-T1", 404),    # another region: not found, as on the page
    ("lead.east.t1", "EAST-T2", 404),  # another team
    ("head.east", "P0001", 404),       # in scope, but region heads collect regions and teams
])
def test_the_form_twin_keeps_the_pages_role_and_scope(as_user, app, username, code,
                                                     status) -> None:
    client = as_user(username)
    before, subs = stored(app, code), count(app, FormSubmission)
    response = client.post(f"{API}/collect/{code}", json={"form_version": 1, "values": {}})
    error(response, status)
    assert client.post(f"/collect/{code}", data={"form_version": "1"}).status_code == status
    assert stored(app, code) == before and count(app, FormSubmission) == subs


@pytest.mark.parametrize(("username", "code"), [
    ("head.east", "EAST"), ("lead.east.t1", "EAST-T1"), ("hrbp", "SOUTH-T1"), ("admin", "P0001")])
def test_collectors_read_the_forms_they_fill_in(as_user, username, code) -> None:
    response = as_user(username).get(f"{API}/collect/{code}")
    assert response.status_code == 200, response.data[:300]
    assert response.get_json()["unit"] == code and response.get_json()["form_version"] >= 1


@pytest.mark.parametrize(("username", "expected"), [
    ("head.east", ["EAST"] + [f"EAST-T{i}" for i in range(1, 7)]),
    ("lead.east.t1", ["EAST-T1"]),
])
def test_the_collect_list_is_the_pages(as_user, username, expected) -> None:
    client = as_user(username)
    body = client.get(f"{API}/collect").get_json()
    assert [u["code"] for u in body["units"]] == expected
    page = client.get("/collect").get_data(as_text=True)
    assert re.findall(r'<tr data-unit="([^"]+)"', page) == expected
    assert all(u["filled"] <= u["total"] for u in body["units"])


@pytest.mark.parametrize("username", ["ceo", "sales.p0001"])
def test_read_only_roles_have_no_collect_list(as_user, username) -> None:
    error(as_user(username).get(f"{API}/collect"), 403)
    assert as_user(username).get("/collect").status_code == 403


@pytest.mark.parametrize(("username", "status", "codes"), [
    ("head.east", 200, ["EAST"]), ("lead.east.t1", 403, None), ("sales.p0001", 403, None)])
def test_the_whatif_units_follow_the_callers_scope(as_user, username, status, codes) -> None:
    response = as_user(username).get(f"{API}/whatif")
    assert response.status_code == status
    if codes is not None:
        assert [u["code"] for u in response.get_json()["units"]] == codes


def test_company_wide_roles_run_whatifs_on_every_region(as_user) -> None:
    codes = [u["code"] for u in as_user("hrbp").get(f"{API}/whatif").get_json()["units"]]
    assert {"EAST", "NORTH", "SOUTH"} <= set(codes) and "HQ" not in codes


# -- a plan's impact preview ---------------------------------------------------------------


def model_version_id(app) -> int:
    with app.app_context():
        return specs.active_version(db.session, "factor_model", "default").id


def test_the_impact_preview_matches_the_page(as_user, app, world) -> None:
    client = as_user("hrbp")
    version = model_version_id(app)
    response = client.get(f"{API}/plans/{world.plan_id}/impact?model_version={version}")
    assert response.status_code == 200, response.data[:300]
    impact = response.get_json()
    assert impact["plan"] == world.plan_id and impact["model_version"] == version
    regions = {r["code"]: r for r in impact["regions"]}
    assert {"EAST", "NORTH", "SOUTH"} <= set(regions)
    assert all(r["delta"] == r["new_target"] - r["old_target"] for r in regions.values())
    page = client.get(f"/plans/{world.plan_id}/impact?model_version={version}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and all(code in html for code in regions)


@pytest.mark.parametrize("username", ["head.east", "ceo", "lead.east.t1", "sales.p0001"])
def test_only_configuration_readers_preview_an_impact(as_user, app, world, username) -> None:
    url = f"/plans/{world.plan_id}/impact?model_version={model_version_id(app)}"
    error(as_user(username).get(API + url), 403)
    assert as_user(username).get(url).status_code == 403


def test_an_impact_query_without_a_known_version_is_refused_with_its_pointer(as_user,
                                                                             world) -> None:
    client = as_user("admin")
    body = error(client.get(f"{API}/plans/{world.plan_id}/impact"), 400)
    assert body["details"]["pointer"] == "/model_version"
    body = error(client.get(f"{API}/plans/{world.plan_id}/impact?model_version=987654"), 404)
    assert body["details"]["pointer"] == "/model_version"


# -- the unit search --------------------------------------------------------------------------


def searched(client, text: str) -> list[str]:
    response = client.get(f"{API}/units/search", query_string={"q": text})
    assert response.status_code == 200
    return [u["code"] for u in response.get_json()["units"]]


def test_the_search_stays_within_the_callers_scope_like_the_page(as_user) -> None:
    east = searched(as_user("head.east"), "T1")
    assert "EAST-T1" in east and all(c.startswith("EAST") or c.startswith("P") for c in east)
    assert not {"NORTH-T1", "SOUTH-T1"} & set(east)
    everyone = searched(as_user("hrbp"), "T1")
    assert {"EAST-T1", "NORTH-T1", "SOUTH-T1"} <= set(everyone)
    assert searched(as_user("sales.p0001"), "P000") == ["P0001"]
    assert searched(as_user("sales.p0001"), "   ") == []
    page = as_user("head.east").get("/org/search?q=T1").get_data(as_text=True)
    assert all(code in page for code in east)


# -- the what-if people rows ------------------------------------------------------------------


def test_a_region_head_reads_a_teams_people_as_input_rows(as_user, app, world) -> None:
    client = as_user("head.east")
    response = client.get(f"{API}/whatif/EAST/people",
                          query_string={"team": "EAST-T1", "plan": world.plan_id})
    assert response.status_code == 200, response.data[:300]
    body = response.get_json()
    assert body["team"] == "EAST-T1" and body["plan"] == world.plan_id
    with app.app_context():
        team = q.unit_by_code(db.session, "EAST-T1")
        people = sorted(u.code for u in q.children(db.session, team))
    assert [p["code"] for p in body["people"]] == people
    names = [f["name"] for f in body["fields"]]
    assert names and all([c["name"] for c in p["cells"]] == names for p in body["people"])
    page = client.get(f"/whatif/EAST/people?team=EAST-T1&plan={world.plan_id}")
    assert all(f'name="in:{code}:{names[0]}"' in page.get_data(as_text=True) for code in people)


@pytest.mark.parametrize(("username", "unit", "team", "status"), [
    ("head.east", "EAST", "NORTH-T1", 404),   # another region's team
    ("head.east", "NORTH", "NORTH-T1", 404),  # another region
    ("head.east", "EAST", "EAST", 404),       # the unit itself is not one of its teams
    ("lead.east.t1", "EAST-T1", "EAST-T1", 403),  # team leads do not run what-ifs
    ("sales.p0001", "EAST", "EAST-T1", 404),  # outside their scope
    ("sales.p0001", "P0001", "P0001", 403),   # their own unit, but sales do not run what-ifs
])
def test_the_people_twin_keeps_the_pages_role_and_scope(as_user, world, username, unit, team,
                                                        status) -> None:
    client = as_user(username)
    error(client.get(f"{API}/whatif/{unit}/people",
                     query_string={"team": team, "plan": world.plan_id}), status)
    page = client.get(f"/whatif/{unit}/people?team={team}&plan={world.plan_id}")
    assert page.status_code == status


@pytest.mark.parametrize("username", ["hrbp", "admin", "ceo"])
def test_company_wide_roles_read_any_regions_people(as_user, world, username) -> None:
    response = as_user(username).get(f"{API}/whatif/NORTH/people",
                                     query_string={"team": "NORTH-T1", "plan": world.plan_id})
    assert response.status_code == 200 and response.get_json()["team"] == "NORTH-T1"


@pytest.mark.parametrize(("query", "pointer"), [({}, "/team"), ({"team": "EAST-T1", "plan": "x"},
                                                                 "/plan")])
def test_an_invalid_people_query_is_refused_with_its_pointer(as_user, query, pointer) -> None:
    body = error(as_user("head.east").get(f"{API}/whatif/EAST/people", query_string=query), 400)
    assert body["details"]["pointer"] == pointer


# -- every state-changing page action has a documented twin -----------------------------------

#: Page endpoint -> the API operation(s) (path, method) that do the same through the same
#: use case. A new POST/PUT/DELETE page route fails the test below until it is listed here.
PAGE_TWINS: dict[str, tuple[tuple[str, str], ...]] = {
    "account.change_password": (("/me/password", "post"),),
    "account.create_my_token": (("/tokens", "post"),),
    "account.revoke_token": (("/tokens/{token_id}", "delete"),),
    "account.create_user_token": (("/users/{username}/tokens", "post"),),
    "account.sign_out_everywhere": (("/users/{username}/sign-out-everywhere", "post"),),
    "alerts.acknowledge": (("/alerts/{alert_id}/acknowledge", "post"),),
    "alerts.actuals_upload": (("/actuals/import", "post"),),
    "builder.activate": (("/specs/{kind}/{key}/versions/{version}/activate", "post"),),
    "builder.check": (("/builder/check", "post"),),
    "builder.factor": (("/builder/factors", "post"), ("/builder/factors/{key}", "put")),
    "builder.weights": (("/builder/weights", "post"),),
    "collect.unit_form": (("/collect/{code}", "get"), ("/collect/{code}", "post")),
    "config.activate": (("/specs/{kind}/{key}/versions/{version}/activate", "post"),),
    "config.editor": (("/specs/{kind}/{key}/versions", "post"),),
    "config.import_bundle": (("/config/bundle", "post"),),
    "config.set_planning_period": (("/planning-period", "put"),),
    "confirm.accept": (("/confirmations/{item_id}/accept", "post"),),
    "confirm.accept_all": (("/confirmations/accept", "post"),),
    "confirm.appeal": (("/confirmations/{item_id}/appeal", "post"),),
    "confirm.publish": (("/plans/{plan_id}/publish", "post"),),
    "emergency.preview": (("/emergency/preview", "post"),),
    "emergency.submit": (("/emergency", "post"),),
    "inbox.mark_all_read": (("/inbox/read-all", "post"),),
    "inbox.mark_read": (("/inbox/{message_id}/read", "post"),),
    "inbox.retry": (("/outbox/deliveries/{delivery_id}/retry", "post"),),
    "letters.countersign_letter": (("/letters/{letter_id}/countersign", "post"),),
    "letters.sign_letter": (("/letters/{letter_id}/sign", "post"),),
    "pages.org_unit": (("/units/{code}/attributes", "put"),),
    "plans.simulate": (("/plans/simulate", "post"), ("/plans", "post")),
    "sheets.upload_import": (("/imports/{kind}", "post"),),
    "sheets.upload_inputs": (("/inputs", "post"),),
    "tasks.act": (("/flows/{instance_id}/actions", "post"),),
    "uploads.upload": (("/uploads", "post"),),
    "whatif.results": (("/whatif/{code}", "post"),),
    "whatif.snapshot": (("/whatif/{code}/snapshot", "post"),),
    # The Flask-Admin views' enabled writes.
    "admin_users.create_view": (("/users", "post"),),
    "admin_grants.create_view": (("/users/{username}/grants", "post"),),
    "admin_grants.delete_view": (("/users/{username}/grants/{grant_id}", "delete"),),
    "admin_grants.action_view": (("/users/{username}/grants/{grant_id}", "delete"),),
    "admin_specs.create_view": (("/specs/{kind}/{key}/versions", "post"),),
}
#: Writes of the browser session itself: API callers authenticate with a bearer token
#: and choose their language per request (Accept-Language).
SESSION_ONLY = {"auth.login", "auth.logout", "auth.set_language"}
#: Page actions still without an API twin, each with why; shrink this, never grow it.
KNOWN_GAPS = {
    "admin_units.create_view": "org units are created by the org import (POST /imports/org)",
    "admin_units.edit_view": "org units are edited by the org import (POST /imports/org)",
    "admin_users.edit_view": "API: activate/deactivate and grants; no display-name edit yet",
    "admin_grants.edit_view": "API: revoke the grant and grant the new one",
    "admin_periods.create_view": "periods have no API writes yet",
    "admin_periods.edit_view": "periods have no API writes yet",
}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _enabled(app, endpoint: str) -> bool:
    """Whether a Flask-Admin view's write route can change anything (its flags allow it)."""
    view = getattr(app.view_functions[endpoint], "__self__", None)
    if view is None or not hasattr(view, "can_create"):
        return True
    action = endpoint.rsplit(".", 1)[1]
    return {"create_view": view.can_create, "edit_view": view.can_edit,
            "delete_view": view.can_delete, "action_view": view.can_delete,
            "ajax_update": bool(view.column_editable_list)}.get(action, True)


def page_writes(app) -> set[str]:
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if not rule.endpoint.startswith("api.") and rule.methods & WRITES
            and _enabled(app, rule.endpoint)}


def test_every_state_changing_page_action_has_a_documented_api_twin(app) -> None:
    writes = page_writes(app)
    accounted = set(PAGE_TWINS) | SESSION_ONLY | set(KNOWN_GAPS)
    assert sorted(writes - accounted) == [], "page actions without an API twin: add one"
    assert sorted(accounted - writes) == [], "listed page actions that no longer write"
    assert not set(PAGE_TWINS) & set(KNOWN_GAPS)
    paths = openapi_document()["paths"]
    for endpoint, operations in PAGE_TWINS.items():
        for path, method in operations:
            assert method in paths.get(path, {}), f"{endpoint}: {method.upper()} {path} undocumented"


def test_the_guard_sees_page_writes_and_skips_disabled_admin_routes(app) -> None:
    writes = page_writes(app)
    assert {"builder.check", "collect.unit_form", "admin_grants.delete_view"} <= writes
    assert not {"admin_audit.create_view", "admin_audit.delete_view", "admin_units.delete_view",
                "admin_specs.edit_view", "pages.org_search", "whatif.people"} & writes
