"""Authorisation for every request, decided in one hook.

Each view declares what it needs with ``@requires(...)`` or ``@public``; the hook
``enforce`` runs before every request (pages and API alike), loads the unit named
in the URL (view argument ``code``) and asks ``Principal.can``.  A view that
declares nothing is refused: the default is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import abort, current_app, g, redirect, request, url_for
from flask_login import current_user

from quotaflow.services import units as unit_service
from quotaflow.services.access import PERMISSIONS, UNIT_PERMISSIONS, Principal
from quotaflow.services.auth import principal_for

F = TypeVar("F", bound=Callable[..., Any])
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UNIT_ARG = "code"


@dataclass(frozen=True)
class Access:
    read: str | None  # None: public
    write: str | None


def requires(read: str, write: str | None = None) -> Callable[[F], F]:
    """Declare the permission for safe methods and, if different, for writes."""
    for permission in (read, write):
        if permission is not None and permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")

    def mark(view: F) -> F:
        view.qf_access = Access(read, write or read)  # type: ignore[attr-defined]
        return view

    return mark


#: What every page of the Flask-Admin at /admin needs (its views cannot carry ``@requires``).
ADMIN_ACCESS = Access("admin.access", "admin.access")
#: What the admin's accounts, grants and tokens views need (they carry it as ``qf_access``):
#: only administrators, else an HRBP could reset others' passwords or grant himself admin.
USERS_ACCESS = Access("users.manage", "users.manage")


def admin_blueprints(app: Any) -> frozenset[str]:
    """The blueprints registered by the app's Flask-Admin instance(s)."""
    return frozenset(admin_access(app))


def admin_access(app: Any) -> dict[str, Access]:
    """Each Flask-Admin blueprint's Access: the view's ``qf_access``, else ADMIN_ACCESS."""
    return {view.blueprint.name: getattr(view, "qf_access", None) or ADMIN_ACCESS
            for admin in app.extensions.get("admin", ())
            for view in getattr(admin, "_views", ())}


def public(view: F) -> F:
    view.qf_access = Access(None, None)  # type: ignore[attr-defined]
    return view


def current_principal() -> Principal | None:
    if not current_user.is_authenticated:
        return None
    if "principal" not in g:
        g.principal = principal_for(current_user)
    return g.principal


def _is_api() -> bool:
    return request.blueprint == "api"


def _refuse(status: int) -> Any:
    if _is_api():
        from quotaflow.http.errors import api_error

        messages = {401: "sign in or send an API token", 403: "you may not do this",
                    404: "not found"}
        codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
        return api_error(status, codes[status], messages[status])
    if status == 401:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(status)


def enforce() -> Any:
    """The single authorisation check (registered with ``before_request``)."""
    if request.endpoint is None:
        return None  # 404 from routing
    if request.endpoint == "static":
        return None
    view = current_app.view_functions[request.endpoint]
    access: Access | None = getattr(view, "qf_access", None)
    if access is None and request.blueprint is not None:
        access = admin_access(current_app).get(request.blueprint)
    if access is None:
        return _refuse(403)  # undeclared views are closed
    permission = access.read if request.method in SAFE_METHODS else access.write
    if permission is None:
        return None
    principal = current_principal()
    if principal is None:
        return _refuse(401)
    code = (request.view_args or {}).get(UNIT_ARG)
    if code is not None and permission in UNIT_PERMISSIONS:
        from quotaflow.http.context import request_context  # it imports this module

        unit = unit_service.unit_by_code(request_context(), code)
        # Out of read scope looks the same as absent, so codes cannot be probed.
        if unit is None or not principal.can("unit.read", unit.path):
            return _refuse(404)
        if not principal.can(permission, unit.path):
            return _refuse(403)
        g.unit = unit
        return None
    if not principal.has(permission):
        return _refuse(403)
    return None
