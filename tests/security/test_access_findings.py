"""Issue 11, findings 3, 5, 9 and 10 replayed through the real app: each test would let
the finding back in if its fix were removed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from support import sign_in

from quotaflow.store import db
from quotaflow.store.models import AuditEntry
from quotaflow.store.queries import unit_by_code, user_by_username

API = "/api/v1"
NEW_PASSWORD = "taken-over-123"


def _user(app, username: str):
    with app.app_context():
        user = user_by_username(db.session, username)
        return user.id, user.password_hash, sorted(g.role for g in user.grants)


# --- Finding 3: HRBP can become anyone --------------------------------------------------

def test_hrbp_cannot_reach_users_or_grants_in_admin(app, as_user) -> None:
    hrbp = as_user("hrbp")
    cfo_id, cfo_hash, _ = _user(app, "cfo")
    hrbp_id, _, hrbp_roles = _user(app, "hrbp")
    with app.app_context():
        hq = unit_by_code(db.session, "HQ").id
    for path in ("/admin/users/", "/admin/grants/", "/admin/users/new/", "/admin/grants/new/",
                 f"/admin/users/edit/?id={cfo_id}", f"/admin/users/details/?id={cfo_id}"):
        assert hrbp.get(path).status_code == 403, path
    # Reset the CFO's password, grant himself admin: both refused, nothing changed.
    reset = hrbp.post(f"/admin/users/edit/?id={cfo_id}", data={
        "username": "cfo", "display_name": "Chief Financial Officer", "locale": "en",
        "active": "y", "new_password": NEW_PASSWORD})
    assert reset.status_code == 403
    grant = hrbp.post("/admin/grants/new/", data={"user": str(hrbp_id), "role": "admin",
                                                  "unit": str(hq)})
    assert grant.status_code == 403
    assert _user(app, "cfo")[1] == cfo_hash
    assert _user(app, "hrbp")[2] == hrbp_roles
    assert app.test_client().post("/login", data={
        "username": "cfo", "password": NEW_PASSWORD}).status_code != 302
    # The menu does not offer them either; HRBP keeps the rest of the admin.
    menu = hrbp.get("/admin/").data.decode()
    assert "/admin/users/" not in menu and "/admin/grants/" not in menu
    assert "/admin/specs/" in menu
    assert hrbp.get("/admin/specs/").status_code == 200


def test_hrbp_cannot_manage_accounts_through_the_api(app, as_user) -> None:
    hrbp = as_user("hrbp")
    _, cfo_hash, _ = _user(app, "cfo")
    _, _, hrbp_roles = _user(app, "hrbp")
    assert hrbp.get(f"{API}/users").status_code == 403
    assert hrbp.get(f"{API}/users/cfo").status_code == 403
    assert hrbp.post(f"{API}/users/hrbp/grants",
                     json={"role": "admin", "scope": "HQ"}).status_code == 403
    assert hrbp.post(f"{API}/users/cfo/tokens", json={"name": "x"}).status_code == 403
    assert hrbp.post(f"{API}/users/cfo/deactivate").status_code == 403
    assert _user(app, "cfo")[1] == cfo_hash
    assert _user(app, "hrbp")[2] == hrbp_roles


def test_admin_still_resets_a_password_audited(app, as_user) -> None:
    admin = as_user("admin")
    cfo_id, cfo_hash, _ = _user(app, "cfo")
    assert "/admin/users/" in admin.get("/admin/").data.decode()
    assert admin.get("/admin/users/").status_code == 200
    assert admin.get("/admin/grants/").status_code == 200
    reset = admin.post(f"/admin/users/edit/?id={cfo_id}", data={
        "username": "cfo", "display_name": "Chief Financial Officer", "locale": "en",
        "active": "y", "new_password": NEW_PASSWORD})
    assert reset.status_code == 302
    assert _user(app, "cfo")[1] != cfo_hash
    sign_in(app.test_client(), "cfo", NEW_PASSWORD)
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "reset_password", AuditEntry.entity_id == "cfo")
            .order_by(AuditEntry.id.desc()).limit(1))
        assert entry is not None and entry.actor_name == "admin"
        assert NEW_PASSWORD not in str(entry.after)


def test_reset_password_use_case_is_admin_only(app) -> None:
    import pytest

    from quotaflow.errors import Forbidden
    from quotaflow.services import users
    from quotaflow.services.auth import principal_for
    from quotaflow.services.uow import Context, utcnow

    _, cfo_hash, _ = _user(app, "cfo")
    with app.app_context():
        hrbp = principal_for(user_by_username(db.session, "hrbp"))
        ctx = Context(session=db.session, principal=hrbp, now=utcnow())
        with pytest.raises(Forbidden):
            users.reset_password(ctx, "cfo", NEW_PASSWORD)
        assert user_by_username(db.session, "cfo").password_hash == cfo_hash


# --- Finding 5: open redirect after sign-in and language switch -------------------------

REDIRECT_PAYLOADS = (
    "/\t/evil.example", "/%09/evil.example", "//evil.example", "/\\evil.example",
    "\\\\evil.example", "https://evil.example", "http:/evil.example", "/%0d%0aSet-Cookie:x=1",
    "/\r\nSet-Cookie:x=1", "/\nevil", "javascript:alert(1)", "%2F%2Fevil.example",
    "/%2F/evil.example", "/%5Cevil.example", " //evil.example", "/\x00/evil.example",
    "/\x0b/evil.example", "evil.example", "", "///evil.example", "/" + "a" * 5000,
)


def _browser_target(location: str) -> str:
    """What a browser makes of a Location header: tabs and newlines dropped, backslashes
    read as slashes."""
    return "".join(c for c in location if c not in "\t\n\r").replace("\\", "/")


def _assert_local(response, payload: str) -> None:
    assert response.status_code == 302, (payload, response.status_code)
    location = response.headers["Location"]
    seen = _browser_target(location)
    assert seen.startswith("/") and not seen.startswith("//"), (payload, location)
    assert not any(ord(c) < 32 for c in location), (payload, location)
    assert location == "/", (payload, location)  # refused: the home page


def test_sign_in_never_redirects_off_site(app) -> None:
    for payload in REDIRECT_PAYLOADS:
        client = app.test_client()
        response = client.post("/login", data={"username": "sales.p0001",
                                               "password": _demo_password(), "next": payload})
        _assert_local(response, payload)
        # The sign-in page with that `next` renders (never a 500).
        assert app.test_client().get("/login", query_string={"next": payload}).status_code == 200


def test_language_switch_never_redirects_off_site(app, as_user) -> None:
    for client in (app.test_client(), as_user("head.east")):
        for payload in REDIRECT_PAYLOADS:
            response = client.post("/language", data={"lang": "en", "next": payload})
            _assert_local(response, payload)


def test_local_next_is_kept(app) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "head.east",
                                           "password": _demo_password(),
                                           "next": "/plans?period=2026-Q1"})
    assert response.headers["Location"] == "/plans?period=2026-Q1"
    response = client.post("/language", data={"lang": "zh", "next": "/inbox"})
    assert response.headers["Location"] == "/inbox"


def _demo_password() -> str:
    from support import DEMO_PASSWORD

    return DEMO_PASSWORD


# --- Finding 9: deep, invalid or huge JSON ----------------------------------------------

DEEP = "[" * 2000 + "]" * 2000
JSON_POSTS = (f"{API}/plans", f"{API}/users", f"{API}/specs/factor_model/x/versions")


def _assert_api_error(response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.is_json, response.data[:300]
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"] and "details" in error


def test_deep_json_is_a_json_400(as_user) -> None:
    admin = as_user("admin")
    for path in JSON_POSTS:
        for body in (DEEP, '{"a":' * 2000 + "1" + "}" * 2000, "[" * 70 + "]" * 70):
            response = admin.post(path, data=body, content_type="application/json")
            _assert_api_error(response, 400, "invalid_json")


def test_invalid_json_and_encoding_are_a_json_400(as_user) -> None:
    admin = as_user("admin")
    for body in (b"{not json", b'{"username": "\xff\xfe"}', b"\xc3\x28", b'{"a": 1'):
        response = admin.post(f"{API}/users", data=body, content_type="application/json")
        _assert_api_error(response, 400, "invalid_json")


def test_a_body_over_the_limit_is_a_json_413(app, as_user) -> None:
    admin = as_user("admin")
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = admin.post(f"{API}/plans", data=b"[" + b" " * limit + b"]",
                          content_type="application/json")
    _assert_api_error(response, 413, "too_large")


def test_config_import_of_a_deep_or_invalid_file_is_one_clear_error(app, tmp_path) -> None:
    from quotaflow.cli import main

    runner = app.test_cli_runner()
    for name, content in (("deep.json", DEEP.encode()),
                          ("deep-object.json", ('{"specs":' * 3000 + "1" + "}" * 3000).encode()),
                          ("bad.json", b"{nope"), ("latin1.json", b'{"a": "\xe9"}')):
        path = tmp_path / name
        path.write_bytes(content)
        result = runner.invoke(main, ["config", "import", str(path)])
        assert result.exit_code == 1, (name, result.output)
        assert not isinstance(result.exception, RecursionError), name
        assert "Traceback" not in result.output
        assert "refused" in result.output and "not_json" in result.output, result.output


# --- Finding 10: draft plans readable by every user -------------------------------------

DRAFT_TOTAL = 249_500_000


@pytest.fixture(scope="module")
def draft(app) -> tuple[int, str]:
    """A draft plan of the plan tests' own period, and the sales person's own unit."""
    from plan_support import own_period

    from quotaflow.services import plans
    from quotaflow.store import queries as q

    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "cfo"), period,
                                 "balanced", DRAFT_TOTAL, "draft replay")
        assert plan.status == "draft"
        unit = user_by_username(db.session, "sales.p0001").person_unit
        return plan.id, unit.code


@pytest.mark.parametrize("username", ["sales.p0001", "head.east", "lead.east.t1"])
def test_a_draft_looks_absent_to_those_who_cannot_make_plans(as_user, draft,
                                                             username: str) -> None:
    plan_id, own = draft
    client = as_user(username)
    for path in (f"/plans/{plan_id}", f"/plans/{plan_id}/units/{own}",
                 f"/plans/{plan_id}/units/EAST", f"/plans/{plan_id}/export.xlsx",
                 f"/plans/{plan_id}/diff", f"{API}/plans/{plan_id}",
                 f"{API}/plans/{plan_id}/units/{own}", f"{API}/plans/{plan_id}/diff"):
        response = client.get(path)
        assert response.status_code in (404, 403), (path, response.status_code)
        assert response.status_code == 404 or "/units/EAST" in path, path
    assert plan_id not in [p["id"] for p in client.get(f"{API}/plans").get_json()["plans"]]
    assert f"/plans/{plan_id}\"" not in client.get("/plans").get_data(as_text=True)


@pytest.mark.parametrize("username", ["hrbp", "ceo", "admin"])
def test_plan_makers_still_see_drafts(as_user, draft, username: str) -> None:
    plan_id, own = draft
    client = as_user(username)
    for path in (f"/plans/{plan_id}", f"/plans/{plan_id}/units/{own}",
                 f"/plans/{plan_id}/export.xlsx", f"{API}/plans/{plan_id}",
                 f"{API}/plans/{plan_id}/units/{own}"):
        assert client.get(path).status_code == 200, path
    assert plan_id in [p["id"] for p in client.get(f"{API}/plans").get_json()["plans"]]
    assert f"/plans/{plan_id}\"" in client.get("/plans").get_data(as_text=True)
