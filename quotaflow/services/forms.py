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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound, QuotaFlowError, code_kinds
from quotaflow.forms import FieldError, coerce_and_validate, form_fields
from quotaflow.forms.generated import INPUTS_FORM_KEY, inputs_form_spec
from quotaflow.messages import _l
from quotaflow.services import audit, specs
from quotaflow.services.access import Principal
from quotaflow.services.auth import actor
from quotaflow.services.org import SavedInputs, save_inputs
from quotaflow.services.uow import Context, unit_of_work, use_case
from quotaflow.store import queries, spec_queries
from quotaflow.store.models import (
    FormSubmission,
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
    return spec_queries.latest(session, FORM_KIND, INPUTS_FORM_KEY)


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


def collect_progress(ctx: Context, principal: Principal, period: Period,
                     form_spec: Mapping[str, Any]) -> list[UnitProgress]:
    """The units the user collects inputs for, with how many form fields each has filled."""
    grants = _collect_grants(principal)
    if not grants:
        return []
    schema = form_spec["schema"]
    names = list(schema["properties"])
    required = [n for n in schema.get("required", []) if n in names]
    rows = queries.filled_counts(ctx.session, period.id, grants, names, required)
    return [UnitProgress(unit, int(filled), len(names), len(required) - int(req))
            for unit, filled, req in rows]


def current_inputs(ctx: Context, form_spec: Mapping[str, Any], unit: OrgUnit,
                   period: Period) -> dict[str, Any]:
    """The unit's stored inputs as the form's typed values (ints, bools, floats)."""
    props = form_spec["schema"]["properties"]
    stored = queries.unit_attributes(ctx.session, unit.id, period.id)
    return {name: _typed(props[name].get("type"), value) for name, value in stored.items()
            if name in props}


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


@dataclass(frozen=True)
class SubmittedInputs:
    """A saved form: its submission (pinned to the form version) and what the write of
    its values did (applied, or awaiting approval in an input change request)."""

    submission: FormSubmission
    saved: SavedInputs

    @property
    def pending(self) -> bool:
        return self.saved.pending


def submit_inputs(
    session: Session,
    actor: User,
    unit: OrgUnit,
    period: Period,
    form_version: SpecVersion,
    data: Mapping[str, Any],
    remote_addr: str | None = None,
) -> SubmittedInputs:
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
    return SubmittedInputs(submission, saved)


@dataclass(frozen=True)
class CollectList:
    """The collect page's list: the period, the active inputs form (None when no
    factor model is active) and the units the principal fills in, with their progress."""

    period: Period
    version: SpecVersion | None
    progress: list[UnitProgress]


def collect_list(ctx: Context, period: Period) -> CollectList:
    """The units the principal collects inputs for in ``period`` (pages and API)."""
    version = ensure_inputs_form(ctx.session)
    progress = ([] if version is None or ctx.principal is None else
                collect_progress(ctx, ctx.principal, period, version.content))
    return CollectList(period, version, progress)


# -- one unit's form, filled in (the collect page and its API twin) ----------------------


class FormRefused(QuotaFlowError):
    """A filled-in inputs form that is not saved: filled against an older form version
    (a conflict: the fields may have changed), or with values the form does not accept
    (``field_errors``: JSON pointer -> :class:`FieldError`)."""

    domain = "collect"
    CODE_KINDS = code_kinds(stale_form="conflict")
    CODES = messages.register(domain, {
        "stale_form": _l("The form changed (now version %(current)s) since you opened version "
                         "%(version)s. Reload it and enter your values again."),
        "invalid_form": _l("Correct the %(count)s marked fields; nothing was saved."),
    })

    def __init__(self, code: str, pointer: str = "", /,
                 field_errors: Mapping[str, FieldError] | None = None, **params: Any) -> None:
        self.field_errors = dict(field_errors or {})
        super().__init__(code, pointer, **params)


@dataclass(frozen=True)
class CheckedForm:
    """A unit's form as filled in: the pinned version, the typed data and its errors."""

    unit: OrgUnit
    period: Period
    version: SpecVersion
    data: dict[str, Any]
    errors: dict[str, FieldError]


def field_names(form_spec: Mapping[str, Any]) -> set[str]:
    """The names a filled-in form may carry (a field, or a row cell as ``rows.0.cell``)."""
    return {fs.path for fs in form_fields(form_spec)}


def collected_form(ctx: Context, unit: OrgUnit) -> SpecVersion:
    """The inputs form ``unit`` is filled in with, if the principal collects its inputs:
    refused outside their write scope (403), NotFound at a level they do not collect."""
    principal = ctx.principal
    if principal is None or not principal.can("unit.write", unit.path):
        raise Forbidden("forbidden")
    if not can_collect(principal, unit):
        raise NotFound("not_found")  # in scope, but not a level this user collects inputs for
    version = ensure_inputs_form(ctx.session)
    if version is None:
        raise NotFound("not_found")
    return version


def check_unit_form(ctx: Context, unit: OrgUnit, period: Period, form_version: int | None,
                    items: Mapping[str, Any]) -> CheckedForm:
    """``items`` (submitted text or JSON values by field name, for ``period``) checked against the form
    version they were filled in against, which must still be the active one (else a
    Conflict: a field may have been added, removed or re-ranged since)."""
    version = collected_form(ctx, unit)
    if form_version != version.version:
        raise FormRefused("stale_form", "/form_version", version=form_version,
                          current=version.version)
    spec = version.content
    current = current_inputs(ctx, spec, unit, period)
    data, errors = coerce_and_validate(spec, items, roles=unit_roles(ctx.principal, unit),
                                       current=current)
    return CheckedForm(unit, period, version, data, errors)


@use_case
def submit_unit_form(ctx: Context, unit: OrgUnit, period: Period, form_version: int | None,
                     items: Mapping[str, Any]) -> SubmittedInputs:
    """Save a unit's filled-in inputs form, pinned to its version; nothing is saved while
    any field is refused (:class:`FormRefused` lists them all). Once the period's plan is
    published the values may await approval instead (``SubmittedInputs.pending``)."""
    checked = check_unit_form(ctx, unit, period, form_version, items)
    if checked.errors:
        first = next(iter(checked.errors))
        raise FormRefused("invalid_form", first, checked.errors, count=len(checked.errors))
    return submit_inputs(ctx.session, actor(ctx), unit, checked.period, checked.version,
                         checked.data, ctx.remote_addr)
