"""Request bodies read with limits, for pages and API alike: JSON nested too deeply,
invalid JSON and invalid UTF-8 are a 400, never a 500. Under /api/ they answer in the
API's error format (``invalid_json``), also where a view reads its body "silently", a
body of another Content-Type where JSON is read is a 415 (``unsupported_media_type``),
and a body over MAX_CONTENT_LENGTH is a 413 in that format (``too_large``)."""

from __future__ import annotations

from typing import Any

from flask import Request, current_app
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge

from quotaflow import safejson
from quotaflow.http.errors import ApiError, api_error, unsupported_media_type

API_PREFIX = "/api/"


class LimitedJSONProvider(DefaultJSONProvider):
    """``loads`` refuses nesting deeper than ``safejson.MAX_DEPTH`` (a ValueError)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return safejson.loads(s, **kwargs)


class LimitedRequest(Request):
    def get_json(self, force: bool = False, silent: bool = False,
                 cache: bool = True) -> Any:
        # An API body that is declared JSON but cannot be read is refused, never taken
        # for "no body" (which a view may treat as something else).
        if silent and self.path.startswith(API_PREFIX) and (force or self.is_json):
            silent = False
        # A body of another type (a form, text) where the API reads JSON is a 415 in the
        # API's format; no body at all stays "no body" for views with optional bodies.
        # (content_length, not get_data: reading the stream here would empty a form's.)
        if (self.path.startswith(API_PREFIX) and not force and not self.is_json
                and (self.content_length or 0) > 0):
            raise unsupported_media_type(self.mimetype)
        return super().get_json(force=force, silent=silent, cache=cache)

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None and self.path.startswith(API_PREFIX):
            raise unsupported_media_type(self.mimetype)
        if e is not None and self.path.startswith(API_PREFIX):
            if isinstance(e, safejson.JsonTooDeep):
                raise ApiError(400, "invalid_json", str(e), {"pointer": "", "max_depth": e.max_depth})
            if isinstance(e, UnicodeDecodeError):
                raise ApiError(400, "invalid_json", "the body is not UTF-8 text", {"pointer": ""})
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {e}",
                           {"pointer": ""})  # the whole body
        return super().on_json_loading_failed(e)


def too_large(_exc: RequestEntityTooLarge) -> Any:
    """A body over MAX_CONTENT_LENGTH under /api/: 413 in the API's format."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return api_error(413, "too_large", "the request body is too large",
                     {"max_bytes": limit} if limit else None)


def init_bodies(app: Any) -> None:
    app.request_class = LimitedRequest
    app.json = LimitedJSONProvider(app)
