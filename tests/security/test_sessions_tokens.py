"""Issue 11, finding 7 (sessions outlive logout and password changes; API tokens never
expire and cannot be revoked) and finding 3's password reset, replayed through the real
app: a session cookie copied before is refused afterwards, on pages (sign-in redirect) and
in the API (401 in its JSON error format)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from support import DEMO_PASSWORD, sign_in

from quotaflow.cli import main
from quotaflow.services.auth import create_api_token
from quotaflow.services.inbox_channel import InboxChannel
from quotaflow.services.outbox_worker import run_once
from quotaflow.store import db
from quotaflow.store.models import ApiToken, AuditEntry, User, utcnow
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent
from quotaflow.store.queries import user_by_username

API = "/api/v1"
NEW_PASSWORD = "a-brand-new-password"


# -- helpers --------------------------------------------------------------------------------

def stolen_cookie(app: Any, client: Any) -> Any:
    """Another browser holding a copy of ``client``'s session cookie (what a thief has)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def assert_signed_in(client: Any, username: str) -> None:
    me = client.get(f"{API}/me")
    assert me.status_code == 200, me.data[:200]
    assert me.get_json()["username"] == username
    assert client.get("/account").status_code == 200


def assert_signed_out(client: Any) -> None:
    page = client.get("/account")
    assert page.status_code == 302 and "/login" in page.location
    api = client.get(f"{API}/me")
    assert api.status_code == 401
    assert api.get_json()["error"]["code"] == "unauthenticated"


def token_for(app: Any, username: str, name: str = "erp",
              expires_at: dt.datetime | None = None) -> tuple[str, int]:
    with app.app_context():
        user = user_by_username(db.session, username)
        token = create_api_token(db.session, user, name, expires_at)
        db.session.commit()
        token_id = db.session.scalar(select(ApiToken.id).where(
            ApiToken.user_id == user.id, ApiToken.name == name).order_by(ApiToken.id.desc()))
    return token, token_id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_works(app: Any, token: str) -> bool:
    answer = app.test_client().get(f"{API}/me", headers=bearer(token))
    if answer.status_code == 401:
        assert answer.get_json()["error"]["code"] == "unauthenticated"
        return False
    assert answer.status_code == 200
    return True


def audited(app: Any, action: str, entity_id: str) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.entity_id == entity_id)))


def password_works(app: Any, username: str, password: str) -> bool:
    answer = app.test_client().post("/login", data={"username": username,
                                                    "password": password})
    return answer.status_code == 302


# -- sessions end server-side ------------------------------------------------------------------

def test_a_cookie_copied_before_logout_is_refused_after_it(app, as_user) -> None:
    victim = as_user("head.east")
    thief = stolen_cookie(app, victim)
    assert_signed_in(thief, "head.east")  # the copy works while the session lives
    victim.post("/logout")
    assert_signed_out(victim)
    assert_signed_out(thief)
    assert audited(app, "sign_out", "head.east")


def test_changing_my_password_ends_my_other_sessions_but_not_this_one(app, as_user) -> None:
    me = as_user("head.east")
    other_browser = as_user("head.east")
    thief = stolen_cookie(app, me)
    answer = me.post("/account/password", data={"current_password": DEMO_PASSWORD,
                                                "new_password": NEW_PASSWORD})
    assert answer.status_code == 302
    assert_signed_in(me, "head.east")
    assert_signed_out(other_browser)
    assert_signed_out(thief)
    assert password_works(app, "head.east", NEW_PASSWORD)
    assert audited(app, "change_password", "head.east")


def test_changing_my_password_through_the_api_ends_my_other_sessions(app, as_user) -> None:
    me = as_user("head.east")
    thief = stolen_cookie(app, me)
    token, _ = token_for(app, "head.east")
    answer = me.post(f"{API}/me/password", json={"current_password": DEMO_PASSWORD,
                                                 "new_password": NEW_PASSWORD})
    assert answer.status_code == 204
    assert_signed_in(me, "head.east")
    assert_signed_out(thief)
    assert token_works(app, token)  # tokens are revoked one by one, or by a reset
    wrong = me.post(f"{API}/me/password", json={"current_password": DEMO_PASSWORD,
                                                "new_password": "yet-another-one"})
    assert wrong.status_code == 422
    assert wrong.get_json()["error"]["code"] == "wrong_password"


