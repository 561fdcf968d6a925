"""Sign-in with backoff, password hashing, API tokens and principals.

No general per-address rate limit (e.g. Flask-Limiter) guards the rest of the API: with
its in-memory storage each gunicorn worker would count alone and forget on restart, a
shared store means running Redis beside the database, and every API call already needs a
session or a token (which is revocable). Flooding is the reverse proxy's job (nginx
``limit_req``); what needs the product's own memory, guessing passwords, is here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from quotaflow import messages
from quotaflow.messages import _l
from quotaflow.rules import backoff
from quotaflow.services import audit
from quotaflow.services.access import Grant, Principal
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import auth_queries, login_queries, queries
from quotaflow.store.models import ApiToken, LoginAttempt, User, utcnow

TOKEN_PREFIX = "qf_"
#: A token's lifetime when none is asked for (days); services/account.py bounds it.
DEFAULT_TOKEN_DAYS = 90
# Failures one address may make across all usernames before its own backoff starts, as a
# multiple of the per-account allowance (one office behind one NAT address shares it).
ADDRESS_LIMIT_FACTOR = 4
#: The longest wait backoff imposes, by default (``LOGIN_MAX_DELAY_SECONDS``).
MAX_DELAY_SECONDS = 900
#: An address the account signed in from within this many days is the owner's.
KNOWN_ADDRESS_DAYS = 90
#: Told to the account's owner when its failures reach the per-account allowance.
FAILED_SIGN_INS_TOPIC = "account.failed_sign_ins"
# Compared against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = generate_password_hash("quotaflow-timing-equaliser")

_FAILED_TITLE = _l("Failed sign-ins to your account")
_FAILED_BODY = _l("%(count)s wrong passwords were typed for your account %(username)s, the "
                  "latest from address %(address)s. Further attempts are slowed down; you can "
                  "still sign in from a browser or address you have used before. If this was "
                  "not you, tell your administrator and change your password.")


@dataclass(frozen=True)
class SignInResult:
    user: User | None
    throttled: bool = False
    #: Seconds until an attempt is accepted again (when ``throttled``).
    retry_after: int = 0


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def principal_for(user: User) -> Principal:
    grants = tuple(Grant(g.role, g.unit.code, g.unit.path) for g in user.grants)
    return Principal(user_id=user.id, username=user.username, grants=grants)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """The stored form of a time (naive UTC, as ``models.utcnow``)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def sign_in(
    session: Session,
    username: str,
    password: str,
    remote_addr: str,
    max_failures: int,
    window_seconds: int,
    *,
    now: dt.datetime | None = None,
    max_delay_seconds: int = MAX_DELAY_SECONDS,
    known_device: bool = False,
) -> SignInResult:
    """Check a password, with per-account and per-address backoff instead of a lockout.

    After ``max_failures`` failures for an account (``max_failures * ADDRESS_LIMIT_FACTOR``
    from an address, any account) within ``window_seconds``, the next attempt is accepted
    only after a wait that doubles with each failure (1 s, 2 s, 4 s ... ``max_delay_seconds``,
    :mod:`quotaflow.rules.backoff`). An attempt during the wait is refused with the seconds
    left and is neither checked against the hash nor recorded (it costs nothing, reveals
    nothing and so needs no counting; a flood of them writes no rows). A success ends the
    account's run of failures.

    The owner is not locked out by someone else's guesses: from an address the account
    signed in from before (``KNOWN_ADDRESS_DAYS``) or a browser that carries the known-device
    cookie of an earlier sign-in (``known_device``, checked by the caller), the account's
    backoff does not apply, only that address's own. When the account's failures reach
    ``max_failures`` its owner is told through the outbox, at most once per window.

    Why in the database and not Flask-Limiter: its default storage is each worker's
    memory, so under gunicorn every worker would count alone (N workers, N times the
    guesses) and a restart would forget; a shared store would need Redis, and the
    decision also needs the sign-in history (known addresses, the last success), which
    only the database has. Every attempt checked is recorded in the caller's transaction.
    """
    username = username.strip().lower()[:64]
    remote_addr = remote_addr[:64]
    now = _naive_utc(now or utcnow())
    since = now - dt.timedelta(seconds=window_seconds)
    with unit_of_work(session):
        by_address = login_queries.address_failures(session, remote_addr, since)
        wait = backoff.retry_after(by_address.last_at, by_address.count, now,
                                   free=max_failures * ADDRESS_LIMIT_FACTOR,
                                   cap=max_delay_seconds)
        by_account = login_queries.account_failures(session, username, since)
        account_wait = backoff.retry_after(by_account.last_at, by_account.count, now,
                                           free=max_failures, cap=max_delay_seconds)
        if account_wait > wait and not (known_device or login_queries.signed_in_from(
                session, username, remote_addr, now - dt.timedelta(days=KNOWN_ADDRESS_DAYS))):
            wait = account_wait
        if wait > 0:
            return SignInResult(None, throttled=True, retry_after=wait)
        user = queries.user_by_username(session, username)
        ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
        ok = ok and user is not None and user.active
        session.add(LoginAttempt(username=username, remote_addr=remote_addr, success=ok, at=now))
        if ok:
            audit.record(session, user, "sign_in", "user", username, remote_addr=remote_addr)
        elif user is not None and user.active and by_account.count + 1 >= max_failures:
            _tell_owner_of_failures(session, user, by_account.count + 1, remote_addr, now,
                                    window_seconds)
    return SignInResult(user if ok else None)


def _tell_owner_of_failures(session: Session, user: User, count: int, remote_addr: str,
                            now: dt.datetime, window_seconds: int) -> None:
    """An inbox message to the account's owner, at most one per window-long period: the
    event's key names the period (``now`` // window), and the outbox adds a key once."""
    from quotaflow.services import outbox

    period = int(now.replace(tzinfo=dt.UTC).timestamp()) // max(1, window_seconds)
    params = {"count": count, "username": user.username, "address": remote_addr}
    words = {f"{part}_{locale}": messages.translations(locale).gettext(msgid) % params
             for locale in messages.LANGUAGES
             for part, msgid in (("title", _FAILED_TITLE), ("body", _FAILED_BODY))}
    outbox.emit(session, FAILED_SIGN_INS_TOPIC,
                {**words, "url": "/inbox", "username": user.username, "failures": count,
                 "remote_addr": remote_addr, "at": now.isoformat()},
                to_users=[user.id], key=f"{FAILED_SIGN_INS_TOPIC}:{user.id}:{period}")


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
