"""Accounts and role grants in the API, for administrators (``users.manage``): list, read,
create, deactivate or reactivate, grant and revoke roles, create API tokens (more in
token_views.py: list and revoke tokens, sign out everywhere, reset a password). The twins of
the admin's Users and Role grants pages and of ``quotaflow users``, calling the same use
cases (services/users.py)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import users


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def grant_json(grant: Any) -> dict[str, Any]:
    return {"id": grant.id, "role": grant.role, "unit": grant.unit.code,
            "created_at": _when(grant.created_at)}


def user_json(user: Any) -> dict[str, Any]:
    return {"username": user.username, "display_name": user.display_name,
            "email": user.email, "locale": user.locale, "active": user.active,
            "person_unit": user.person_unit.code if user.person_unit else None,
            "created_at": _when(user.created_at),
            "grants": [grant_json(g) for g in user.grants]}


def _body(*required: str) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", {"pointer": ""})
    for name in required:
        if not isinstance(body.get(name), str):
            raise ApiError(422, "required", f"{name} is a required text",
                           {"pointer": f"/{name}"})
    return body


@api_blueprint.get("/users")
@requires("users.manage")
def list_users() -> Any:
    active = request.args.get("active")
    flag = None if active in (None, "", "all") else active in ("1", "true", "yes")
    return jsonify({"users": [user_json(u) for u in users.list_users(request_context(),
                                                                      active=flag)]})


@api_blueprint.post("/users")
@requires("users.manage")
def create_user() -> Any:
    body = _body("username", "display_name", "password", "role", "scope")
    email = body.get("email")
    if email is not None and not isinstance(email, str):
        raise ApiError(422, "bad_email", "email is a text", {"pointer": "/email"})
    user = users.create_user(request_context(), body["username"], body["display_name"],
                             body["password"], role=body["role"], scope=body["scope"],
                             locale=str(body.get("locale", "zh")), email=email)
    response = jsonify(user_json(user))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/users/{user.username}"
    return response


@api_blueprint.get("/users/<username>")
@requires("users.manage")
def get_user(username: str) -> Any:
    return jsonify(user_json(users.get_user(request_context(), username)))


@api_blueprint.post("/users/<username>/deactivate")
@requires("users.manage")
def deactivate_user(username: str) -> Any:
    """The account can no longer sign in or use its tokens; it is kept (audit, plans)."""
    return jsonify(user_json(users.set_active(request_context(), username, False)))


@api_blueprint.post("/users/<username>/activate")
@requires("users.manage")
def activate_user(username: str) -> Any:
    return jsonify(user_json(users.set_active(request_context(), username, True)))


@api_blueprint.post("/users/<username>/grants")
@requires("users.manage")
def grant_role(username: str) -> Any:
    body = _body("role", "scope")
    grant = users.grant_role(request_context(), username, body["role"], body["scope"])
    response = jsonify(grant_json(grant))
    response.status_code = 201
    return response


@api_blueprint.delete("/users/<username>/grants/<int:grant_id>")
@requires("users.manage")
def revoke_grant(username: str, grant_id: int) -> Any:
    users.revoke_grant(request_context(), username, grant_id)
    return "", 204


@api_blueprint.post("/users/<username>/tokens")
@requires("users.manage")
def create_token(username: str) -> Any:
    """A new API token for the user, shown once (as POST /tokens with a username)."""
    from quotaflow.api.token_views import create_token_answer

    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", {"pointer": ""})
    return create_token_answer(username, body)