def test_changing_my_password_needs_the_current_one(app, as_user) -> None:
    me = as_user("head.east")
    thief = stolen_cookie(app, me)
    answer = me.post("/account/password", data={"current_password": "a-wrong-guess",
                                                 "new_password": NEW_PASSWORD})
    assert answer.status_code == 422
    assert not password_works(app, "head.east", NEW_PASSWORD)
    assert_signed_in(thief, "head.east")


def test_an_admin_reset_ends_sessions_revokes_tokens_and_tells_the_owner(app, as_user) -> None:
    victim = as_user("head.north")
    thief = stolen_cookie(app, victim)
    token, token_id = token_for(app, "head.north")
    assert token_works(app, token)
    answer = as_user("admin").post(f"{API}/users/head.north/password",
                                   json={"password": NEW_PASSWORD})
    assert answer.status_code == 200
    assert_signed_out(victim)
    assert_signed_out(thief)
    assert not token_works(app, token)
    assert password_works(app, "head.north", NEW_PASSWORD)
    (entry,) = audited(app, "reset_password", "head.north")
    assert entry.actor_name == "admin"
    assert entry.after["sessions_ended"] and entry.after["tokens_revoked"] == ["erp"]
    assert NEW_PASSWORD not in str(entry.after)
    with app.app_context():
        owner = user_by_username(db.session, "head.north")
        event = db.session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "account.password_reset")).one()
        assert event.to_users == [owner.id] and event.payload["reset_by"] == "admin"
        delivery = db.session.scalars(select(OutboxDelivery).where(
            OutboxDelivery.event_id == event.id, OutboxDelivery.channel == "inbox")).one()
        assert delivery.recipient_id == owner.id
        assert db.session.get(ApiToken, token_id).revoked_at is not None
        # The worker delivers it (in its own sessions on the test's connection; ours ends
        # first so their writes are not inside our savepoint): the owner reads it.
        connection = db.session.connection()
        db.session.commit()
        run_once(lambda: Session(bind=connection, join_transaction_mode="create_savepoint",
                                 expire_on_commit=False), utcnow(), {"inbox": InboxChannel()})
    owner_client = sign_in(app.test_client(), "head.north", NEW_PASSWORD)
    (notice,) = [m for m in owner_client.get(f"{API}/inbox").get_json()["messages"]
                 if m["topic"] == "account.password_reset"]
    assert notice["title_en"] == "Your password was reset"
    assert notice["title_zh"] == "您的密码已被重置"
    assert "admin" in notice["body_en"] and "admin" in notice["body_zh"]


def test_a_reset_on_the_admin_users_page_ends_sessions_too(app, as_user) -> None:
    victim = as_user("head.north")
    thief = stolen_cookie(app, victim)
    with app.app_context():
        victim_id = user_by_username(db.session, "head.north").id
    answer = as_user("admin").post(f"/admin/users/edit/?id={victim_id}", data={
        "username": "head.north", "display_name": "North head", "locale": "zh",
        "active": "y", "new_password": NEW_PASSWORD})
    assert answer.status_code == 302
    assert_signed_out(thief)
    assert password_works(app, "head.north", NEW_PASSWORD)
    assert audited(app, "reset_password", "head.north")


@pytest.mark.parametrize("who", ["hrbp", "head.east", "cfo"])
def test_only_an_administrator_resets_another_password(app, as_user, who: str) -> None:
    victim = as_user("head.north")
    answer = as_user(who).post(f"{API}/users/head.north/password",
                               json={"password": NEW_PASSWORD})
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "forbidden"
    assert not password_works(app, "head.north", NEW_PASSWORD)
    assert_signed_in(victim, "head.north")
    assert not audited(app, "reset_password", "head.north")


def test_deactivation_ends_sessions_and_tokens_for_good(app, as_user) -> None:
    victim = as_user("head.north")
    thief = stolen_cookie(app, victim)
    token, _ = token_for(app, "head.north")
    admin = as_user("admin")
    assert admin.post(f"{API}/users/head.north/deactivate").status_code == 200
    assert_signed_out(thief)
    assert not token_works(app, token)
    # Reactivating the account revives neither the old cookie nor the old token.
    assert admin.post(f"{API}/users/head.north/activate").status_code == 200
    assert_signed_out(thief)
    assert not token_works(app, token)
    (entry,) = audited(app, "deactivate_user", "head.north")
    assert entry.after["tokens_revoked"] == ["erp"]


