"""Where the browser may be sent after sign-in or a language switch: only a path on this
site, so neither can be turned into an open redirect (nor a header injection)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MAX_NEXT = 2048


def _is_local_path(path: str) -> bool:
    """A path beginning with a single "/", with no backslash and no control character."""
    if not path.startswith("/") or path.startswith(("//", "/\\")):
        return False
    if "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return False
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a same-origin absolute path, else ``default``.

    Refused: anything not beginning with a single "/", scheme-relative ("//host") and
    scheme forms, backslashes (browsers read them as "/"), tabs, newlines and other control
    characters (browsers drop tab and newline, so "/\\t/evil" would become "//evil"), also
    once percent-decoded ("/%09/evil", "/%2F/evil")."""
    if not isinstance(target, str) or not target or len(target) > MAX_NEXT:
        return default
    decoded = unquote(target)
    if _is_local_path(target) and _is_local_path(decoded):
        return target
    return default
