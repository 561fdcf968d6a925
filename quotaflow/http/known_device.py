"""The known-device cookie: a browser that signed in to an account before is its owner's.

Set at every successful sign-in, signed with the app's secret key (a browser cannot
forge one for an account it never signed in to), sent only to ``/login`` and read only
there: with it, the account's sign-in backoff does not apply (services/auth.py), so an
attacker's wrong passwords cannot keep the owner out. It grants nothing else: the
password is still checked, and the address's own backoff still holds.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "qf_known_device"
MAX_AGE = 180 * 24 * 3600
# A few accounts per browser (a shared desk); the latest first.
MAX_ACCOUNTS = 5
_SALT = "quotaflow.known-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=_SALT)


def known_accounts() -> list[str]:
    """The usernames this browser signed in as (empty if the cookie is absent, forged,
    or older than ``MAX_AGE``)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        names = _serializer().loads(raw, max_age=MAX_AGE)
    except BadSignature:  # also SignatureExpired
        return []
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str)][:MAX_ACCOUNTS]


def is_known(username: str) -> bool:
    return username.strip().lower() in known_accounts()


def remember(response: Any, username: str, path: str) -> Any:
    """Add ``username`` to the browser's known accounts (on a successful sign-in); the
    cookie goes back only to ``path`` (the sign-in page)."""
    name = username.strip().lower()
    names = [name, *(n for n in known_accounts() if n != name)][:MAX_ACCOUNTS]
    response.set_cookie(
        COOKIE, _serializer().dumps(names), max_age=MAX_AGE, path=path, httponly=True,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")), samesite="Lax")
    return response
