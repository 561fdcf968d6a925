"""Sign-in with rate limiting, password hashing, API tokens and principals."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from werkzeug.security import check_password_hash, generate_password_hash

from quotaflow.services import audit
from quotaflow.services.access import Grant, Principal
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import queries
from quotaflow.store.models import ApiToken, LoginAttempt, User, utcnow

TOKEN_PREFIX = "qf_"
# Failures allowed from one address across all usernames, as a multiple of the per-user limit.
ADDRESS_LIMIT_FACTOR = 4
# Compared against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = generate_password_hash("quotaflow-timing-equaliser")


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    throttled: bool = False


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def principal_for(user: User) -> Principal:
    grants = tuple(Grant(g.role, g.unit.code, g.unit.path) for g in user.grants)
    return Principal(user_id=user.id, username=user.username, grants=grants)


def _recent_failures(
    session: Session, column: InstrumentedAttribute[str], value: str, since: dt.datetime
) -> int:
    return session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(column == value, LoginAttempt.at >= since, LoginAttempt.success.is_(False))
    ) or 0


def sign_in(
    session: Session,
    username: str,
    password: str,
    remote_addr: str,
    max_failures: int,
    window_seconds: int,
) -> SignInResult:
    """Check a password, refusing further tries after too many recent failures.

    Every attempt is recorded in the same transaction, so the limit holds across
    gunicorn workers.
    """
    username = username.strip().lower()[:64]
    since = utcnow() - dt.timedelta(seconds=window_seconds)
    with unit_of_work(session):
        if (
            _recent_failures(session, LoginAttempt.username, username, since) >= max_failures
            or _recent_failures(session, LoginAttempt.remote_addr, remote_addr, since)
            >= max_failures * ADDRESS_LIMIT_FACTOR
        ):
            session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=False))
            return SignInResult(None, throttled=True)
        user = session.scalar(select(User).where(User.username == username))
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        ok = ok and user is not None and user.active
        session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=ok))
        if ok:
            audit.record(session, user, "sign_in", "user", username, remote_addr=remote_addr)
    return SignInResult(user if ok else None)


def create_api_token(session: Session, user: User, name: str) -> str:
    """Create a token and return its only plain-text copy."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token)))
    audit.record(session, user, "create_api_token", "api_token", name)
    return token


def user_for_token(session: Session, token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.user.active:
        return None
    with unit_of_work(session):
        row.last_used_at = utcnow()
    return row.user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- reads for the pages (the sign-in loaders) -------------------------------------------


def active_user(ctx: Context, user_id: int) -> User | None:
    """The signed-in user of a session cookie, if the account is still active."""
    user = ctx.session.get(User, user_id)
    return user if user is not None and user.active else None


def actor(ctx: Context) -> User | None:
    """The user a context acts for (None for the system)."""
    return ctx.session.get(User, ctx.user_id) if ctx.user_id is not None else None


def display_names(ctx: Context, usernames: set[str]) -> dict[str, str]:
    """Display names by username (people named on a page, e.g. a flow's history)."""
    return queries.display_names(ctx.session, usernames)
