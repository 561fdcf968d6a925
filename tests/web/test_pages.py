"""The org browser, editing inputs, the audit log and the shell around them."""

from __future__ import annotations

import re

import pytest
from support import sign_in

from quotaflow.store import db
from quotaflow.store.models import AuditEntry


def test_overview_shows_roles_and_scope(as_user) -> None:
    page = as_user("head.east").get("/").data.decode()
    assert 'data-testid="scope-root"' in page
    assert 'href="/org/EAST"' in page


def test_tree_loads_children_on_demand(as_user) -> None:
    client = as_user("ceo")
    tree = client.get("/org").data.decode()
    assert 'href="/org/HQ"' in tree
    assert 'hx-get="/org/HQ/children"' in tree
    partial = client.get("/org/HQ/children", headers={"HX-Request": "true"}).data.decode()
    assert "<html" not in partial
    for region in ("EAST", "SOUTH", "NORTH", "CENTRAL", "WEST", "NE"):
        assert f'href="/org/{region}"' in partial


def test_search_finds_units_in_scope(as_user) -> None:
    client = as_user("head.west")
    assert 'href="/org/WEST-T1"' in client.get("/org/search?q=WEST-T1").data.decode()
    assert 'href="/org/EAST-T1"' not in client.get("/org/search?q=EAST-T1").data.decode()


def test_unit_page_shows_inputs_history_and_children(as_user) -> None:
    page = as_user("head.east").get("/org/EAST?period=2026Q4").data.decode()
    assert 'data-testid="history"' in page
    for period in ("2025Q4", "2026Q1", "2026Q2", "2026Q3"):
        assert period in page
    assert 'name="attr:market_potential"' in page
    assert 'href="/org/EAST-T1?period=2026Q4"' in page


def test_read_only_roles_see_values_without_inputs(as_user) -> None:
    page = as_user("ceo").get("/org/EAST").data.decode()
    assert 'name="attr:market_potential"' not in page
    assert "market_potential" in page


@pytest.mark.usefixtures("inputs_open")
def test_editing_inputs_is_saved_and_audited(app, as_user) -> None:
    client = as_user("lead.east.t1")
    response = client.post("/org/EAST-T1?period=2026Q4", data={"attr:product_fit": "72.5"})
    assert response.status_code == 302
    after = client.get(response.location).data.decode()
    assert 'value="72.5"' in after
    with app.app_context():
        entry = (db.session.query(AuditEntry).filter_by(action="set_attributes", entity_id="EAST-T1@2026Q4")
                 .order_by(AuditEntry.id.desc()).first())
        assert entry.actor_name == "lead.east.t1"
        assert entry.after == {"product_fit": 72.5}
        assert entry.before["product_fit"] != 72.5
    audit = as_user("admin").get("/audit").data.decode()
    assert "EAST-T1@2026Q4" in audit


def test_bad_input_is_refused_beside_the_field(as_user) -> None:
    client = as_user("lead.east.t1")
    before = client.get("/api/v1/units/EAST-T1/attributes").get_json()["values"]
    response = client.post("/org/EAST-T1?period=2026Q4",
                           data={"attr:product_fit": "lots", "attr:competitor_coverage": "12"})
    assert response.status_code == 400
    page = response.data.decode()
    assert 'aria-invalid="true"' in page
    assert "“lots” 不是数字。" in page  # the user's language (zh)
    assert client.get("/api/v1/units/EAST-T1/attributes").get_json()["values"] == before


def test_api_refuses_bad_values_with_a_pointer(as_user) -> None:
    client = as_user("head.east")
    response = client.put("/api/v1/units/EAST/attributes", json={"values": {"product_fit": "NaN"}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["pointer"] == "/values/product_fit"
    missing = client.put("/api/v1/units/EAST/attributes", json={"period": "1999Q1", "values": {}})
    assert missing.status_code == 404
    assert missing.get_json()["error"]["details"] == {"pointer": "/period", "code": "1999Q1"}


def test_security_headers_and_vendored_htmx(client) -> None:
    page = client.get("/login")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "https://" not in page.data.decode()  # no CDN: runs on closed networks
    script = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert script.status_code == 200
    assert b"htmx" in script.data[:2000]


def test_openapi_document_lists_the_routes(app, client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    documented = {f"/api/v1{path}" for path in document["paths"]}
    # Flask's "<int:version>" is OpenAPI's "{version}".
    routes = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
    }
    assert routes == documented


def test_unknown_api_path_uses_the_error_shape(client) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


def test_sales_person_sees_only_themself(app) -> None:
    client = sign_in(app.test_client(), "sales.p0001")
    roots = client.get("/api/v1/units").get_json()["units"]
    assert [u["code"] for u in roots] == ["P0001"]
    assert client.get("/org/P0001").status_code == 200
    assert client.get("/org/P0002").status_code == 404
