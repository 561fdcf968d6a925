"""The JSON API under /api/v1, with the same authorisation as the pages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from quotaflow.errors import QuotaFlowError
from quotaflow.extensions import csrf
from quotaflow.http.bodies import too_large
from quotaflow.http.context import request_locale
from quotaflow.http.errors import ApiError, api_error

api_blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@api_blueprint.before_request
def _csrf_for_cookie_sessions() -> None:
    # Token clients cannot be forged by another site; cookie sessions can, so they
    # must send the CSRF token (X-CSRFToken header) like the pages do.
    if (
        request.method in UNSAFE_METHODS
        and current_app.config.get("WTF_CSRF_ENABLED", True)
        and current_user.is_authenticated
        and not g.get("authenticated_by_token")
    ):
        csrf.protect()


@api_blueprint.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return api_error(exc.status, exc.code, exc.message, exc.details)


def caller_locale() -> str:
    """The API caller's language: its Accept-Language, else the account's setting."""
    if request.accept_languages:
        best = request.accept_languages.best_match(current_app.config["LANGUAGES"])
        if best:
            return best
    return request_locale()


@api_blueprint.errorhandler(QuotaFlowError)
def _refused(exc: QuotaFlowError) -> Any:
    """Every refused use case: its kind's status, code, words in the caller's language."""
    return api_error(exc.status, exc.code, exc.localized(caller_locale()), exc.details())


api_blueprint.register_error_handler(RequestEntityTooLarge, too_large)


@api_blueprint.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> Any:
    return api_error(400, "csrf", exc.description)


from quotaflow.api import (  # noqa: E402,F401  (registers the routes)
    admin_views,
    config_views,
    confirm_views,
    emergency_views,
    flow_views,
    letter_views,
    outbox_views,
    page_twin_views,
    plan_views,
    report_views,
    sheet_views,
    spec_views,
    token_views,
    tracking_views,
    views,
    whatif_views,
)
