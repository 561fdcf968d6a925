"""Property: whatever an account goes through (sign-ins, sign-outs, password resets,
deactivation and reactivation, sign-out-everywhere, token creation and revocation), a
session cookie loads the user only if nothing ended its sessions since it was issued and
the account is active; a token works only if it was not revoked, no reset or deactivation
came after it, and the account is active. Nothing an administrator undoes revives either."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotaflow.services import account, users
from quotaflow.services.auth import active_user, principal_for, user_for_token
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store.models import RoleGrant, User
from quotaflow.store.queries import unit_by_code

ACTIONS = ("sign_in", "sign_out", "sign_out_everywhere", "reset", "deactivate", "activate",
           "make_token", "revoke_token")
_names = itertools.count()
#: One hash for every account the test makes (hashing is slow by design).
_HASH: list[str] = []


def _account(session) -> User:
    if not _HASH:
        from quotaflow.services.auth import hash_password

        _HASH.append(hash_password("property-password"))
    user = User(username=f"prop.{next(_names)}", display_name="P", password_hash=_HASH[0])
    user.grants.append(RoleGrant(role="sales", unit=unit_by_code(session, "P0003")))
    session.add(user)
    session.flush()
    return user


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 5)), max_size=10))
def test_ended_sessions_and_revoked_tokens_stay_ended(app, steps) -> None:
    with app.app_context():
        session = db.session
        system = Context(session=session)
        user = _account(session)
        cookies: list[tuple[str, bool]] = []  # (cookie, not ended since)
        tokens: list[tuple[str, int, bool]] = []  # (token, id, not revoked)
        for action, pick in steps:
            if action == "sign_in" and user.active:
                cookies.append((user.get_id(), True))
            elif action == "sign_out":
                account.sign_out(Context(session=session, principal=principal_for(user)))
                cookies = [(c, False) for c, _ in cookies]
            elif action == "sign_out_everywhere":
                users.sign_out_everywhere(system, user.username)
                cookies = [(c, False) for c, _ in cookies]
            elif action == "reset" or (action == "deactivate" and user.active):
                if action == "reset":
                    users.reset_password(system, user.username, "a-new-long-password")
                else:
                    users.set_active(system, user.username, False)
                cookies = [(c, False) for c, _ in cookies]
                tokens = [(t, i, False) for t, i, _ in tokens]
            elif action == "deactivate":  # already inactive: nothing changes
                users.set_active(system, user.username, False)
            elif action == "activate":
                users.set_active(system, user.username, True)
            elif action == "make_token":
                plain, row = account.create_token(system, "t", username=user.username)
                tokens.append((plain, row.id, True))
            elif action == "revoke_token" and tokens:
                plain, token_id, _ = tokens[pick % len(tokens)]
                account.revoke_token(system, token_id)
                tokens[pick % len(tokens)] = (plain, token_id, False)
            for cookie, alive in cookies:
                assert (active_user(system, cookie) is not None) == (alive and user.active), (
                    action, cookie)
            for plain, _, alive in tokens:
                assert (user_for_token(session, plain) is not None) == (alive and user.active)
