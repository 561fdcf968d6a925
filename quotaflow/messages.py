"""The one message catalogue: every refusal's words, in zh and en, for pages, API and CLI.

A message is keyed by an error's ``key`` (``"<domain>.<code>"``, see
:mod:`quotaflow.errors`), or by its bare ``code`` for the codes every domain shares.
The English text is the msgid of the zh catalogue (``translations/zh``), marked with
``_l`` so ``scripts/i18n-update`` extracts it; ``tests/test_messages.py`` fails while a
code has no message or a message no Chinese translation.

Rendering needs no Flask: the CLI and the outbox worker use the same words as pages.
Numbers in params read with thousands separators (``47,330,000``), as on every page.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from quotaflow.i18n import TRANSLATIONS_DIR

LANGUAGES = ("zh", "en")


def _l(text: str) -> str:
    """Marks a msgid for extraction; the catalogue translates it when rendered."""
    return text


#: Messages every domain may use under the bare code.
COMMON: dict[str, str] = {
    "not_found": _l("Not found, or outside your scope."),
    "forbidden": _l("Your role does not allow this action."),
    "unauthenticated": _l("Sign in or send an API token."),
    "conflict": _l("This changed meanwhile. Reload and try again."),
    "bad_request": _l("The request could not be read: %(detail)s"),
}

#: Domain messages, registered by the modules that raise them (``register``).
CATALOGUE: dict[str, str] = dict(COMMON)


class Refusal(Protocol):
    code: str

    @property
    def key(self) -> str: ...

    def message_params(self) -> dict[str, Any]: ...


def register(domain: str, messages: dict[str, str]) -> tuple[str, ...]:
    """Add a domain's messages (``code -> English msgid``) to the catalogue; return the
    codes, for the error class's ``CODES``."""
    for code, text in messages.items():
        key = f"{domain}.{code}" if domain else code
        if CATALOGUE.get(key, text) != text:
            raise ValueError(f"message {key!r} registered twice with different texts")
        CATALOGUE[key] = text
    return tuple(messages)


@cache
def translations(locale: str) -> NullTranslations:
    if locale == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [locale])


def format_param(value: Any, locale: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if float(value).is_integer():
        return format_decimal(int(value), format="#,##0", locale="en")
    return format_decimal(value, format="#,##0.####", locale="en")


def message_for(key: str, code: str) -> str | None:
    return CATALOGUE.get(key) or CATALOGUE.get(code)


def render(error: Refusal, locale: str) -> str:
    """The error's message in ``locale``; its code when the catalogue has no entry."""
    return text(error.key, error.code, error.message_params(), locale)


def text(key: str, code: str, values: Mapping[str, Any], locale: str) -> str:
    """The message ``key`` (else the bare ``code``) in ``locale`` with ``values`` filled in."""
    msgid = message_for(key, code)
    if msgid is None:
        return code
    params = {k: format_param(v, locale) for k, v in values.items()}
    translated = translations(locale).gettext(msgid)
    for candidate in (translated, msgid):
        try:
            return candidate % params if params or "%(" in candidate else candidate
        except (KeyError, TypeError, ValueError):
            continue
    return msgid
