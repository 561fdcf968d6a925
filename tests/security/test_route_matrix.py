"""Role x route x method over every page and API route, generated from the URL map.

Two checks:

* ``ROUTE_POLICY`` (tests/security/route_policy.txt) is the reviewed list of what each
  route and method requires. A new route, or a route whose permission changed, fails
  ``test_every_route_has_a_reviewed_rule`` until the list is updated in the same change,
  so a rule is never added or loosened without someone reading it.
* Every (route, method) is requested as anonymous and as each role (granted on EAST):
  a caller without the permission, or outside the unit's scope, is refused by the guard
  (401 or the sign-in page, 403, or 404 for a unit out of scope) and a caller with it
  gets past the guard. Nothing answers 500.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import DEMO_PASSWORD, sign_in

from quotaflow.http.guard import SAFE_METHODS, UNIT_ARG, Access, admin_access
from quotaflow.services.access import ROLES, UNIT_PERMISSIONS, Grant, Principal
from quotaflow.services.auth import hash_password
from quotaflow.store import db
from quotaflow.store.models import RoleGrant, User
from quotaflow.store.queries import unit_by_code

POLICY_FILE = Path(__file__).with_name("route_policy.txt")
SCOPE, INSIDE, OUTSIDE = "EAST", "EAST-T1", "WEST"
MISSING_ID = 987654
CALLERS = ("anonymous", *ROLES)
# Guard refusals look like this; a view refusing for its own reasons (a missing object)
# answers 404 with its own code, never these.
GUARD_CODES = {"unauthenticated", "forbidden"}


def _app_routes(app) -> list[tuple[str, str, str]]:
    """(method, rule, endpoint) for every routed view, HEAD and OPTIONS left out."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, rule.endpoint))
    return sorted(routes)


def _declared(app, endpoint: str) -> Access | None:
    view = app.view_functions[endpoint]
    access = getattr(view, "qf_access", None)
    if access is None:
        access = admin_access(app).get(endpoint.split(".")[0])
    return access


def _permission(app, method: str, endpoint: str) -> str:
    access = _declared(app, endpoint)
    if access is None:
        return "UNDECLARED"
    permission = access.read if method in SAFE_METHODS else access.write
    return permission or "public"


def _policy_lines(app) -> list[str]:
    return [f"{method} {rule} {endpoint} {_permission(app, method, endpoint)}"
            for method, rule, endpoint in _app_routes(app)]


def _reviewed() -> list[str]:
    lines = POLICY_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_every_route_has_a_reviewed_rule(app) -> None:
    actual, reviewed = _policy_lines(app), _reviewed()
    new = sorted(set(actual) - set(reviewed))
    gone = sorted(set(reviewed) - set(actual))
    assert not new and not gone, (
        "the routes' rules differ from tests/security/route_policy.txt; review and update it.\n"
        "new or changed:\n  " + "\n  ".join(new) + "\nno longer there:\n  " + "\n  ".join(gone))
    assert not [line for line in actual if line.endswith(" UNDECLARED")]


def test_the_reviewed_rules_keep_user_management_to_admins() -> None:
    # The HRBP-becomes-anyone finding: accounts, grants and tokens of others are admin-only.
    lines = [line.split() for line in _reviewed()]
    managing = ("/admin/users", "/admin/grants", "/api/v1/users")
    admin_users = [line for line in lines if line[1].startswith(managing)]
    assert len({line[1].split("/")[2 if line[1].startswith("/admin") else 3]
                for line in admin_users}) >= 2
    assert all(line[3] == "users.manage" for line in admin_users), admin_users


def _url(rule: str, code: str) -> str:
    def fill(match: re.Match[str]) -> str:
        converter, _, name = match.group(1).rpartition(":")
        if name == UNIT_ARG:
            return code
        if converter.startswith("int"):
            return str(MISSING_ID)
        return "x"

    return re.sub(r"<([^>]+)>", fill, rule)


@pytest.fixture(scope="module")
def callers(app):
    """A signed-in client per role, each granted on EAST, and an anonymous client."""
    clients = {"anonymous": app.test_client()}
    with app.app_context():
        east = unit_by_code(db.session, SCOPE)
        for role in ROLES:
            username = f"route.{role}"
            user = User(username=username, display_name=username, locale="en",
                        password_hash=hash_password(DEMO_PASSWORD))
            user.grants.append(RoleGrant(role=role, unit=east))
            db.session.add(user)
        db.session.commit()
        paths = {code: unit_by_code(db.session, code).path for code in (INSIDE, OUTSIDE)}
        east_path = east.path
    for role in ROLES:
        clients[role] = sign_in(app.test_client(), f"route.{role}")
    return clients, paths, east_path


def _expected(permission: str, caller: str, rule: str, unit_path: str, east_path: str) -> str:
    """What the guard must do: "pass", "sign_in", "forbidden" or "hidden"."""
    if permission == "public":
        return "pass"
    if caller == "anonymous":
        return "sign_in"
    principal = Principal(0, caller, (Grant(caller, SCOPE, east_path),))
    if f"<{UNIT_ARG}>" in rule and permission in UNIT_PERMISSIONS:
        if not principal.can("unit.read", unit_path):
            return "hidden"
        return "pass" if principal.can(permission, unit_path) else "forbidden"
    return "pass" if principal.has(permission) else "forbidden"


def _outcome(response, api: bool) -> str:
    status = response.status_code
    assert status != 500, response.data[:300]
    if api:
        body = response.get_json(silent=True) or {}
        code = (body.get("error") or {}).get("code")
        if status == 401 and code == "unauthenticated":
            return "sign_in"
        if status == 403 and code == "forbidden":
            return "forbidden"
        if status == 404 and code == "not_found":
            return "hidden_or_missing"
        return "pass"
    if status == 302 and "/login" in response.location:
        return "sign_in"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "hidden_or_missing"
    return "pass"


@pytest.mark.parametrize("caller", CALLERS)
def test_the_guard_applies_each_rule(app, callers, caller: str) -> None:
    clients, paths, east_path = callers
    client = clients[caller]
    wrong = []
    for line in _reviewed():
        method, rule, endpoint, permission = line.split()
        if endpoint == "auth.logout":
            continue  # signing out would end this caller's session for the next routes
        api = endpoint.startswith("api.")
        for code in ((INSIDE, OUTSIDE) if f"<{UNIT_ARG}>" in rule else (INSIDE,)):
            expected = _expected(permission, caller, rule, paths[code], east_path)
            if expected == "pass" and method not in SAFE_METHODS:
                continue  # running an allowed write with made-up arguments proves nothing here
            response = client.open(_url(rule, code), method=method,
                                   headers={"Accept": "application/json"} if api else {})
            got = _outcome(response, api)
            if expected == "pass":
                # Past the guard: the view answered (a made-up id may still be missing).
                ok = got in ("pass", "hidden_or_missing")
            elif expected == "hidden":
                ok = got == "hidden_or_missing"
            else:
                ok = got == expected
            if not ok:
                wrong.append(f"{method} {_url(rule, code)}: expected {expected}, got "
                             f"{response.status_code} ({got})")
    assert not wrong, "\n".join(wrong)
