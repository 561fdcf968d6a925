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
from quotaflow.store import auth_queries, queries
from quotaflow.store.models import ApiToken, LoginAttempt, User, utcnow

TOKEN_PREFIX = "qf_"
#: A token's lifetime when none is asked for (days); services/account.py bounds it.
DEFAULT_TOKEN_DAYS = 90
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


def new_api_token(session: Session, user: User, name: str, expires_at: dt.datetime,
                  actor: User | None = None) -> tuple[str, ApiToken]:
    """Create a token; return its only plain-text copy and the stored row (hash only)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=_token_hash(token),
                   created_at=utcnow(), expires_at=expires_at)
    session.add(row)
    session.flush()
    audit.record(session, actor or user, "create_api_token", "api_token", str(row.id),
                 after={"username": user.username, "name": name,
                        "expires_at": expires_at.isoformat()})
    return token, row


def create_api_token(session: Session, user: User, name: str,
                     expires_at: dt.datetime | None = None) -> str:
    """Create a token (default lifetime: DEFAULT_TOKEN_DAYS) and return its only plain copy."""
    return new_api_token(session, user, name,
                         expires_at or utcnow() + dt.timedelta(days=DEFAULT_TOKEN_DAYS))[0]


def token_is_live(row: ApiToken, now: dt.datetime) -> bool:
    """Neither revoked nor expired (``now`` naive UTC, as stored)."""
    return row.revoked_at is None and row.expires_at > now


def user_for_token(session: Session, token: str) -> User | None:
    """The user of a live token of an active account (its last use is recorded)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = auth_queries.token_by_hash(session, _token_hash(token))
    now = utcnow()
    if row is None or not token_is_live(row, now) or not row.user.active:
        return None
    with unit_of_work(session):
        row.last_used_at = now
    return row.user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def end_sessions(user: User) -> None:
    """Every session cookie issued to ``user`` so far stops loading it."""
    user.session_version = (user.session_version or 0) + 1


# -- reads for the pages (the sign-in loaders) -------------------------------------------


def active_user(ctx: Context, session_id: str) -> User | None:
    """The signed-in user of a session cookie (``id:version``, :meth:`User.get_id`), if
    the account is still active and its sessions were not ended since the cookie was made."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or not version.isdigit():
        return None  # a cookie from before session versions: sign in again
    user = auth_queries.user_by_id(ctx.session, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def actor(ctx: Context) -> User | None:
    """The user a context acts for (None for the system)."""
    return auth_queries.user_by_id(ctx.session, ctx.user_id) if ctx.user_id is not None else None


def display_names(ctx: Context, usernames: set[str]) -> dict[str, str]:
    """Display names by username (people named on a page, e.g. a flow's history)."""
    return queries.display_names(ctx.session, usernames)
