"""Form use cases: keep the data-collection form in step with the factor model,
list the units a user collects inputs for, and save a submission.

The inputs form is a spec version (kind ``form``, key ``inputs``) generated from the
active factor model; a new version is written only when the generated content
differs from the latest one, so nobody has to touch it when a factor is added.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.forms import FieldError
from quotaflow.forms.generated import INPUTS_FORM_KEY, inputs_form_spec
from quotaflow.messages import _l
from quotaflow.services import audit, specs
from quotaflow.services.access import Principal
from quotaflow.services.org import SavedInputs, save_inputs
from quotaflow.services.uow import unit_of_work
from quotaflow.store.models import (
    AttributeValue,
    FormSubmission,
    OrgLevel,
    OrgUnit,
    Period,
    SpecVersion,
    User,
)

FORM_KIND = "form"
MODEL_KEY = "default"
# Levels (org_levels.key) where each writing role collects inputs; None: every level.
COLLECT_LEVELS: dict[str, tuple[str, ...] | None] = {
    "admin": None,
    "hrbp": None,
    "region_head": ("region", "team"),
    "team_lead": ("team",),
}

#: The words of a form field's check (:class:`quotaflow.forms.FieldError`), by code; a
#: type or format check reads by what it expected ("type.integer", "format.date").
FIELD_DOMAIN = "field"
FIELD_CODES = messages.register(FIELD_DOMAIN, {
    "required": _l("This field is required."),
    "minimum": _l("Enter %(limit)s or more."),
    "maximum": _l("Enter %(limit)s or less."),
    "exclusiveMinimum": _l("Enter more than %(limit)s."),
    "exclusiveMaximum": _l("Enter less than %(limit)s."),
    "multipleOf": _l("Enter a multiple of %(limit)s."),
    "enum": _l("Choose one of: %(options)s."),
    "const": _l("The only accepted value is %(value)s."),
    "minLength": _l("Enter at least %(limit)s characters."),
    "maxLength": _l("Enter at most %(limit)s characters."),
    "pattern": _l("This does not have the expected form."),
    "minItems": _l("Add at least %(limit)s rows."),
    "maxItems": _l("Enter at most %(limit)s rows."),
    "uniqueItems": _l("Rows must not repeat."),
    "format": _l("Enter a valid %(format)s."),
    "readonly": _l("Your role may not change this field."),
    "unknown_field": _l("This form has no field %(name)s."),
    "invalid": _l("This value is not accepted."),
    "type.number": _l("Enter a number."),
    "type.integer": _l("Enter a whole number."),
    "type.boolean": _l("Choose yes or no."),
    "type.string": _l("Enter text."),
    "type": _l("Enter a value of the right type."),
    "format.date": _l("Enter a date as YYYY-MM-DD."),
})


def field_message(error: FieldError, locale: str) -> str:
    """A form field error in ``locale``; a code without words reads as "invalid"."""
    code = error.code
    if code in ("type", "format"):
        specific = f"{code}.{error.params.get('expected' if code == 'type' else 'format')}"
        code = specific if specific in FIELD_CODES else code
    if code not in FIELD_CODES:
        code = "invalid"
    return messages.text(f"{FIELD_DOMAIN}.{code}", code, error.params, locale)


@dataclass(frozen=True)
class UnitProgress:
    """How complete one unit's inputs are for the period."""

    unit: OrgUnit
    filled: int  # form fields with a stored value
    total: int
    missing_required: int

    @property
    def complete(self) -> bool:
        return self.missing_required == 0


def latest_form(session: Session) -> SpecVersion | None:
    return session.scalar(
        select(SpecVersion).where(SpecVersion.kind == FORM_KIND, SpecVersion.key == INPUTS_FORM_KEY)
        .order_by(SpecVersion.version.desc()).limit(1)
    )


def ensure_inputs_form(session: Session) -> SpecVersion | None:
    """The active inputs form, regenerated from the active factor model if it changed.

    Commits when it writes a version. None when no factor model is active.
    """
    model = specs.active_version(session, specs.FACTOR_MODEL_KIND, MODEL_KEY)
    if model is None:
        return None
    content = inputs_form_spec(model.content)
    digest = specs.content_hash(content)
    active = specs.active_version(session, FORM_KIND, INPUTS_FORM_KEY)
    if active is not None and active.content_hash == digest:
        return active
    try:
        with unit_of_work(session):
            latest = latest_form(session)
            if latest is None or latest.content_hash != digest:
                latest = specs.create_version(
                    session, FORM_KIND, INPUTS_FORM_KEY, content, None,
                    note=f"generated from {model.kind}/{model.key} v{model.version}")
            specs.activate(session, latest, None)
    except IntegrityError:
        # Another request generated the same version at the same moment: use theirs.
        return specs.active_version(session, FORM_KIND, INPUTS_FORM_KEY)
    return latest


