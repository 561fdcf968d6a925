"""The one error type of the shell: a refused use case, its code, params and place.

Every use case in ``services/`` refuses with a :class:`QuotaFlowError` (or a subclass),
never with a bare string: pages, the API and the CLI turn it into words through the one
message catalogue (:mod:`quotaflow.messages`) in the reader's language, and the API into
its status code and ``{"error": {"code", "message", "details"}}``.

The kind says how the refusal reads everywhere:
``not_found`` (404: absent, or outside the reader's scope, which looks the same),
``forbidden`` (403), ``conflict`` (409: the state moved, e.g. someone decided first) and
``invalid`` (422: the input breaks a rule; ``pointer`` says where, as a JSON pointer).

This module imports neither Flask nor SQLAlchemy, so any layer may raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

KINDS: dict[str, int] = {"not_found": 404, "forbidden": 403, "conflict": 409, "invalid": 422}


def code_kinds(**kinds: str) -> Mapping[str, str]:
    """A class's ``CODE_KINDS``: the codes whose kind is not the class's own."""
    unknown = {code: kind for code, kind in kinds.items() if kind not in KINDS}
    if unknown:
        raise ValueError(f"unknown error kinds: {unknown}")
    return MappingProxyType(kinds)


class QuotaFlowError(Exception):
    """A refused action: a stable ``code``, its ``params`` and where (a JSON pointer).

    ``domain`` names the message family in the catalogue (``confirmation``, ``plan``,
    ...): the message key is ``"<domain>.<code>"``, falling back to the bare code.
    ``CODES`` are the codes the class raises (what ``messages.register`` returns, so
    every one has a message); ``CODE_KINDS`` gives a code a kind other than the class's
    (a ``not_found`` among a class of ``invalid`` refusals, a race that is a ``conflict``).
    """

    domain: ClassVar[str] = ""
    kind: str = "invalid"
    CODES: ClassVar[tuple[str, ...]] = ()
    CODE_KINDS: ClassVar[Mapping[str, str]] = MappingProxyType({})

    def __init__(self, code: str, pointer: str = "", /, **params: Any) -> None:
        self.code, self.pointer, self.params = code, pointer, params
        self.kind = self.CODE_KINDS.get(code, type(self).kind)
        super().__init__(self.message)

    @property
    def status(self) -> int:
        return KINDS[self.kind]

    @property
    def key(self) -> str:
        return f"{self.domain}.{self.code}" if self.domain else self.code

    @property
    def message(self) -> str:
        """The message in English (logs, CLI without a locale, exception text)."""
        from quotaflow.messages import render

        return render(self, "en")

    def localized(self, locale: str) -> str:
        from quotaflow.messages import render

        return render(self, locale)

    def message_params(self) -> dict[str, Any]:
        """The values the message's placeholders read (``params`` unless a class adds some)."""
        return self.params

    def details(self) -> dict[str, Any]:
        return {"pointer": self.pointer, **self.params}


class NotFound(QuotaFlowError):
    kind = "not_found"


class Forbidden(QuotaFlowError):
    kind = "forbidden"


class Conflict(QuotaFlowError):
    kind = "conflict"


class Invalid(QuotaFlowError):
    kind = "invalid"
