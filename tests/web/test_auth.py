"""Sign-in, sign-out, rate limiting, CSRF, cookies, redirects and API tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import DEMO_PASSWORD, sign_in

from quotaflow.services.auth import create_api_token
from quotaflow.store import db
from quotaflow.store.models import ApiToken, AuditEntry
from quotaflow.store.queries import user_by_username


@pytest.fixture
def csrf_on(app) -> Iterator[None]:
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def _csrf_token(html: str) -> str:
    return html.split('name="csrf_token"')[1].split('value="')[1].split('"')[0]


def test_sign_in_and_out(client) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert b'name="password"' in page.data
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.location == "/"
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_usernames_are_case_insensitive(client) -> None:
    response = client.post("/login", data={"username": " Head.East ", "password": DEMO_PASSWORD})
    assert response.status_code == 302


def test_wrong_password_is_refused_and_recorded(client) -> None:
    response = client.post("/login", data={"username": "head.south", "password": "nope"})
    assert response.status_code == 401
    assert b"Wrong username or password" in response.data or "用户名或密码错误".encode() in response.data
    assert client.get("/").status_code == 302


def test_passwords_are_hashed(app) -> None:
    with app.app_context():
        user = user_by_username(db.session, "ceo")
        assert DEMO_PASSWORD not in user.password_hash
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))


@pytest.mark.usefixtures("inputs_open")
def test_forms_need_a_csrf_token(app, csrf_on) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD})
    assert response.status_code == 400
    token = _csrf_token(client.get("/login").data.decode())
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    # Signing in starts a new session, so tokens issued before it are void.
    stale = client.put("/api/v1/units/EAST/attributes", headers={"X-CSRFToken": token},
                       json={"period": "2026Q4", "values": {"product_fit": 63}})
    assert stale.status_code == 400
    token = _csrf_token(client.get("/").data.decode())
    # Writing through the API with the session cookie needs the token as a header.
    body = {"period": "2026Q4", "values": {"product_fit": 64}}
    refused = client.put("/api/v1/units/EAST/attributes", json=body)
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf"
    accepted = client.put("/api/v1/units/EAST/attributes", json=body, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200


def test_session_cookie_settings(app) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_secure_cookies_from_environment(monkeypatch, tmp_path) -> None:
    from quotaflow.config import load_config

    monkeypatch.setenv("QUOTAFLOW_SECURE_COOKIES", "1")
    monkeypatch.setenv("QUOTAFLOW_SECRET_KEY", "x" * 32)
    config = load_config(tmp_path)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True


def test_secret_key_is_generated_once_and_private(monkeypatch, tmp_path) -> None:
    from quotaflow.config import load_config

    monkeypatch.delenv("QUOTAFLOW_SECRET_KEY", raising=False)
    first = load_config(tmp_path)["SECRET_KEY"]
    assert len(first) >= 64
    assert load_config(tmp_path)["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil"])
def test_no_open_redirect_after_sign_in(client, target: str) -> None:
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD,
                                           "next": target})
    assert response.location == "/"


def test_sign_in_returns_to_the_page_asked_for(client) -> None:
    response = client.post("/login", data={"username": "head.east", "password": DEMO_PASSWORD,
                                           "next": "/org/EAST"})
    assert response.location == "/org/EAST"


@pytest.mark.usefixtures("inputs_open")
def test_api_token(app) -> None:
    with app.app_context():
        token = create_api_token(db.session, user_by_username(db.session, "head.north"), "erp")
        db.session.commit()
        stored = db.session.query(ApiToken).filter_by(name="erp").one()
        assert token not in stored.token_hash
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).get_json()["username"] == "head.north"
    assert client.get("/api/v1/units/NORTH", headers=headers).status_code == 200
    assert client.get("/api/v1/units/SOUTH", headers=headers).status_code == 404
    put = client.put("/api/v1/units/NORTH/attributes", headers=headers,
                     json={"period": "2026Q4", "values": {"product_fit": 66}})
    assert put.status_code == 200
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer qf_not-a-token"})
    assert bad.status_code == 401


def test_sign_in_is_audited(app, client) -> None:
    sign_in(client, "cfo")
    with app.app_context():
        entry = db.session.query(AuditEntry).filter_by(action="sign_in", entity_id="cfo").first()
        assert entry is not None
        assert entry.actor_name == "cfo"