def _collect_grants(principal: Principal) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(g.unit_path, COLLECT_LEVELS[g.role]) for g in principal.grants if g.role in COLLECT_LEVELS]


def can_collect(principal: Principal, unit: OrgUnit) -> bool:
    """Whether the user fills in inputs for ``unit`` (in write scope, at a collected level)."""
    levels = [COLLECT_LEVELS[role] for role in principal.roles_at(unit.path)
              if role in COLLECT_LEVELS]
    return any(keys is None or unit.level.key in keys for keys in levels)


def unit_roles(principal: Principal, unit: OrgUnit) -> frozenset[str]:
    """The roles the user holds over ``unit`` (a form's editable_by is checked against them)."""
    return principal.roles_at(unit.path)


def collect_progress(session: Session, principal: Principal, period: Period,
                     form_spec: Mapping[str, Any]) -> list[UnitProgress]:
    """The units the user collects inputs for, with how many form fields each has filled."""
    grants = _collect_grants(principal)
    if not grants:
        return []
    scope = or_(*(
        and_(OrgUnit.path.startswith(path, autoescape=True),
             OrgLevel.key.in_(levels) if levels is not None else true())
        for path, levels in grants
    ))
    schema = form_spec["schema"]
    names = list(schema["properties"])
    required = [n for n in schema.get("required", []) if n in names]
    counts = (
        select(
            AttributeValue.unit_id.label("unit_id"),
            func.count().label("filled"),
            func.sum(case((AttributeValue.name.in_(required), 1), else_=0)).label("req"),
        )
        .where(AttributeValue.period_id == period.id, AttributeValue.name.in_(names))
        .group_by(AttributeValue.unit_id)
        .subquery()
    )
    rows = session.execute(
        select(OrgUnit, func.coalesce(counts.c.filled, 0), func.coalesce(counts.c.req, 0))
        .join(OrgLevel, OrgLevel.depth == OrgUnit.depth)
        .outerjoin(counts, counts.c.unit_id == OrgUnit.id)
        .where(scope, OrgUnit.active.is_(True))
        .order_by(OrgUnit.depth, OrgUnit.code)
    ).all()
    return [UnitProgress(unit, int(filled), len(names), len(required) - int(req))
            for unit, filled, req in rows]


def current_inputs(session: Session, form_spec: Mapping[str, Any], unit: OrgUnit,
                   period: Period) -> dict[str, Any]:
    """The unit's stored inputs as the form's typed values (ints, bools, floats)."""
    props = form_spec["schema"]["properties"]
    stored = session.execute(
        select(AttributeValue.name, AttributeValue.value).where(
            AttributeValue.unit_id == unit.id, AttributeValue.period_id == period.id,
            AttributeValue.name.in_(list(props)))
    ).all()
    return {name: _typed(props[name].get("type"), value) for name, value in stored}


def _typed(kind: Any, value: float) -> Any:
    if kind == "boolean":
        return value != 0
    if kind == "integer" and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return value


def _stored(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return float(value)


def submit_inputs(
    session: Session,
    actor: User,
    unit: OrgUnit,
    period: Period,
    form_version: SpecVersion,
    data: Mapping[str, Any],
    remote_addr: str | None = None,
) -> SavedInputs:
    """Save validated form data as the unit's inputs plus a submission pinned to the
    form version, audited, in one transaction (a field left empty clears its input).
    Once the period's plan is published the inputs may await approval instead
    (:func:`quotaflow.services.org.save_inputs` decides, as for every write)."""
    props = form_version.content["schema"]["properties"]
    values = {name: _stored(data.get(name)) for name in props}
    with unit_of_work(session):
        submission = FormSubmission(
            form_version_id=form_version.id, unit_id=unit.id, period_id=period.id,
            data=dict(data), submitted_by_id=actor.id,
        )
        session.add(submission)
        session.flush()
        audit.record(session, actor, "submit_form", "form_submission", str(submission.id),
                     after={"form": f"{form_version.key}@v{form_version.version}",
                            "unit": unit.code, "period": period.code},
                     remote_addr=remote_addr)
        # The org service's own logic for attribute values (a nested unit of work).
        saved = save_inputs(session, actor, unit, period, values, remote_addr, source="form")
    return saved
