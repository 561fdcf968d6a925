"""Accounts and role grants through the API: administrators only (users.manage), every
change audited, refusals with their code and pointer."""

from __future__ import annotations

import uuid

import pytest
from support import sign_in

API = "/api/v1"
PASSWORD = "a-long-password"


@pytest.fixture
def made(app):
    """User names a test creates (they roll back with the test)."""
    return []


def api(app, username: str):
    return sign_in(app.test_client(), username)


def can_sign_in(app, username: str) -> bool:
    response = app.test_client().post("/login", data={"username": username,
                                                      "password": PASSWORD})
    return response.status_code == 302


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 403), ("ceo", 403), ("head.east", 403), ("lead.east.t1", 403),
    ("sales.p0001", 403)])
def test_only_admins_manage_accounts(app, made, username, status) -> None:
    client = api(app, username)
    assert client.get(f"{API}/users").status_code == status
    assert client.get(f"{API}/users/head.east").status_code == status
    name = f"api.{uuid.uuid4().hex[:8]}"
    made.append(name)
    created = client.post(f"{API}/users", json={
        "username": name, "display_name": "Someone", "password": PASSWORD, "role": "sales",
        "scope": "P0004"})
    assert created.status_code == (201 if status == 200 else 403)


def test_create_deactivate_grant_revoke_and_token(app, made) -> None:
    admin = api(app, "admin")
    name = f"api.{uuid.uuid4().hex[:8]}"
    made.append(name)
    body = {"username": name, "display_name": "New lead", "password": PASSWORD,
            "role": "team_lead", "scope": "EAST-T2", "locale": "en"}
    created = admin.post(f"{API}/users", json=body)
    assert created.status_code == 201 and created.headers["Location"] == f"{API}/users/{name}"
    assert [(g["role"], g["unit"]) for g in created.get_json()["grants"]] == [
        ("team_lead", "EAST-T2")]
    assert can_sign_in(app, name)

    refusals = [({**body}, 409, "user_exists", "/username"),
                ({**body, "username": name + "x", "scope": "NOPE"}, 404, "unknown_unit",
                 "/scope"),
                ({**body, "username": name + "x", "password": "short"}, 422,
                 "short_password", "/password"),
                ({**body, "username": name + "x", "role": "owner"}, 422, "bad_role", "/role"),
                ({**body, "username": name + "x", "email": "nobody"}, 422, "bad_email",
                 "/email")]
    for payload, status, code, pointer in refusals:
        refused = admin.post(f"{API}/users", json=payload)
        assert refused.status_code == status, payload
        error = refused.get_json()["error"]
        assert (error["code"], error["details"]["pointer"]) == (code, pointer)
    assert admin.get(f"{API}/users/{name}x").status_code == 404

    off = admin.post(f"{API}/users/{name}/deactivate")
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert not can_sign_in(app, name)
    assert admin.post(f"{API}/users/{name}/activate").get_json()["active"] is True
    assert can_sign_in(app, name)

    granted = admin.post(f"{API}/users/{name}/grants", json={"role": "region_head",
                                                              "scope": "WEST"})
    assert granted.status_code == 201
    grant_id = granted.get_json()["id"]
    assert admin.post(f"{API}/users/{name}/grants", json={"role": "region_head",
                                                           "scope": "WEST"}).status_code == 409
    tops = {u["code"] for u in sign_in(app.test_client(), name, PASSWORD).get(
        f"{API}/units").get_json()["units"]}
    assert tops == {"EAST-T2", "WEST"}
    assert admin.delete(f"{API}/users/head.east/grants/{grant_id}").status_code == 404
    assert admin.delete(f"{API}/users/{name}/grants/{grant_id}").status_code == 204
    assert admin.delete(f"{API}/users/{name}/grants/{grant_id}").status_code == 404
    tops = {u["code"] for u in sign_in(app.test_client(), name, PASSWORD).get(
        f"{API}/units").get_json()["units"]}
    assert tops == {"EAST-T2"}

    token = admin.post(f"{API}/users/{name}/tokens", json={"name": "crm"})
    assert token.status_code == 201 and token.get_json()["token"].startswith("qf_")
    me = app.test_client().get(f"{API}/me", headers={
        "Authorization": f"Bearer {token.get_json()['token']}"})
    assert me.status_code == 200 and me.get_json()["username"] == name

    actions = {(e["action"], e["actor"]) for e in admin.get(f"{API}/audit").get_json()[
        "entries"]}
    assert {("create_user", "admin"), ("deactivate_user", "admin"), ("grant_role", "admin"),
            ("revoke_role", "admin")} <= actions
