"""Small facts about the current request that many views ask: language, htmx, errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request
from flask_babel import get_locale

from quotaflow.web.filters import number


def current_locale() -> str:
    """The page's language code ("zh" or "en")."""
    return str(get_locale() or "zh")


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request")


def translated_error(messages: Mapping[str, Any], error: Any) -> str:
    """A service error (``code``, ``params``, ``message``) in the user's language: its
    code's lazy message with numbers formatted, else the service's own English text."""
    params = {k: (number(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)
              for k, v in error.params.items()}
    try:
        return str(messages[error.code]) % params
    except (KeyError, TypeError, ValueError):
        return error.message
