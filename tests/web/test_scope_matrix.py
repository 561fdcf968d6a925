"""Every role x a unit inside and outside its scope x read and write, for pages and API."""

from __future__ import annotations

import pytest
from support import DEMO_PASSWORD, sign_in

from quotaflow.http.guard import admin_blueprints
from quotaflow.services.access import ROLES
from quotaflow.services.auth import hash_password
from quotaflow.store import db
from quotaflow.store.models import RoleGrant, User
from quotaflow.store.queries import unit_by_code

# Each role held over a subtree of the demo company, with one unit in scope and one out.
# Scopes are regions or below so that "outside" exists for every role.
MATRIX_GRANTS = {
    "admin": ("SOUTH", "SOUTH-T1", "EAST"),
    "hrbp": ("NORTH", "NORTH-T2", "SOUTH"),
    "executive": ("CENTRAL", "CENTRAL-T1", "WEST"),
    "region_head": ("EAST", "EAST-T1", "WEST"),
    "team_lead": ("WEST-T1", "WEST-T1", "WEST-T2"),
    "sales": ("PERSON", "PERSON", "OTHER_PERSON"),
}
WRITERS = {"admin", "hrbp", "region_head", "team_lead"}
AUDIT_READERS = {"admin", "hrbp"}


def _person_codes(app) -> tuple[str, str]:
    with app.app_context():
        team = unit_by_code(db.session, "NE-T1")
        people = sorted(child.code for child in team.children)
    return people[0], people[1]


@pytest.fixture(scope="module")
def matrix(app):
    """Create one user per role: role -> (username, inside, outside, scope)."""
    person, other_person = _person_codes(app)
    resolved = {}
    with app.app_context():
        for role, (scope, inside, outside) in MATRIX_GRANTS.items():
            scope, inside, outside = (
                {"PERSON": person, "OTHER_PERSON": other_person}.get(c, c) for c in (scope, inside, outside)
            )
            username = f"matrix.{role}"
            user = User(username=username, display_name=username,
                        password_hash=hash_password(DEMO_PASSWORD), locale="en")
            user.grants.append(RoleGrant(role=role, unit=unit_by_code(db.session, scope)))
            db.session.add(user)
            db.session.commit()
            resolved[role] = (username, inside, outside, scope)
    return resolved


def test_matrix_covers_every_role() -> None:
    assert set(MATRIX_GRANTS) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_page_read(app, matrix, role: str, where: str) -> None:
    username, inside, outside, _scope = matrix[role]
    client = sign_in(app.test_client(), username)
    code = inside if where == "inside" else outside
    response = client.get(f"/org/{code}")
    if where == "inside":
        assert response.status_code == 200
        assert b'data-testid="unit-name"' in response.data
        assert code.encode() in response.data
    else:
        assert response.status_code == 404
        assert b'data-testid="unit-name"' not in response.data


@pytest.mark.usefixtures("inputs_open")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_page_write(app, matrix, role: str, where: str) -> None:
    username, inside, outside, _scope = matrix[role]
    client = sign_in(app.test_client(), username)
    code = inside if where == "inside" else outside
    value = f"{50 + ROLES.index(role)}"
    response = client.post(f"/org/{code}?period=2026Q4", data={"attr:product_fit": value})
    api = sign_in(app.test_client(), "admin").get(f"/api/v1/units/{code}/attributes?period=2026Q4")
    stored = api.get_json()["values"].get("product_fit")
    if where == "outside":
        assert response.status_code == 404
    elif role in WRITERS:
        assert response.status_code == 302
        assert stored == float(value)
    else:
        assert response.status_code == 403
    if where == "outside" or role not in WRITERS:
        assert stored != float(value)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_api_read(app, matrix, role: str, where: str) -> None:
    username, inside, outside, _scope = matrix[role]
    client = sign_in(app.test_client(), username)
    code = inside if where == "inside" else outside
    for path in (f"/api/v1/units/{code}", f"/api/v1/units/{code}/attributes",
                 f"/api/v1/units/{code}/history", f"/api/v1/units/{code}/children"):
        response = client.get(path)
        if where == "inside":
            assert response.status_code == 200, path
        else:
            assert response.status_code == 404, path
            assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.usefixtures("inputs_open")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("where", ["inside", "outside"])
def test_api_write(app, matrix, role: str, where: str) -> None:
    username, inside, outside, _scope = matrix[role]
    client = sign_in(app.test_client(), username)
    code = inside if where == "inside" else outside
    value = 60.5 + ROLES.index(role)
    response = client.put(f"/api/v1/units/{code}/attributes",
                          json={"period": "2026Q4", "values": {"competitor_coverage": value}})
    if where == "outside":
        assert response.status_code == 404
    elif role in WRITERS:
        assert response.status_code == 200
        assert response.get_json()["values"]["competitor_coverage"] == value
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ROLES)
def test_audit_log_page_and_api(app, matrix, role: str) -> None:
    client = sign_in(app.test_client(), matrix[role][0])
    expected = 200 if role in AUDIT_READERS else 403
    assert client.get("/audit").status_code == expected
    assert client.get("/api/v1/audit").status_code == expected


@pytest.mark.parametrize("role", ROLES)
def test_lists_hold_only_the_scope(app, matrix, role: str) -> None:
    username, inside, outside, scope = matrix[role]
    client = sign_in(app.test_client(), username)
    roots = [u["code"] for u in client.get("/api/v1/units").get_json()["units"]]
    assert roots == [scope]
    link = f'href="/org/{outside}"'.encode()
    search = client.get(f"/org/search?q={outside}").data
    assert link not in search
    assert f'href="/org/{inside}"'.encode() in client.get(f"/org/search?q={inside}").data
    assert link not in client.get("/org").data


def test_anonymous_is_sent_to_sign_in(client) -> None:
    response = client.get("/org/EAST")
    assert response.status_code == 302
    assert "/login" in response.location
    api = client.get("/api/v1/units/EAST")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "unauthenticated"


def test_every_endpoint_declares_its_access(app) -> None:
    # Flask-Admin's views cannot carry @requires: the guard gives every endpoint of the
    # Admin's blueprints "admin.access" (one rule, in quotaflow/http/guard.py).
    admin = admin_blueprints(app)
    assert {"admin", "admin_units", "admin_users", "admin_audit"} <= admin
    undeclared = [
        endpoint for endpoint, view in app.view_functions.items()
        if endpoint != "static" and not hasattr(view, "qf_access")
        and endpoint.split(".")[0] not in admin
    ]
    assert undeclared == []
