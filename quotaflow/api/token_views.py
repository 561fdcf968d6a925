"""API tokens and sessions in the API: everyone lists, creates and revokes their own
tokens; administrators (``users.manage``) anyone's, and may sign a user out everywhere or
reset their password. The twins of the account pages and of ``quotaflow tokens``, calling
the same use cases (services/account.py, services/users.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request
from flask_login import login_user

from quotaflow.api import api_blueprint
from quotaflow.api.admin_views import user_json
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import account, users


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def token_json(token: Any, now: Any) -> dict[str, Any]:
    """A token without its secret (only its hash is stored)."""
    return {"id": token.id, "username": token.user.username, "name": token.name,
            "created_at": _when(token.created_at), "expires_at": _when(token.expires_at),
            "last_used_at": _when(token.last_used_at), "revoked_at": _when(token.revoked_at),
            "state": account.token_state(token, now)}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", {"pointer": ""})
    return body


def create_token_answer(username: str | None, body: dict[str, Any]) -> Any:
    """Create a token from a JSON body ``{name, days?}``: 201 with the plain token, once."""
    name, days = body.get("name", "integration"), body.get("days")
    if not isinstance(name, str):
        raise ApiError(422, "bad_name", "name is a text of 1 to 100 characters",
                       {"pointer": "/name"})
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ApiError(422, "bad_days", "days is a whole number", {"pointer": "/days"})
    ctx = request_context()
    token, row = account.create_token(
        ctx, name, username=username, days=days,
        default_days=current_app.config["API_TOKEN_DEFAULT_DAYS"],
        max_days=current_app.config["API_TOKEN_MAX_DAYS"],
        by_token=bool(g.get("authenticated_by_token")))
    response = jsonify({**token_json(row, ctx.now), "token": token})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"  # the only copy of the secret
    return response


@api_blueprint.get("/tokens")
@requires("unit.read")
def list_my_tokens() -> Any:
    """My tokens, or (administrators) those of ``?username=``."""
    ctx = request_context()
    owner, tokens = account.list_tokens(ctx, request.args.get("username") or None)
    return jsonify({"username": owner.username,
                    "tokens": [token_json(t, ctx.now) for t in tokens]})


@api_blueprint.post("/tokens")
@requires("unit.read")
def create_my_token() -> Any:
    body = _body()
    username = body.get("username")
    if username is not None and not isinstance(username, str):
        raise ApiError(422, "bad_username", "username is a text", {"pointer": "/username"})
    return create_token_answer(username, body)


@api_blueprint.delete("/tokens/<int:token_id>")
@requires("unit.read")
def revoke_api_token(token_id: int) -> Any:
    account.revoke_token(request_context(), token_id)
    return "", 204


@api_blueprint.post("/users/<username>/sign-out-everywhere")
@requires("users.manage")
def sign_user_out_everywhere(username: str) -> Any:
    """End every session of the account (its tokens stay: revoke them one by one)."""
    return jsonify(user_json(users.sign_out_everywhere(request_context(), username)))


@api_blueprint.post("/users/<username>/password")
@requires("users.manage")
def reset_user_password(username: str) -> Any:
    """Set another account's password: its sessions end, its tokens are revoked, its owner
    is told in the inbox."""
    password = _body().get("password")
    if not isinstance(password, str):
        raise ApiError(422, "required", "password is a required text", {"pointer": "/password"})
    return jsonify(user_json(users.reset_password(request_context(), username, password)))


@api_blueprint.post("/me/password")
@requires("unit.read")
def change_my_password() -> Any:
    """Change my password (the current one is asked for): my other sessions end; a cookie
    session making this call goes on, signed in again."""
    body = _body()
    for name in ("current_password", "new_password"):
        if not isinstance(body.get(name), str):
            raise ApiError(422, "required", f"{name} is a required text", {"pointer": f"/{name}"})
    user = account.change_own_password(request_context(), body["current_password"],
                                       body["new_password"])
    if not g.get("authenticated_by_token"):
        login_user(user)
    return "", 204
