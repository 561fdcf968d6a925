"""Every code a service can raise has words in both languages, and its kind.

The service error classes are all :class:`quotaflow.errors.QuotaFlowError`; each declares
its ``CODES`` (what it registered in the one catalogue). The source is read too: a class
constructed with a literal code it did not declare fails here before a page shows a bare
code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import quotaflow
import quotaflow.services
from quotaflow import messages
from quotaflow.errors import KINDS, NotFound, QuotaFlowError, code_kinds
from quotaflow.i18n import compile_catalogs
from quotaflow.rules import SpecError

ROOT = Path(quotaflow.__file__).parent
#: Private signals (``_Concurrent``) never leave their module; a spec's own validation
#: errors (``SpecError``) carry their issues, shown issue by issue.
#: Operator faults (a missing font, unreadable channel settings, seeding a full database, a
#: declared flow handler that does not import):
#: their English text is for whoever installs QuotaFlow, not a refusal a person reads.
NOT_REFUSALS = {"SeedError", "FontMissingError", "ChannelConfigError", "RegistryError"}


def _service_modules() -> list[object]:
    return [importlib.import_module(m.name)
            for m in pkgutil.iter_modules(quotaflow.services.__path__, "quotaflow.services.")]


def _error_classes() -> dict[str, type[QuotaFlowError]]:
    _service_modules()
    found: dict[str, type[QuotaFlowError]] = {}
    todo = list(QuotaFlowError.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("quotaflow.") and cls.CODES:
            found[cls.__name__] = cls
    return found


def test_every_service_error_class_is_a_quotaflow_error():
    strays = [f"{module.__name__}.{name}"
              for module in _service_modules()
              for name, cls in vars(module).items()
              if inspect.isclass(cls) and cls.__module__ == module.__name__
              and issubclass(cls, Exception) and not issubclass(cls, QuotaFlowError)
              and name not in NOT_REFUSALS and not name.startswith("_")
              and not issubclass(cls, SpecError)]
    assert strays == []


def test_every_declared_code_has_a_message_in_both_languages():
    compile_catalogs()
    messages.translations.cache_clear()
    zh = messages.translations("zh")
    missing, untranslated, bad_kinds = [], [], []
    for name, cls in _error_classes().items():
        for code in cls.CODES:
            text = messages.message_for(f"{cls.domain}.{code}", code)
            if text is None:
                missing.append(f"{name}:{code}")
            elif zh.gettext(text) == text:
                untranslated.append(f"{name}:{code}")
        bad_kinds += [f"{name}:{code}" for code in cls.CODE_KINDS if code not in cls.CODES]
    assert missing == [] and untranslated == [] and bad_kinds == []


def _literal_codes() -> list[tuple[str, str, str]]:
    """(class name, code, place) of every ``SomeError("code", ...)`` in quotaflow/."""
    names = set(_error_classes())
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if name in names and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((name, first.value, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return found


def test_every_code_raised_in_the_source_is_declared():
    classes = _error_classes()
    raised = _literal_codes()
    assert len(raised) > 100  # the scan sees the services' refusals
    undeclared = [f"{place} {name}({code!r})" for name, code, place in raised
                  if code not in classes[name].CODES]
    assert undeclared == []


def test_a_code_may_have_its_own_kind():
    from quotaflow.services.confirmation import ConfirmationError

    assert ConfirmationError("required", "/requested", field="requested").status == 422
    assert ConfirmationError("not_found", id=1).status == 404
    assert ConfirmationError("not_yours", unit="EAST").status == 403
    assert ConfirmationError("stale", unit="EAST").status == 409
    assert NotFound("not_found").kind == "not_found"  # a class's own kind stays
    with pytest.raises(ValueError, match="teapot"):
        code_kinds(brewing="teapot")
    assert set(KINDS) == {"not_found", "forbidden", "conflict", "invalid"}


def test_a_refusal_reads_in_both_languages_with_its_params():
    from quotaflow.services.confirmation import ConfirmationError

    error = ConfirmationError("not_multiple", "/requested", field="requested", unit=10000)
    assert error.message == "Requested target: enter a multiple of 10,000 yuan."
    assert "10,000" in error.localized("zh") and error.localized("zh") != error.message
    assert error.details() == {"pointer": "/requested", "field": "requested", "unit": 10000}
