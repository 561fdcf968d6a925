"""The API's one error shape: {"error": {"code", "message", "details"}}, also for what
no view raised: an unknown method (405 with ``Allow``), a body that is not JSON (415),
any other HTTP error under /api/ (Werkzeug's HTML stays for pages)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from quotaflow import messages
from quotaflow.messages import _l


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def response(self) -> Any:
        return api_error(self.status, self.code, self.message, self.details)


def api_error(status: int, code: str, message: str, details: Any = None) -> Any:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    return response


# -- HTTP errors under /api/ that no view raised (routing, methods, media types) ---------

API_PREFIX = "/api/"

HTTP_CODES = messages.register("http", {
    "method_not_allowed": _l("%(method)s is not allowed here; allowed: %(allowed)s."),
    "unsupported_media_type": _l("Send the body as JSON (Content-Type: application/json), "
                                 "not %(content_type)s."),
    "http_error": _l("The request could not be served (HTTP %(status)s)."),
    "internal_error": _l("Something went wrong on the server. Try again later."),
})
_CODE_BY_STATUS = {405: "method_not_allowed", 415: "unsupported_media_type",
                   500: "internal_error"}


def caller_language() -> str:
    """The API caller's language: its Accept-Language, else the page's choice."""
    from quotaflow.http.context import request_locale

    languages = current_app.config.get("LANGUAGES", messages.LANGUAGES)
    best = request.accept_languages.best_match(languages) if request.accept_languages else None
    return best or request_locale()


def unsupported_media_type(content_type: str) -> ApiError:
    """The refusal of a body that is not JSON where the API reads JSON (415)."""
    code = "unsupported_media_type"
    return ApiError(415, code, _words(code, content_type=content_type or "none"),
                    {"content_type": content_type or None, "expected": "application/json"})


def _words(code: str, **params: Any) -> str:
    return messages.text(f"http.{code}", code, params, caller_language())


def api_http_error(exc: HTTPException) -> Any:
    """Any HTTP error under /api/ in the API's format, with its status and headers (the
    ``Allow`` of a 405); pages keep Werkzeug's HTML (or their own handlers)."""
    if not request.path.startswith(API_PREFIX):
        return exc
    status = exc.code or 500
    if status == 413:
        from quotaflow.http.bodies import too_large

        return too_large(exc)
    code = _CODE_BY_STATUS.get(status, "http_error")
    details: dict[str, Any] | None = None
    if code == "method_not_allowed":
        allowed = sorted(getattr(exc, "valid_methods", None) or ())
        message = _words(code, method=request.method, allowed=", ".join(allowed) or "-")
        details = {"method": request.method, "allowed": allowed}
    elif code == "unsupported_media_type":
        return unsupported_media_type(request.mimetype).response()
    else:
        message = _words(code, status=status)
    response = api_error(status, code, message, details)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def init_api_errors(app: Any) -> None:
    app.register_error_handler(HTTPException, api_http_error)
