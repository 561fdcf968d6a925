"""Issue 11, finding 11 replayed: five wrong passwords used to lock any named account for
15 minutes, so the owner's right password got 429. Now failures slow further attempts
down (per account and per address, growing delay) but the owner still signs in from an
address or a browser the account used before, and is told of the failures.

Time is the request context's clock, moved by the tests (no sleeps)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from support import DEMO_PASSWORD

from quotaflow.channels import INBOX
from quotaflow.rules.backoff import backoff_seconds
from quotaflow.services.auth import ADDRESS_LIMIT_FACTOR, FAILED_SIGN_INS_TOPIC, create_api_token
from quotaflow.store import db
from quotaflow.store.models import LoginAttempt
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent
from quotaflow.store.queries import user_by_username

OWNER = "lead.west.t1"
ATTACKER, OWNER_HOME, TRAVEL = "198.51.100.66", "203.0.113.10", "192.0.2.44"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("quotaflow.http.context.utcnow", lambda: clock.now)
    return clock


def _browser(app: Any, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _try(client: Any, username: str = OWNER, password: str = "guess") -> Any:
    return client.post("/login", data={"username": username, "password": password})


def _limit(app: Any) -> int:
    return app.config["LOGIN_MAX_FAILURES"]


def _attack(app: Any, address: str = ATTACKER, username: str = OWNER) -> Any:
    """Wrong passwords until the account's backoff starts; the attacker's browser."""
    attacker = _browser(app, address)
    for _ in range(_limit(app)):
        assert _try(attacker, username).status_code == 401
    return attacker


def _attempts(username: str) -> int:
    return db.session.scalar(select(func.count()).select_from(LoginAttempt)
                             .where(LoginAttempt.username == username))


def test_the_attacker_is_slowed_down_and_429_carries_retry_after(app, clock) -> None:
    attacker = _attack(app)
    refused = _try(attacker)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert "1" in refused.get_data(as_text=True)  # the page says how long, too


def test_the_delay_doubles_with_each_failure(app, clock) -> None:
    attacker = _attack(app)
    waits = []
    for _ in range(6):
        refused = _try(attacker)
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        clock.advance(waits[-1] - 1)
        assert _try(attacker).status_code == 429  # a second early is still too early
        clock.advance(1)
        assert _try(attacker).status_code == 401  # checked again: wrong
    assert waits == [1, 2, 4, 8, 16, 32]


def test_an_attempt_during_the_wait_is_not_checked_even_with_the_right_password(app, clock) -> None:
    attacker = _attack(app)
    with app.app_context():
        before = _attempts(OWNER)
    # The right password from an address the account never used: refused unchecked, so
    # an attacker learns nothing from it, and nothing is written.
    assert _try(attacker, password=DEMO_PASSWORD).status_code == 429
    assert _try(_browser(app, TRAVEL), password=DEMO_PASSWORD).status_code == 429
    with app.app_context():
        assert _attempts(OWNER) == before


def test_the_owner_signs_in_from_an_address_used_before(app, clock) -> None:
    home = _browser(app, OWNER_HOME)
    assert _try(home, password=DEMO_PASSWORD).status_code == 302
    clock.advance(3600)
    _attack(app)
    assert _try(_browser(app, ATTACKER), password=DEMO_PASSWORD).status_code == 429
    # A browser without the cookie, from the owner's usual address: not locked out.
    assert _try(_browser(app, OWNER_HOME), password=DEMO_PASSWORD).status_code == 302


def test_the_owner_signs_in_with_the_known_device_cookie_from_anywhere(app, clock) -> None:
    laptop = _browser(app, OWNER_HOME)
    signed_in = _try(laptop, password=DEMO_PASSWORD)
    assert signed_in.status_code == 302
    assert any(c.startswith("qf_known_device=") and "HttpOnly" in c
               for c in signed_in.headers.getlist("Set-Cookie"))
    laptop.post("/logout")
    clock.advance(3600)
    _attack(app)
    # Travelling: a new address, but the browser that signed in before.
    laptop.environ_base["REMOTE_ADDR"] = TRAVEL
    # The cookie proves the browser, not the password: a wrong one still fails.
    assert _try(laptop, password="guess").status_code == 401
    assert _try(laptop, password=DEMO_PASSWORD).status_code == 302


def test_a_forged_or_foreign_known_device_cookie_does_not_exempt(app, clock) -> None:
    other = _browser(app, OWNER_HOME)
    assert _try(other, "head.west", DEMO_PASSWORD).status_code == 302  # a cookie for head.west
    other.post("/logout")
    _attack(app)
    other.environ_base["REMOTE_ADDR"] = TRAVEL
    assert _try(other, password=DEMO_PASSWORD).status_code == 429  # not OWNER's cookie
    forged = _browser(app, TRAVEL)
    forged.set_cookie("qf_known_device", '["lead.west.t1"]', path="/login")
    assert _try(forged, password=DEMO_PASSWORD).status_code == 429


def test_the_address_backoff_still_holds_for_a_known_browser(app, clock) -> None:
    shared = _browser(app, ATTACKER)
    assert _try(shared, OWNER, DEMO_PASSWORD).status_code == 302  # known device and address
    shared.post("/logout")
    # Spraying many usernames from one address is slowed down by the address's backoff.
    for number in range(_limit(app) * ADDRESS_LIMIT_FACTOR):
        assert _try(shared, f"nobody{number}").status_code == 401
    refused = _try(shared, OWNER, DEMO_PASSWORD)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    # Other addresses are not affected by this one's backoff.
    assert _try(_browser(app, OWNER_HOME), "head.west", DEMO_PASSWORD).status_code == 302
    clock.advance(1)
    assert _try(shared, OWNER, DEMO_PASSWORD).status_code == 302


def test_the_owner_is_told_once_and_it_reaches_the_inbox(app, clock) -> None:
    attacker = _attack(app)
    for _ in range(3):  # the attack goes on, slowed down
        clock.advance(int(_try(attacker).headers["Retry-After"]))
        assert _try(attacker).status_code == 401
    with app.app_context():
        owner = user_by_username(db.session, OWNER)
        events = db.session.scalars(select(OutboxEvent)
                                    .where(OutboxEvent.topic == FAILED_SIGN_INS_TOPIC)).all()
        assert len(events) == 1
        event = events[0]
        assert event.to_users == [owner.id]
        assert event.payload["failures"] == _limit(app)
        assert ATTACKER in event.payload["body_en"] and ATTACKER in event.payload["body_zh"]
        assert event.payload["title_en"] == "Failed sign-ins to your account"
        assert event.payload["title_zh"] == "您的账号有多次登录失败"
        inbox = db.session.scalars(select(OutboxDelivery).where(
            OutboxDelivery.event_id == event.id, OutboxDelivery.channel == INBOX)).all()
        assert [d.recipient_id for d in inbox] == [owner.id]


def test_an_unknown_username_tells_nobody(app, clock) -> None:
    _attack(app, username="no.such.person")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxEvent)
                                 .where(OutboxEvent.topic == FAILED_SIGN_INS_TOPIC)) == 0


def test_api_tokens_are_not_affected(app, clock) -> None:
    with app.app_context():
        token = create_api_token(db.session, user_by_username(db.session, OWNER), "erp")
        db.session.commit()
    attacker = _attack(app)
    assert _try(attacker).status_code == 429
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["username"] == OWNER


@given(failures=st.integers(0, 200), free=st.integers(1, 20))
def test_backoff_grows_and_is_capped(failures: int, free: int) -> None:
    wait, following = (backoff_seconds(n, free=free, cap=900) for n in (failures, failures + 1))
    assert 0 <= wait <= following <= 900
    if failures < free:
        assert wait == 0
    elif following < 900:
        assert following == 2 * wait
