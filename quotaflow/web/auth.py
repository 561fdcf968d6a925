"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user, login_user, logout_user

from quotaflow.http import known_device
from quotaflow.http.context import request_context
from quotaflow.http.guard import public
from quotaflow.http.redirects import safe_next
from quotaflow.services import account, commands
from quotaflow.web.forms import LanguageForm, LoginForm

blueprint = Blueprint("auth", __name__)


@blueprint.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    form = LoginForm(next=request.args.get("next", ""))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("pages.home"))
    status = 200
    if form.validate_on_submit():
        result = commands.sign_in_with_password(
            request_context(),
            form.username.data,
            form.password.data,
            max_failures=current_app.config["LOGIN_MAX_FAILURES"],
            window_seconds=current_app.config["LOGIN_WINDOW_SECONDS"],
            max_delay_seconds=current_app.config["LOGIN_MAX_DELAY_SECONDS"],
            known_device=known_device.is_known(form.username.data),
        )
        if result.user is not None:
            session.clear()  # a fresh session on sign-in defeats session fixation
            login_user(result.user)
            response = redirect(safe_next(form.next.data, url_for("pages.home")))
            return known_device.remember(response, result.user.username, url_for("auth.login"))
        if result.throttled:
            flash(gettext("Too many failed sign-ins. Try again in %(seconds)s seconds.",
                          seconds=result.retry_after), "error")
            response = current_app.make_response((render_template("login.html", form=form), 429))
            response.headers["Retry-After"] = str(result.retry_after)
            return response
        else:
            flash(gettext("Wrong username or password."), "error")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@blueprint.route("/logout", methods=["POST"])
@public
def logout() -> Any:
    # Server-side: every copy of this session's cookie stops working, not just this one.
    account.sign_out(request_context())
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@blueprint.route("/language", methods=["POST"])
@public
def set_language() -> Any:
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in current_app.config["LANGUAGES"]:
        session["lang"] = form.lang.data
    return redirect(safe_next(form.next.data, url_for("pages.home")))
