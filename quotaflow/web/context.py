"""Small facts about the current request that many views ask: language, htmx."""

from __future__ import annotations

from flask import request
from flask_babel import get_locale


def current_locale() -> str:
    """The page's language code ("zh" or "en")."""
    return str(get_locale() or "zh")


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request")
