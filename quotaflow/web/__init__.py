"""Server-rendered pages (Jinja + htmx) and the hooks every request passes."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, render_template, request
from flask_babel import get_locale, gettext

from quotaflow.errors import QuotaFlowError
from quotaflow.extensions import login_manager
from quotaflow.http.context import session_context
from quotaflow.http.guard import current_principal, enforce
from quotaflow.i18n import LANGUAGE_NAMES
from quotaflow.services import auth as auth_service
from quotaflow.web.navigation import navigation_for

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
)


def init_web(app: Flask) -> None:
    from quotaflow.web import (
        account,
        admin,
        alerts,
        auth,
        builder,
        collect,
        config_pages,
        confirm,
        dashboards,
        emergency,
        filters,
        hr,
        inbox,
        letters,
        pages,
        periods,
        plans,
        spreadsheets,
        tasks,
        uploads,
        whatif,
    )

    filters.register(app)
    periods.register(app)
    for module in (auth, account, pages, config_pages, builder, collect, uploads, plans, spreadsheets,
                   inbox, letters, confirm, whatif, tasks, hr, alerts, dashboards, emergency):
        app.register_blueprint(module.blueprint)
    app.before_request(enforce)

    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load_user(user_id: str) -> Any:
        return auth_service.active_user(session_context(), user_id)

    @login_manager.request_loader
    def _load_user_from_token(req: Any) -> Any:
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        user = auth_service.user_for_token(session_context().session,
                                           header.removeprefix("Bearer ").strip())
        if user is not None:
            g.authenticated_by_token = True
        return user

    @app.context_processor
    def _shell_context() -> dict[str, Any]:
        principal = current_principal()
        locale = str(get_locale() or "zh")
        return {
            "principal": principal,
            "nav": navigation_for(principal) if principal else [],
            "locale": locale,
            "language_names": LANGUAGE_NAMES,
        }

    @app.after_request
    def _security_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
        return render_template("error.html", status=status, title=title, message=message), status

    @app.errorhandler(403)
    def _forbidden(_e: Exception) -> Any:
        if request.blueprint == "api":
            from quotaflow.http.errors import api_error

            return api_error(403, "forbidden", "you may not do this")
        return _error_page(403, gettext("Not allowed"), gettext("Your role does not allow this action."))

    @app.errorhandler(404)
    def _not_found(_e: Exception) -> Any:
        if request.path.startswith("/api/"):
            from quotaflow.http.errors import api_error

            return api_error(404, "not_found", "not found")
        return _error_page(404, gettext("Not found"),
                           gettext("This page does not exist or is outside your scope."))

    @app.errorhandler(400)
    def _bad_request(e: Any) -> Any:
        if request.path.startswith("/api/"):
            from quotaflow.http.errors import api_error

            return api_error(400, "bad_request", getattr(e, "description", "bad request"))
        return _error_page(400, gettext("Bad request"), str(getattr(e, "description", "")))

    @app.errorhandler(QuotaFlowError)
    def _refused(exc: QuotaFlowError) -> Any:
        """A use case's refusal that a page did not handle: its status and message (the
        API answers refusals with its own handler)."""
        if exc.code == "not_found":  # the pages' own 404 and 403, as abort() shows them
            return _not_found(exc)
        if exc.code == "forbidden":
            return _forbidden(exc)
        title = {404: gettext("Not found"), 403: gettext("Not allowed")}.get(
            exc.status, gettext("Bad request"))
        return _error_page(exc.status, title, exc.localized(str(get_locale() or "zh")))

    admin.init_admin(app)  # last: it builds its views in a request, with the loaders above
