"""Accounts and role grants: list, create, deactivate, grant, revoke, reset a password,
sign a user out everywhere.

Used by the API (``/api/v1/users``, admins only: ``users.manage``) and the CLI
(``quotaflow users ...``, acting as the system). Every change is audited in its unit of
work. Users are deactivated, never deleted: the audit log and plans name them.
"""

from __future__ import annotations

from quotaflow import messages
from quotaflow.channels import is_email_address
from quotaflow.errors import Conflict, Forbidden, Invalid, NotFound
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.access import ROLES
from quotaflow.services.account import end_access
from quotaflow.services.auth import actor, end_sessions, hash_password
from quotaflow.services.uow import Context, use_case
from quotaflow.store import queries as q
from quotaflow.store.models import RoleGrant, User

LOCALES = ("zh", "en")
#: The outbox topic telling an account's owner that an administrator reset its password.
PASSWORD_RESET_TOPIC = "account.password_reset"
_RESET_TITLE = _l("Your password was reset")
_RESET_BODY = _l("%(by)s set a new password for your account %(username)s. You were signed out "
                 "everywhere and your API tokens were revoked. If you did not ask for this, "
                 "tell an administrator.")
MIN_PASSWORD = 8
MAX_USERNAME = 64
MAX_DISPLAY_NAME = 200


class UserError(Invalid):
    domain = "users"


class UserNotFound(NotFound):
    domain = "users"


class UserConflict(Conflict):
    domain = "users"


messages.register("users", {
    "unknown_user": _l("There is no user %(username)s."),
    "unknown_unit": _l("There is no org unit %(code)s."),
    "user_exists": _l("The user %(username)s exists already."),
    "grant_exists": _l("%(username)s holds this role over %(code)s already."),
    "bad_username": _l("A user name has 1 to %(max)s characters, without spaces."),
    "bad_display_name": _l("Enter a name of 1 to %(max)s characters."),
    "bad_role": _l("The role is one of %(roles)s."),
    "bad_locale": _l("The language is zh or en."),
    "bad_email": _l("“%(value)s” is not an e-mail address (name@example.com)."),
    "short_password": _l("The password needs at least %(min)s characters."),
})


def _manage(ctx: Context) -> None:
    """Only admins manage accounts; the system (CLI) may."""
    if ctx.principal is not None and not ctx.principal.can("users.manage"):
        raise Forbidden("forbidden")


def user_named(ctx: Context, username: str) -> User:
    user = q.user_by_username(ctx.session, username.strip().lower())
    if user is None:
        raise UserNotFound("unknown_user", "/username", username=username)
    return user


def acting_as(ctx: Context, username: str | None) -> Context:
    """The context of a CLI command run ``--as USERNAME`` (the system without one)."""
    if username is None:
        return ctx
    from quotaflow.services.auth import principal_for

    return Context(session=ctx.session, principal=principal_for(user_named(ctx, username)),
                   now=ctx.now, locale=ctx.locale, remote_addr=ctx.remote_addr)


def list_users(ctx: Context, *, active: bool | None = None) -> list[User]:
    _manage(ctx)
    return q.users(ctx.session, active=active)


def get_user(ctx: Context, username: str) -> User:
    _manage(ctx)
    return user_named(ctx, username)


def _unit(ctx: Context, code: str, pointer: str) -> object:
    unit = q.unit_by_code(ctx.session, code)
    if unit is None:
        raise UserNotFound("unknown_unit", pointer, code=code)
    return unit


def _role(role: str, pointer: str) -> str:
    if role not in ROLES:
        raise UserError("bad_role", pointer, roles=", ".join(ROLES))
    return role


@use_case
def create_user(ctx: Context, username: str, display_name: str, password: str, *,
                role: str, scope: str, locale: str = "zh", email: str | None = None) -> User:
    """A new active account with one role grant over the unit ``scope``."""
    _manage(ctx)
    name = (username or "").strip().lower()
    if not name or len(name) > MAX_USERNAME or any(c.isspace() for c in name):
        raise UserError("bad_username", "/username", max=MAX_USERNAME)
    if q.user_by_username(ctx.session, name) is not None:
        raise UserConflict("user_exists", "/username", username=name)
    unit = _unit(ctx, scope, "/scope")
    display = (display_name or "").strip()
    if not display or len(display) > MAX_DISPLAY_NAME:
        raise UserError("bad_display_name", "/display_name", max=MAX_DISPLAY_NAME)
    _role(role, "/role")
    if locale not in LOCALES:
        raise UserError("bad_locale", "/locale")
    email = (email or "").strip() or None
    if email is not None and not is_email_address(email):
        raise UserError("bad_email", "/email", value=email)
    if len(password or "") < MIN_PASSWORD:
        raise UserError("short_password", "/password", min=MIN_PASSWORD)
    user = User(username=name, display_name=display, password_hash=hash_password(password),
                locale=locale, email=email)
    user.grants.append(RoleGrant(role=role, unit=unit))
    ctx.session.add(user)
    ctx.session.flush()
    audit.record(ctx.session, actor(ctx), "create_user", "user", user.username,
                 after={"role": role, "scope": scope, "email": email},
                 remote_addr=ctx.remote_addr)
    return user


