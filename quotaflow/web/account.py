"""My account (change my password, my API tokens) and, for administrators, another
user's access (their tokens, "sign out everywhere")."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext
from flask_login import login_user

from quotaflow.errors import QuotaFlowError
from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.services import account, users
from quotaflow.web.context import current_locale
from quotaflow.web.forms import CsrfOnlyForm, PasswordChangeForm, TokenForm

blueprint = Blueprint("account", __name__)


def _page(username: str | None = None, *, new_token: str | None = None,
          password_form: PasswordChangeForm | None = None,
          token_form: TokenForm | None = None, status: int = 200) -> Any:
    ctx = request_context()
    owner, tokens = account.list_tokens(ctx, username)
    states = {t.id: account.token_state(t, ctx.now) for t in tokens}
    return render_template(
        "account/account.html", owner=owner, tokens=tokens, states=states,
        own=username is None, new_token=new_token,
        password_form=password_form or PasswordChangeForm(),
        token_form=token_form or TokenForm(), action_form=CsrfOnlyForm(),
        default_days=current_app.config["API_TOKEN_DEFAULT_DAYS"],
        max_days=current_app.config["API_TOKEN_MAX_DAYS"]), status


def _refused(exc: QuotaFlowError) -> None:
    flash(exc.localized(current_locale()), "error")


@blueprint.get("/account")
@requires("unit.read")
def my_account() -> Any:
    return _page()


@blueprint.post("/account/password")
@requires("unit.read")
def change_password() -> Any:
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _page(password_form=form, status=400)
    try:
        user = account.change_own_password(request_context(), form.current_password.data,
                                           form.new_password.data)
    except QuotaFlowError as exc:
        _refused(exc)
        return _page(password_form=form, status=exc.status)
    login_user(user)  # this session goes on under the new session version; others end
    flash(gettext("Your password was changed. You were signed out everywhere else."), "success")
    return redirect(url_for("account.my_account"))


def _create(username: str | None) -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(username, token_form=form, status=400)
    try:
        token, _row = account.create_token(
            request_context(), form.name.data, username=username, days=form.days.data,
            default_days=current_app.config["API_TOKEN_DEFAULT_DAYS"],
            max_days=current_app.config["API_TOKEN_MAX_DAYS"],
            by_token=bool(g.get("authenticated_by_token")))
    except QuotaFlowError as exc:
        _refused(exc)
        return _page(username, token_form=form, status=exc.status)
    # Rendered, never flashed: the flash would keep the plain token in the session cookie.
    response = make_response(_page(username, new_token=token, status=201))
    response.headers["Cache-Control"] = "no-store"  # nor kept in a cache
    return response


@blueprint.post("/account/tokens")
@requires("unit.read")
def create_my_token() -> Any:
    return _create(None)


@blueprint.post("/account/tokens/<int:token_id>/revoke")
@requires("unit.read")
def revoke_token(token_id: int) -> Any:
    if not CsrfOnlyForm().validate_on_submit():
        return redirect(url_for("account.my_account"))
    try:
        token = account.revoke_token(request_context(), token_id)
    except QuotaFlowError as exc:
        _refused(exc)
        return redirect(url_for("account.my_account"))
    flash(gettext("The token “%(name)s” was revoked.", name=token.name), "success")
    if token.user_id == request_context().user_id:
        return redirect(url_for("account.my_account"))
    return redirect(url_for("account.user_access", username=token.user.username))


@blueprint.get("/account/users/<username>")
@requires("users.manage")
def user_access(username: str) -> Any:
    return _page(username)


@blueprint.post("/account/users/<username>/tokens")
@requires("users.manage")
def create_user_token(username: str) -> Any:
    return _create(username)


@blueprint.post("/account/users/<username>/sign-out-everywhere")
@requires("users.manage")
def sign_out_everywhere(username: str) -> Any:
    if CsrfOnlyForm().validate_on_submit():
        user = users.sign_out_everywhere(request_context(), username)
        flash(gettext("%(name)s was signed out everywhere.", name=user.display_name), "success")
    return redirect(url_for("account.user_access", username=username))
