"""A person's own access: signing out, changing their password, and API tokens.

Sessions end server-side: every session cookie carries the user's session version
(:meth:`User.get_id`), and raising it (sign-out, a password change or reset,
deactivation, an administrator's "sign out everywhere") makes every cookie issued before
load nobody. A person manages their own tokens; administrators (``users.manage``) and the
CLI (the system) anyone's. Every token expires; the plain token is returned once.
"""

from __future__ import annotations

import datetime as dt

from werkzeug.security import check_password_hash

from quotaflow import messages
from quotaflow.errors import Forbidden, Invalid, NotFound
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.auth import (
    DEFAULT_TOKEN_DAYS,
    actor,
    end_sessions,
    hash_password,
    new_api_token,
    token_is_live,
)
from quotaflow.services.uow import Context, use_case
from quotaflow.store import auth_queries
from quotaflow.store import queries as q
from quotaflow.store.models import ApiToken, User

#: The longest a token may last (days); the app's config (API_TOKEN_DEFAULT_DAYS,
#: API_TOKEN_MAX_DAYS) may change it and the default lifetime.
MAX_TOKEN_DAYS = 365
MAX_TOKEN_NAME = 100
MIN_PASSWORD = 8


class AccountError(Invalid):
    domain = "account"
    CODES = messages.register(domain, {
        "bad_token_name": _l("A token's name has 1 to %(max)s characters."),
        "bad_token_days": _l("A token lasts 1 to %(max)s days."),
        "wrong_password": _l("The current password is wrong."),
        "short_password": _l("The password needs at least %(min)s characters."),
    })


class AccountNotFound(NotFound):
    domain = "account"
    CODES = messages.register(domain, {
        "unknown_token": _l("There is no API token %(id)s."),
        "unknown_user": _l("There is no user %(username)s."),
    })


class AccountForbidden(Forbidden):
    domain = "account"
    CODES = messages.register(domain, {
        "token_by_token": _l("An API token cannot create tokens: sign in with your password."),
        "not_signed_in": _l("Sign in first."),
    })


def _naive(now: dt.datetime) -> dt.datetime:
    """Stored times are naive UTC."""
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _me(ctx: Context) -> User:
    user = actor(ctx)
    if user is None:
        raise AccountForbidden("not_signed_in")
    return user


def _may_manage(ctx: Context, owner: User) -> bool:
    """Own tokens, or anyone's for administrators and the system (CLI)."""
    return (ctx.principal is None or ctx.principal.user_id == owner.id
            or ctx.principal.can("users.manage"))


def _owner(ctx: Context, username: str | None) -> User:
    """The account whose tokens are asked for: one's own unless ``username`` names
    another, which only administrators (and the system) may."""
    if username is None:
        return _me(ctx)
    owner = q.user_by_username(ctx.session, username.strip().lower())
    if owner is not None and _may_manage(ctx, owner):
        return owner
    if ctx.principal is not None and not ctx.principal.can("users.manage"):
        raise Forbidden("forbidden")
    raise AccountNotFound("unknown_user", "/username", username=username)


# -- sessions and passwords ---------------------------------------------------------------


@use_case
def sign_out(ctx: Context) -> None:
    """End the signed-in user's sessions (every copy of the cookie, here and elsewhere)."""
    user = actor(ctx)
    if user is None:
        return
    end_sessions(user)
    audit.record(ctx.session, user, "sign_out", "user", user.username,
                 remote_addr=ctx.remote_addr)


@use_case
def change_own_password(ctx: Context, current: str, new: str) -> User:
    """Change one's own password (the current one is asked for); every other session of
    the account ends: the caller signs the returned user in again."""
    user = _me(ctx)
    if not check_password_hash(user.password_hash, current or ""):
        raise AccountError("wrong_password", "/current_password")
    if len(new or "") < MIN_PASSWORD:
        raise AccountError("short_password", "/new_password", min=MIN_PASSWORD)
    user.password_hash = hash_password(new)
    end_sessions(user)
    audit.record(ctx.session, user, "change_password", "user", user.username,
                 after={"password_changed": True, "sessions_ended": True},
                 remote_addr=ctx.remote_addr)
    return user


# -- API tokens ----------------------------------------------------------------------------


def list_tokens(ctx: Context, username: str | None = None) -> tuple[User, list[ApiToken]]:
    """The tokens of ``username`` (default: one's own), newest first."""
    owner = _owner(ctx, username)
    return owner, auth_queries.tokens_of(ctx.session, owner.id)


def token_state(token: ApiToken, now: dt.datetime) -> str:
    """``active``, ``expired`` or ``revoked`` (what pages and the API show)."""
    if token.revoked_at is not None:
        return "revoked"
    return "active" if token_is_live(token, _naive(now)) else "expired"


@use_case
def create_token(ctx: Context, name: str, *, username: str | None = None,
                 days: int | None = None, default_days: int = DEFAULT_TOKEN_DAYS,
                 max_days: int = MAX_TOKEN_DAYS,
                 by_token: bool = False) -> tuple[str, ApiToken]:
    """A new token for ``username`` (default: oneself) lasting ``days`` (default
    ``default_days``, at most ``max_days``); returns its only plain copy and the row.

    ``by_token``: the request was authenticated by an API token, which may not mint
    tokens (a stolen token could otherwise outlive its own revocation)."""
    if by_token:
        raise AccountForbidden("token_by_token")
    owner = _owner(ctx, username)
    clean = (name or "").strip()
    if not clean or len(clean) > MAX_TOKEN_NAME:
        raise AccountError("bad_token_name", "/name", max=MAX_TOKEN_NAME)
    lifetime = default_days if days is None else days
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or not 0 < lifetime <= max_days:
        raise AccountError("bad_token_days", "/days", max=max_days)
    expires_at = _naive(ctx.now) + dt.timedelta(days=lifetime)
    return new_api_token(ctx.session, owner, clean, expires_at, actor=actor(ctx))


@use_case
def revoke_token(ctx: Context, token_id: int) -> ApiToken:
    """Revoke a token (one's own; administrators any). Another person's token looks absent."""
    token = auth_queries.token_by_id(ctx.session, token_id)
    if token is None or not _may_manage(ctx, token.user):
        raise AccountNotFound("unknown_token", "/id", id=token_id)
    if token.revoked_at is None:
        token.revoked_at = _naive(ctx.now)
        audit.record(ctx.session, actor(ctx), "revoke_api_token", "api_token", str(token.id),
                     after={"username": token.user.username, "name": token.name},
                     remote_addr=ctx.remote_addr)
    return token


def end_access(ctx: Context, user: User) -> list[str]:
    """End every session and revoke every live token of ``user`` (inside the caller's
    use case: a reset, a deactivation); the names of the revoked tokens."""
    end_sessions(user)
    return auth_queries.revoke_live_tokens(ctx.session, user.id, _naive(ctx.now))