@use_case
def set_active(ctx: Context, username: str, active: bool) -> User:
    """Deactivate (or reactivate) an account: deactivation ends its sessions and revokes
    its tokens, so reactivating it later revives neither."""
    _manage(ctx)
    user = user_named(ctx, username)
    if user.active != active:
        user.active = active
        if active:
            audit.record(ctx.session, actor(ctx), "activate_user", "user", user.username,
                         before={"active": False}, after={"active": True},
                         remote_addr=ctx.remote_addr)
        else:
            after_deactivation(ctx, user)
    return user


def after_deactivation(ctx: Context, user: User) -> None:
    """End a just-deactivated account's sessions and tokens, audited (also used when the
    admin's Users page unticks "active")."""
    _manage(ctx)
    revoked = end_access(ctx, user)
    audit.record(ctx.session, actor(ctx), "deactivate_user", "user", user.username,
                 before={"active": True},
                 after={"active": False, "sessions_ended": True, "tokens_revoked": revoked},
                 remote_addr=ctx.remote_addr)


@use_case
def grant_role(ctx: Context, username: str, role: str, scope: str) -> RoleGrant:
    _manage(ctx)
    user = user_named(ctx, username)
    _role(role, "/role")
    unit = _unit(ctx, scope, "/scope")
    if q.find_grant(ctx.session, user.id, role, unit.id) is not None:  # type: ignore[attr-defined]
        raise UserConflict("grant_exists", "/role", username=user.username, code=scope)
    grant = RoleGrant(role=role, unit=unit)
    user.grants.append(grant)
    ctx.session.flush()
    audit.record(ctx.session, actor(ctx), "grant_role", "role_grant", str(grant.id),
                 after={"username": user.username, "role": role, "unit_code": scope},
                 remote_addr=ctx.remote_addr)
    return grant


@use_case
def revoke_grant(ctx: Context, username: str, grant_id: int) -> None:
    _manage(ctx)
    user = user_named(ctx, username)
    grant = q.role_grant(ctx.session, grant_id)
    if grant is None or grant.user_id != user.id:
        raise NotFound("not_found", "/grant_id")
    audit.record(ctx.session, actor(ctx), "revoke_role", "role_grant", str(grant.id),
                 before={"username": user.username, "role": grant.role,
                         "unit_code": grant.unit.code},
                 remote_addr=ctx.remote_addr)
    user.grants.remove(grant)
    ctx.session.flush()


@use_case
def sign_out_everywhere(ctx: Context, username: str) -> User:
    """End every session of ``username`` (administrators only, audited); tokens stay."""
    _manage(ctx)
    user = user_named(ctx, username)
    end_sessions(user)
    audit.record(ctx.session, actor(ctx), "sign_out_everywhere", "user", user.username,
                 after={"sessions_ended": True}, remote_addr=ctx.remote_addr)
    return user


@use_case
def reset_password(ctx: Context, username: str, password: str) -> User:
    """Set another account's password (administrators only, audited; the password is not
    written to the log). The account's sessions end, its tokens are revoked and its owner
    is told in the inbox (an outbox event in the same transaction)."""
    _manage(ctx)
    user = user_named(ctx, username)
    if len(password or "") < MIN_PASSWORD:
        raise UserError("short_password", "/password", min=MIN_PASSWORD)
    user.password_hash = hash_password(password)
    revoked = end_access(ctx, user)
    ctx.session.flush()
    by = ctx.username
    audit.record(ctx.session, actor(ctx), "reset_password", "user", user.username,
                 after={"password_changed": True, "sessions_ended": True,
                        "tokens_revoked": revoked}, remote_addr=ctx.remote_addr)
    from quotaflow.services import outbox

    params = {"by": by, "username": user.username}
    words = {f"{part}_{locale}": messages.translations(locale).gettext(msgid) % params
             for locale in messages.LANGUAGES
             for part, msgid in (("title", _RESET_TITLE), ("body", _RESET_BODY))}
    outbox.emit(ctx.session, PASSWORD_RESET_TOPIC, {
        **words, "url": "/account",
        "username": user.username, "reset_by": by, "tokens_revoked": revoked,
    }, to_users=[user.id])
    return user
