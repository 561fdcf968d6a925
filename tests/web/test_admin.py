"""Flask-Admin at /admin: who reaches it, what it shows and hides, and that every
change made through it is audited."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotaflow.services.auth import hash_password
from quotaflow.store import db
from quotaflow.store.models import (
    AuditEntry,
    OrgUnit,
    Period,
    RoleGrant,
    SpecVersion,
    User,
)
from quotaflow.store.queries import unit_by_code, user_by_username

SEED = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs"
VIEWS = ("units", "users", "grants", "periods", "specs", "audit")
EXTERNAL = re.compile(r'(?:src|href)="(?:https?:)?//', re.IGNORECASE)


def last_audit(app, action: str, entity_type: str, entity_id: str) -> AuditEntry | None:
    with app.app_context():
        return db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.entity_type == entity_type,
            AuditEntry.entity_id == entity_id).order_by(AuditEntry.id.desc()).limit(1))


def unit_id(app, code: str) -> int:
    with app.app_context():
        return unit_by_code(db.session, code).id


@pytest.fixture
def admin(as_user):
    return as_user("admin")


@pytest.mark.parametrize("username", ["admin", "hrbp"])
def test_admin_and_hrbp_reach_their_views(as_user, username: str) -> None:
    client = as_user(username)
    assert client.get("/admin/").status_code == 200
    for view in VIEWS:
        response = client.get(f"/admin/{view}/")
        # Accounts and grants are the administrators' alone (users.manage).
        expected = 403 if username == "hrbp" and view in ("users", "grants") else 200
        assert response.status_code == expected, view


@pytest.mark.parametrize("username", ["ceo", "head.east", "lead.east.t1", "sales.p0001"])
def test_other_roles_get_403(as_user, username: str) -> None:
    client = as_user(username)
    assert client.get("/admin/").status_code == 403
    for view in VIEWS:
        assert client.get(f"/admin/{view}/").status_code == 403, view
    assert client.post("/admin/users/new/", data={"username": "intruder"}).status_code == 403
    assert client.get("/admin/static/admin/js/helpers.js").status_code == 403


def test_anonymous_users_are_sent_to_sign_in(client) -> None:
    for path in ("/admin/", "/admin/users/", "/admin/users/new/"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.location


def test_admin_pages_load_nothing_from_other_sites(admin) -> None:
    for path in ("/admin/", *(f"/admin/{v}/" for v in VIEWS), "/admin/users/new/",
                 "/admin/specs/new/", "/admin/periods/new/", "/admin/specs/details/?id=1"):
        page = admin.get(path).data.decode()
        assert not EXTERNAL.search(page), path
        assert "cdn" not in page.lower(), path
    assert admin.get("/admin/static/admin/js/helpers.js").status_code == 200


def test_user_passwords_are_never_shown_and_are_hashed(app, admin) -> None:
    username = "adm.user"
    created = admin.post("/admin/users/new/", data={
        "username": username, "display_name": "Admin-made", "locale": "en", "active": "y",
        "new_password": "a-long-password"})
    assert created.status_code == 302, created.data.decode()[-2000:]
    with app.app_context():
        user = user_by_username(db.session, username)
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert user.password_hash != "a-long-password"
        user_id, old_hash = user.id, user.password_hash
    for path in ("/admin/users/", f"/admin/users/details/?id={user_id}",
                 f"/admin/users/edit/?id={user_id}", "/admin/users/new/"):
        page = admin.get(path).data.decode()
        assert "password_hash" not in page, path
        assert old_hash not in page, path
    entry = last_audit(app, "admin_create", "users", username)
    assert entry.actor_name == "admin"
    assert "password_hash" not in entry.after
    assert entry.after["password_changed"] is True

    edited = admin.post(f"/admin/users/edit/?id={user_id}", data={
        "username": username, "display_name": "Renamed", "locale": "en", "active": "y",
        "new_password": ""})
    assert edited.status_code == 302
    entry = last_audit(app, "admin_update", "users", username)
    assert (entry.before["display_name"], entry.after["display_name"]) == ("Admin-made", "Renamed")
    with app.app_context():
        assert user_by_username(db.session, username).password_hash == old_hash  # kept

    admin.post(f"/admin/users/edit/?id={user_id}", data={
        "username": username, "display_name": "Renamed", "locale": "en", "active": "y",
        "new_password": "another-password"})
    with app.app_context():
        assert user_by_username(db.session, username).password_hash != old_hash


def test_a_new_user_needs_a_password(app, admin) -> None:
    username = "adm.nopass"
    response = admin.post("/admin/users/new/", data={
        "username": username, "display_name": "No password", "locale": "zh", "active": "y"})
    assert response.status_code == 200
    with app.app_context():
        assert user_by_username(db.session, username) is None


def test_role_grants_created_and_revoked_are_audited(app, admin) -> None:
    username = "adm.grant"
    with app.app_context():
        user = User(username=username, display_name=username, password_hash=hash_password("x" * 10))
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    created = admin.post("/admin/grants/new/", data={
        "user": str(user_id), "role": "region_head", "unit": str(unit_id(app, "NE"))})
    assert created.status_code == 302, created.data.decode()[-2000:]
    with app.app_context():
        grant = db.session.scalar(select(RoleGrant).where(RoleGrant.user_id == user_id))
        grant_id = grant.id
    entry = last_audit(app, "admin_create", "role_grants", str(grant_id))
    assert (entry.after["username"], entry.after["role"], entry.after["unit_code"]) == (
        username, "region_head", "NE")
    deleted = admin.post("/admin/grants/delete/", data={"id": str(grant_id), "url": "/admin/grants/"})
    assert deleted.status_code == 302
    with app.app_context():
        assert db.session.get(RoleGrant, grant_id) is None
    entry = last_audit(app, "admin_delete", "role_grants", str(grant_id))
    assert entry.before["role"] == "region_head"
    assert entry.after is None


def test_org_units_get_their_place_in_the_tree(app, admin) -> None:
    code = "ADM-NEW"
    created = admin.post("/admin/units/new/", data={
        "parent": str(unit_id(app, "NE-T1")), "code": code, "name_en": "Admin person",
        "name_zh": "管理员新建", "active": "y"})
    assert created.status_code == 302, created.data.decode()[-2000:]
    with app.app_context():
        unit = unit_by_code(db.session, code)
        parent = unit_by_code(db.session, "NE-T1")
        assert unit.path == f"{parent.path}{unit.id}/"
        assert unit.depth == parent.depth + 1
        new_id = unit.id
    assert last_audit(app, "admin_create", "org_units", code).after["path"].endswith(f"/{new_id}/")
    edit_form = admin.get(f"/admin/units/edit/?id={new_id}").data.decode()
    assert 'name="parent"' not in edit_form  # moving a subtree is not a one-record edit
    edited = admin.post(f"/admin/units/edit/?id={new_id}", data={
        "code": code, "name_en": "Renamed person", "name_zh": "改名", "active": "y"})
    assert edited.status_code == 302
    entry = last_audit(app, "admin_update", "org_units", code)
    assert (entry.before["name_en"], entry.after["name_en"]) == ("Admin person", "Renamed person")
    admin.post("/admin/units/delete/", data={"id": str(new_id)})  # units are never deleted
    with app.app_context():
        assert unit_by_code(db.session, code) is not None


def test_periods_get_their_iso_weeks(app, admin) -> None:
    code = "2031Q1"
    created = admin.post("/admin/periods/new/", data={
        "code": code, "start_date": "2031-01-01", "end_date": "2031-03-31"})
    assert created.status_code == 302, created.data.decode()[-2000:]
    with app.app_context():
        period = db.session.scalar(select(Period).where(Period.code == code))
        assert len(period.weeks) == 14
        assert period.weeks[0].start_date.isoformat() == "2031-01-01"
        period_id = period.id
    assert last_audit(app, "admin_create", "periods", code) is not None
    bad = admin.post(f"/admin/periods/edit/?id={period_id}", data={
        "code": code, "start_date": "2031-04-01", "end_date": "2031-03-01"})
    assert bad.status_code == 200
    shorter = admin.post(f"/admin/periods/edit/?id={period_id}", data={
        "code": code, "start_date": "2031-01-01", "end_date": "2031-01-31"})
    assert shorter.status_code == 302
    with app.app_context():
        assert len(db.session.get(Period, period_id).weeks) == 5


def test_spec_versions_are_validated_and_immutable(app, admin) -> None:
    key = "t-admin"
    model = json.loads((SEED / "factor_model.json").read_text(encoding="utf-8"))
    model["weights"]["product_fit"] = 5

    def count() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(SpecVersion).where(
                SpecVersion.key == key))

    refused = admin.post("/admin/specs/new/", data={
        "kind": "factor_model", "key": key, "content": json.dumps(model), "note": "bad"})
    assert refused.status_code == 200
    assert "/weights" in refused.data.decode()
    assert count() == 0
    not_json = admin.post("/admin/specs/new/", data={
        "kind": "factor_model", "key": key, "content": "{oops", "note": ""})
    assert "line 1" in not_json.data.decode()
    assert count() == 0

    model["weights"]["product_fit"] = 15
    saved = admin.post("/admin/specs/new/", data={
        "kind": "factor_model", "key": key, "content": json.dumps(model), "note": "ok",
        "activate": "y"})
    assert saved.status_code == 302
    with app.app_context():
        spec = db.session.scalar(select(SpecVersion).where(SpecVersion.key == key))
        assert (spec.version, spec.status, spec.author.username) == (1, "active", "admin")
        spec_id, digest = spec.id, spec.content_hash
    assert last_audit(app, "create_spec_version", "factor_model", f"{key}@v1") is not None
    details = admin.get(f"/admin/specs/details/?id={spec_id}").data.decode()
    assert "historical_performance" in details
    # No edit or delete: versions are immutable.
    assert admin.get(f"/admin/specs/edit/?id={spec_id}").status_code in (302, 403, 404)
    admin.post(f"/admin/specs/edit/?id={spec_id}", data={"content": "{}"})
    admin.post("/admin/specs/delete/", data={"id": str(spec_id)})
    with app.app_context():
        spec = db.session.get(SpecVersion, spec_id)
        assert spec is not None and spec.content_hash == digest


def test_the_audit_log_is_read_only(app, admin) -> None:
    with app.app_context():
        entry_id = db.session.scalar(select(func.max(AuditEntry.id)))
        total = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert admin.get(f"/admin/audit/details/?id={entry_id}").status_code == 200
    assert admin.get("/admin/audit/new/").status_code in (302, 403, 404)
    assert admin.get(f"/admin/audit/edit/?id={entry_id}").status_code in (302, 403, 404)
    admin.post("/admin/audit/delete/", data={"id": str(entry_id)})
    with app.app_context():
        assert db.session.get(AuditEntry, entry_id) is not None
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == total
    page = admin.get("/admin/audit/").data.decode()
    assert "/admin/audit/new/" not in page
    assert "/admin/audit/delete/" not in page


def test_admin_ui_follows_the_users_language(as_user) -> None:
    client = as_user("admin")
    client.post("/language", data={"lang": "zh", "next": "/"})
    page = client.get("/admin/users/").data.decode()
    assert "用户" in page  # our view name
    assert "列表" in page  # Flask-Admin's own strings, from its zh_Hans_CN catalogue
    client.post("/language", data={"lang": "en", "next": "/"})
    assert "Users" in client.get("/admin/users/").data.decode()


def test_admin_org_unit_list_is_the_whole_organisation(app, admin) -> None:
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OrgUnit)) > 0
    assert "EAST" in admin.get("/admin/units/?search=EAST").data.decode()


def test_user_email_is_edited_validated_and_audited(app, admin) -> None:
    username = "adm.mail"
    base = {"username": username, "display_name": "Mail", "locale": "en", "active": "y"}
    bad = admin.post("/admin/users/new/", data={**base, "email": "not an address",
                                                "new_password": "a-long-password"})
    assert bad.status_code == 200
    assert "is not an e-mail address" in bad.data.decode()
    with app.app_context():
        assert user_by_username(db.session, username) is None
    created = admin.post("/admin/users/new/", data={**base, "email": " mail@example.com ",
                                                    "new_password": "a-long-password"})
    assert created.status_code == 302, created.data.decode()[-2000:]
    with app.app_context():
        user = user_by_username(db.session, username)
        assert user.email == "mail@example.com"
        user_id = user.id
    assert "mail@example.com" in admin.get("/admin/users/").data.decode()
    cleared = admin.post(f"/admin/users/edit/?id={user_id}", data={**base, "email": "",
                                                                  "new_password": ""})
    assert cleared.status_code == 302
    with app.app_context():
        assert user_by_username(db.session, username).email is None
    entry = last_audit(app, "admin_update", "users", username)
    assert (entry.before["email"], entry.after["email"]) == ("mail@example.com", None)
