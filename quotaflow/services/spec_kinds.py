"""The registry of spec kinds: each kind's JSON Schema and its semantic validator.

A kind names a JSON Schema in ``quotaflow/schemas/`` and a validator that returns every
:class:`SpecIssue` of a document (JSON pointer, code, column). Validators that need
the factor model their spec refers to (scenario presets, risk rules) get it through a
``models`` lookup, so the caller decides which model counts: the active one, a draft
about to be activated, or the one in a bundle being imported. Later features add
their kinds with :func:`register`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quotaflow.rules import (
    FactorModel,
    SpecError,
    SpecIssue,
    load_model,
    load_presets,
    load_risk_rules,
)

FACTOR_MODEL = "factor_model"
SCENARIO_PRESETS = "scenario_presets"
RISK_RULES = "risk_rules"
FORM = "form"
DEFAULT_MODEL_KEY = "default"
#: Keys appear in URLs and file names: lower-case letters, digits, "_", "-" and ".".
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")

#: Returns the factor model a spec with this key is checked against (or None).
ModelLookup = Callable[[str], FactorModel | None]
Validator = Callable[[Any, ModelLookup, str], list[SpecIssue]]


@dataclass(frozen=True)
class SpecKind:
    """A kind of spec: its name, schema file and validator, and what it depends on."""

    name: str
    schema: str  # quotaflow/schemas/<schema>.schema.json
    validate: Validator
    depends_on: tuple[str, ...] = ()
    order: int = 100  # import/validation order: dependencies first


def model_key_for(key: str, available: Callable[[str], bool]) -> str:
    """The factor model a dependent spec uses: the model with the same key, else "default"."""
    return key if available(key) else DEFAULT_MODEL_KEY


def _not_an_object(doc: Any) -> list[SpecIssue]:
    if isinstance(doc, dict):
        return []
    return [SpecIssue("", f"a spec is a JSON object, not {type(doc).__name__}", "not_object")]


def _validate_factor_model(doc: Any, _models: ModelLookup, _key: str) -> list[SpecIssue]:
    from quotaflow.plugins import expression_functions

    issues = _not_an_object(doc)
    if issues:
        return issues
    try:
        load_model(doc, functions=expression_functions())
    except SpecError as exc:
        return list(exc.issues)
    return []


def _needs_model(loader: Callable[[Any, FactorModel], Any]) -> Validator:
    def validate(doc: Any, models: ModelLookup, key: str) -> list[SpecIssue]:
        issues = _not_an_object(doc)
        if issues:
            return issues
        model = models(key)
        if model is None:
            return [SpecIssue("", "there is no active factor model to check this spec "
                                  "against; activate a factor model first", "no_active_model")]
        try:
            loader(doc, model)
        except SpecError as exc:
            return list(exc.issues)
        return []

    return validate


def _validate_form(doc: Any, _models: ModelLookup, _key: str) -> list[SpecIssue]:
    issues = _not_an_object(doc)
    if issues:
        return issues
    try:
        # Imported here: the form engine lives in quotaflow.forms and may be absent.
        from quotaflow.forms.spec import validate_form_spec
    except ImportError:
        return [SpecIssue("", "form specs cannot be checked: the form engine "
                              "(quotaflow.forms.spec) is not installed", "unavailable")]
    return list(validate_form_spec(doc))


_KINDS: dict[str, SpecKind] = {}


def register(kind: SpecKind) -> None:
    """Add (or replace) a spec kind."""
    _KINDS[kind.name] = kind


register(SpecKind(FACTOR_MODEL, "factor-model", _validate_factor_model, order=10))
register(SpecKind(SCENARIO_PRESETS, "scenario-presets", _needs_model(load_presets),
                  depends_on=(FACTOR_MODEL,), order=20))
register(SpecKind(RISK_RULES, "risk-rules", _needs_model(load_risk_rules),
                  depends_on=(FACTOR_MODEL,), order=20))
register(SpecKind(FORM, "form", _validate_form, order=30))


def _loader_validator(load: Callable[[dict[str, Any]], Any]) -> Validator:
    """A validator from a pure loader that raises SpecError (issues carry JSON pointers)."""

    def validate(doc: Any, _models: ModelLookup, _key: str) -> list[SpecIssue]:
        issues = _not_an_object(doc)
        if issues:
            return issues
        try:
            load(doc)
        except SpecError as exc:
            return list(exc.issues)
        return []

    return validate


def _load_flow(doc: dict[str, Any]) -> Any:
    """An approval flow: schema, graph, conditions, and action names the product knows."""
    from quotaflow.services.flows import validate_spec

    return validate_spec(doc)


FLOW = "flow"
register(SpecKind(FLOW, "flow", _loader_validator(_load_flow), order=30))


def _validate_notification_routes(doc: Any, models: ModelLookup, key: str) -> list[SpecIssue]:
    from quotaflow.services.outbox import validate_routes_spec

    return validate_routes_spec(doc, models, key)


NOTIFICATION_ROUTES = "notification_routes"
register(SpecKind(NOTIFICATION_ROUTES, "notification-routes", _validate_notification_routes,
                  order=40))


def _validate_confirmation_policy(doc: Any, _models: ModelLookup, _key: str) -> list[SpecIssue]:
    from quotaflow.rules.specs import schema_issues

    return _not_an_object(doc) or schema_issues("confirmation-policy", doc)


CONFIRMATION_POLICY = "confirmation_policy"
register(SpecKind(CONFIRMATION_POLICY, "confirmation-policy", _validate_confirmation_policy,
                  order=40))


def _load_pacing(doc: dict[str, Any]) -> Any:
    import numpy as np

    from quotaflow.rules.pacing import DEFAULT_WEEKS, load_pacing_curve

    weeks = doc.get("weeks", DEFAULT_WEEKS)
    # A seasonal curve is built from the weekly history when used; the spec itself is
    # checked with a flat stand-in of the right shape.
    shape = (weeks if isinstance(weeks, int) and 1 <= weeks <= 53 else DEFAULT_WEEKS, 1)
    return load_pacing_curve(doc, history=np.ones(shape))


def _load_alert_rules(doc: dict[str, Any]) -> Any:
    from quotaflow.plugins import expression_functions
    from quotaflow.rules.alerts import load_alert_rules

    return load_alert_rules(doc, functions=expression_functions())


def _load_remedies(doc: dict[str, Any]) -> Any:
    from quotaflow.plugins import expression_functions
    from quotaflow.rules.remedies import load_remedies

    return load_remedies(doc, functions=expression_functions())


PACING_CURVE = "pacing_curve"
ALERT_RULES = "alert_rules"
REMEDIES = "remedies"
register(SpecKind(PACING_CURVE, "pacing-curve", _loader_validator(_load_pacing), order=50))
register(SpecKind(ALERT_RULES, "alert-rules", _loader_validator(_load_alert_rules), order=50))
register(SpecKind(REMEDIES, "remedies", _loader_validator(_load_remedies), order=50))


def _load_whatif_policy(doc: Any, model: FactorModel) -> Any:
    from quotaflow.services.whatif import load_policy

    return load_policy(doc, model)


WHATIF_POLICY = "whatif_policy"
register(SpecKind(WHATIF_POLICY, "whatif-policy", _needs_model(_load_whatif_policy),
                  depends_on=(FACTOR_MODEL,), order=20))


def kinds() -> list[SpecKind]:
    """Every registered kind, dependencies first."""
    return sorted(_KINDS.values(), key=lambda k: (k.order, k.name))


def get(name: str) -> SpecKind | None:
    return _KINDS.get(name)


def dependents(name: str) -> list[SpecKind]:
    """The kinds whose specs must be re-checked when a spec of kind ``name`` changes."""
    return [k for k in kinds() if name in k.depends_on]


def valid_key(key: str) -> bool:
    return bool(KEY_PATTERN.match(key))