def test_unticking_active_on_the_admin_users_page_ends_sessions_and_tokens(app, as_user) -> None:
    victim = as_user("head.north")
    thief = stolen_cookie(app, victim)
    token, _ = token_for(app, "head.north")
    with app.app_context():
        victim_id = user_by_username(db.session, "head.north").id
    answer = as_user("admin").post(f"/admin/users/edit/?id={victim_id}", data={
        "username": "head.north", "display_name": "North head", "locale": "zh"})
    assert answer.status_code == 302
    with app.app_context():
        assert db.session.get(User, victim_id).active is False
        db.session.get(User, victim_id).active = True  # what reactivating would do
        db.session.commit()
    assert_signed_out(thief)
    assert not token_works(app, token)


@pytest.mark.parametrize("door", ["api", "page"])
def test_sign_out_everywhere_ends_every_session_but_keeps_tokens(app, as_user,
                                                                 door: str) -> None:
    victim = as_user("head.north")
    laptop = as_user("head.north")
    thief = stolen_cookie(app, victim)
    token, _ = token_for(app, "head.north")
    admin = as_user("admin")
    if door == "api":
        assert admin.post(f"{API}/users/head.north/sign-out-everywhere").status_code == 200
    else:
        assert "/account/users/head.north" in admin.get("/admin/users/").data.decode()
        page = admin.get("/account/users/head.north")
        assert page.status_code == 200 and b"sign-out-everywhere" in page.data
        answer = admin.post("/account/users/head.north/sign-out-everywhere")
        assert answer.status_code == 302
    for client in (victim, laptop, thief):
        assert_signed_out(client)
    assert token_works(app, token)
    assert audited(app, "sign_out_everywhere", "head.north")
    assert_signed_in(admin, "admin")


def test_only_an_administrator_signs_others_out(app, as_user) -> None:
    victim = as_user("head.north")
    hrbp = as_user("hrbp")
    assert hrbp.post(f"{API}/users/head.north/sign-out-everywhere").status_code == 403
    assert hrbp.post("/account/users/head.north/sign-out-everywhere").status_code == 403
    assert_signed_in(victim, "head.north")


def test_a_cookie_from_before_session_versions_is_refused(app) -> None:
    """A cookie holding only the user id (what the app wrote before) loads nobody."""
    with app.app_context():
        user_id = user_by_username(db.session, "head.east").id
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    assert_signed_out(client)


# -- API tokens expire and can be revoked -------------------------------------------------------

def test_an_expired_token_gets_401(app) -> None:
    expired, _ = token_for(app, "head.east", "old", utcnow() - dt.timedelta(seconds=1))
    live, _ = token_for(app, "head.east", "new", utcnow() + dt.timedelta(hours=1))
    assert not token_works(app, expired)
    assert token_works(app, live)


def test_a_revoked_token_gets_401(app, as_user) -> None:
    token, token_id = token_for(app, "head.east")
    assert token_works(app, token)
    assert as_user("head.east").delete(f"{API}/tokens/{token_id}").status_code == 204
    assert not token_works(app, token)
    (entry,) = audited(app, "revoke_api_token", str(token_id))
    assert entry.actor_name == "head.east"


def test_a_token_can_revoke_itself(app) -> None:
    token, token_id = token_for(app, "head.east")
    answer = app.test_client().delete(f"{API}/tokens/{token_id}", headers=bearer(token))
    assert answer.status_code == 204
    assert not token_works(app, token)


def test_another_users_token_cannot_be_revoked_or_listed(app, as_user) -> None:
    token, token_id = token_for(app, "head.north")
    east = as_user("head.east")
    api = east.delete(f"{API}/tokens/{token_id}")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "unknown_token"
    page = east.post(f"/account/tokens/{token_id}/revoke")
    assert page.status_code == 302
    assert token_works(app, token)
    assert east.get(f"{API}/tokens?username=head.north").status_code == 403
    assert east.get("/account/users/head.north").status_code == 403
    listed = east.get(f"{API}/tokens").get_json()
    assert listed["username"] == "head.east" and token_id not in [
        t["id"] for t in listed["tokens"]]


