"""The one declaration of flow handlers, in the spirit of Frappe's ``hooks.py``.

Every handler a flow can reach is named here once, as ``"module:function"``, and imported
only when first used. Nothing registers itself by being imported: a flow spec naming an
action is checked against :data:`FLOW_ACTIONS` when it is saved (with the JSON pointer of
the node), and :func:`check` (run by ``create_app``) imports every declared handler so a
typo or a missing module stops the start-up instead of an approval months later.

- :data:`FLOW_ACTIONS`: action node name -> ``handler(session, instance)``, run in the
  step's transaction when an instance passes the node (raising refuses the step);
- :data:`FLOW_DATA_CHECKS`: subject type -> checks ``(session, instance, data)`` run
  when a submit, resubmit or edit changed the form data of an instance about that subject,
  before the step is written (raising refuses the step; the policy is enforced on the
  server's values, whatever the client sent);
- :data:`FLOW_END_HANDLERS`: subject type -> handlers ``(session, instance)`` called when
  an instance about that subject ends (approved, rejected or withdrawn).

Spec kinds are declared in :mod:`quotaflow.services.spec_kinds` (:func:`check` also loads
each kind's JSON Schema, so a schema missing from an installation stops the start-up);
delivery channels in :mod:`quotaflow.channels` / :mod:`quotaflow.plugins`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

FLOW_ACTIONS: dict[str, str] = {
    # An approved appeal's target is applied (confirmation).
    "apply_adjustment": "quotaflow.services.confirmation:apply_adjustment",
    # The draft plan named by the flow's plan_id field is published.
    "publish": "quotaflow.services.flow_actions:publish",
    # The flow's data goes to HR through the outbox ("hr.sync").
    "sync_hr": "quotaflow.services.flow_actions:sync_hr",
    # An approved emergency recompute is published (emergency).
    "publish_recompute": "quotaflow.services.emergency:publish_recompute",
}

FLOW_DATA_CHECKS: dict[str, tuple[str, ...]] = {
    # A submitted, resubmitted or edited appeal stays within the confirmation policy.
    "appeal": ("quotaflow.services.confirmation:check_appeal_data",),
}

FLOW_END_HANDLERS: dict[str, tuple[str, ...]] = {
    "appeal": ("quotaflow.services.confirmation:on_appeal_end",),
    "emergency_recompute": ("quotaflow.services.emergency:on_recompute_end",),
    # An approved input change request is applied (field check again, audited).
    "input_change": ("quotaflow.services.input_governance:on_input_change_end",),
}

Handler = Callable[..., Any]


class RegistryError(RuntimeError):
    """A declared handler does not import or is not callable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("declared handlers that cannot be used (quotaflow/services/"
                         "registry.py):\n  " + "\n  ".join(problems))


_loaded: dict[str, Handler] = {}


def load(ref: str) -> Handler:
    """Import ``"package.module:function"`` (cached); raises RegistryError."""
    found = _loaded.get(ref)
    if found is not None:
        return found
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise RegistryError([f"{ref!r} is not of the form 'package.module:function'"])
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # an import error of any kind is a broken declaration
        raise RegistryError([f"{ref}: module {module_name!r} does not import "
                             f"({type(exc).__name__}: {exc})"]) from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise RegistryError([f"{ref}: {module_name} has no function {attr!r}"])
    _loaded[ref] = handler
    return handler


def action_names() -> frozenset[str]:
    """The action names a flow spec may use."""
    return frozenset(FLOW_ACTIONS)


def flow_action(name: str) -> Handler | None:
    """The handler of action ``name``, or None when no such action is declared."""
    ref = FLOW_ACTIONS.get(name)
    return load(ref) if ref is not None else None


def end_handlers(subject_type: str) -> list[Handler]:
    return [load(ref) for ref in FLOW_END_HANDLERS.get(subject_type, ())]


def data_checks(subject_type: str) -> list[Handler]:
    return [load(ref) for ref in FLOW_DATA_CHECKS.get(subject_type, ())]


def _refs() -> Iterable[tuple[str, str]]:
    for name, ref in FLOW_ACTIONS.items():
        yield f"flow action {name!r}", ref
    for subject, refs in FLOW_DATA_CHECKS.items():
        for ref in refs:
            yield f"data check of {subject!r}", ref
    for subject, refs in FLOW_END_HANDLERS.items():
        for ref in refs:
            yield f"end handler of {subject!r}", ref


def check() -> None:
    """Import every declared handler and load every spec kind's schema; raises
    RegistryError listing each one that fails."""
    from quotaflow.rules.specs import load_schema
    from quotaflow.services import spec_kinds

    problems = []
    for what, ref in _refs():
        try:
            load(ref)
        except RegistryError as exc:
            problems.extend(f"{what}: {p}" for p in exc.problems)
    for kind in spec_kinds.kinds():
        try:
            load_schema(kind.schema)
        except (OSError, ValueError) as exc:
            problems.append(f"spec kind {kind.name!r}: schema {kind.schema!r} does not load "
                            f"({type(exc).__name__}: {exc})")
    if problems:
        raise RegistryError(problems)