def test_an_administrator_lists_and_revokes_anyones_token(app, as_user) -> None:
    token, token_id = token_for(app, "head.north")
    admin = as_user("admin")
    listed = admin.get(f"{API}/tokens?username=head.north").get_json()
    assert [t["state"] for t in listed["tokens"] if t["id"] == token_id] == ["active"]
    assert admin.post(f"/account/tokens/{token_id}/revoke").status_code == 302
    assert not token_works(app, token)
    page = admin.get("/account/users/head.north").data.decode()
    assert f'data-testid="token-{token_id}"' in page


def test_a_new_token_is_shown_once_and_expires(app, as_user) -> None:
    east = as_user("head.east")
    answer = east.post(f"{API}/tokens", json={"name": "erp", "days": 7})
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    made = answer.get_json()
    assert made["token"].startswith("qf_") and made["state"] == "active"
    expires = dt.datetime.fromisoformat(made["expires_at"].removesuffix("Z"))
    assert dt.timedelta(days=6, hours=23) < expires - utcnow() <= dt.timedelta(days=7)
    assert token_works(app, made["token"])
    listed = east.get(f"{API}/tokens").get_json()["tokens"]
    assert made["token"] not in str(listed)
    assert [t["name"] for t in listed if t["id"] == made["id"]] == ["erp"]
    with app.app_context():
        assert made["token"] not in db.session.get(ApiToken, made["id"]).token_hash


def test_the_token_page_shows_a_new_token_once_in_both_languages(app, as_user) -> None:
    east = as_user("head.east")
    made = east.post("/account/tokens", data={"name": "sheet-sync", "days": "30"})
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    text = made.data.decode()
    assert 'data-testid="new-token"' in text and "qf_" in text
    assert "qf_" not in east.get("/account").data.decode()
    east.post("/language", data={"lang": "en"})
    assert "API tokens" in east.get("/account").data.decode()
    east.post("/language", data={"lang": "zh"})
    assert "API 令牌" in east.get("/account").data.decode()


@pytest.mark.parametrize("days", [0, 366, -5, True, "7"])
def test_a_token_lives_at_most_the_configured_days(as_user, days: Any) -> None:
    answer = as_user("head.east").post(f"{API}/tokens", json={"name": "x", "days": days})
    assert answer.status_code == 422


def test_a_token_cannot_mint_tokens(app) -> None:
    """A stolen token that could create a fresh one would outlive its own revocation."""
    token, _ = token_for(app, "head.east")
    answer = app.test_client().post(f"{API}/tokens", headers=bearer(token),
                                    json={"name": "spare", "days": 365})
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "token_by_token"


def test_a_token_of_a_user_does_not_reach_other_accounts(app, as_user) -> None:
    """Creating a token for someone else is the administrators' (API and page)."""
    east = as_user("head.east")
    assert east.post(f"{API}/tokens", json={"name": "x", "username": "head.north"}
                     ).status_code == 403
    assert east.post("/account/users/head.north/tokens", data={"name": "x"}).status_code == 403
    with app.app_context():
        north = user_by_username(db.session, "head.north")
        assert db.session.scalar(select(ApiToken.id).where(ApiToken.user_id == north.id,
                                                           ApiToken.name == "x")) is None


def test_tokens_on_the_command_line(app) -> None:
    runner = app.test_cli_runner()
    made = runner.invoke(main, args=["tokens", "create", "head.east", "--name", "cli", "--days", "3"])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token_works(app, token)
    listed = runner.invoke(main, args=["tokens", "list", "head.east"])
    row = next(line for line in listed.output.splitlines() if "\tcli\t" in line)
    token_id, state = row.split("\t")[:2]
    assert state == "active"
    revoked = runner.invoke(main, args=["tokens", "revoke", token_id])
    assert revoked.exit_code == 0, revoked.output
    assert not token_works(app, token)
    too_long = runner.invoke(main, args=["tokens", "create", "head.east", "--days", "999"])
    assert too_long.exit_code != 0 and "365" in too_long.output
