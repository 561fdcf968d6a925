"""Org-tree use cases: browsing within scope and editing a unit's inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError
from quotaflow.messages import _l
from quotaflow.services import audit, input_governance
from quotaflow.services.auth import principal_for
from quotaflow.services.input_check import InputCheckError, active_fields, check_values
from quotaflow.services.input_governance import InputLocked
from quotaflow.services.uow import unit_of_work
from quotaflow.store import org_queries, queries
from quotaflow.store.models import AttributeValue, OrgUnit, Period, User

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")




__all__ = ["InputCheckError", "InputError", "InputLocked", "SavedInputs", "apply_values",
           "parse_values", "save_inputs", "set_attributes"]


class InputError(QuotaFlowError):
    """Bad input: where (a JSON pointer), a stable code, and the value it refuses."""

    domain = "input"
    CODES = messages.register(domain, {
        "bad_name": _l("Input names are lower-case letters, digits and _."),
        "not_a_number": _l("“%(value)s” is not a number."),
        "not_finite": _l("Enter a finite number."),
    })

    def __init__(self, where: str, code: str, value: object = None) -> None:
        super().__init__(code, where, value=value)

    @property
    def where(self) -> str:
        return self.pointer

    @property
    def value(self) -> object:
        return self.params["value"]

    @property
    def field(self) -> str:
        return self.where.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def parse_values(raw: Mapping[str, object]) -> dict[str, float | None]:
    """Validate attribute values from a form or JSON body; ``None`` or "" clears one."""
    values: dict[str, float | None] = {}
    for name, value in raw.items():
        if not ATTRIBUTE_NAME.match(name):
            raise InputError(f"/values/{name}", "bad_name", name)
        if value is None or (isinstance(value, str) and not value.strip()):
            values[name] = None
            continue
        if isinstance(value, bool):
            values[name] = 1.0 if value else 0.0
            continue
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputError(f"/values/{name}", "not_a_number", value) from None
        if not math.isfinite(number):
            raise InputError(f"/values/{name}", "not_finite", value)
        values[name] = number
    return values


@dataclass(frozen=True)
class SavedInputs:
    """What a write of inputs did: the unit's values now, and the input change request
    (a flow instance id) holding the changes that await approval instead, if any."""

    values: dict[str, float]
    pending_flow_id: int | None = None

    @property
    def pending(self) -> bool:
        return self.pending_flow_id is not None


def save_inputs(
    session: Session,
    actor: User | None,
    unit: OrgUnit,
    period: Period,
    values: Mapping[str, float | None],
    remote_addr: str | None = None,
    source: str = "org",
) -> SavedInputs:
    """Replace some of a unit's inputs for a period, audited, in one transaction: the
    one place a person's input values are written (the collect form, the org page and
    the API come here; the sheet upload asks the same gate for each of its rows).

    Every value is first checked against the active factor model's field spec (the
    check the planner runs): :class:`InputCheckError` names the field, nothing is saved.
    Then the input governance decides (:mod:`input_governance`): once the period's plan
    is published, a change of a model input that moves the writer's own target awaits
    approval (an input change request) or is refused (:class:`InputLocked`), as the
    policy says; the rest is applied.
    """
    check_values(session, values)
    current = queries.unit_attributes(session, unit.id, period.id)
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return SavedInputs(_present(current))
    principal = principal_for(actor) if actor is not None else None
    gate = input_governance.gate(session, principal, period)
    if actor is None or not gate.governs(unit.path):
        return SavedInputs(apply_values(session, actor, unit, period, changed,
                                        remote_addr=remote_addr))
    # Only the model's inputs move a target; free-form attributes apply directly.
    model_fields = active_fields(session)
    held = {k: v for k, v in changed.items() if k in model_fields}
    if held and gate.mode == input_governance.LOCKED:
        input_governance.refuse_locked(unit, period, held)
    with unit_of_work(session):
        now = apply_values(session, actor, unit, period,
                           {k: v for k, v in changed.items() if k not in held},
                           remote_addr=remote_addr)
        if not held:
            return SavedInputs(now)
        instance = input_governance.request_change(
            session, actor, unit, period, {k: current.get(k) for k in held}, held, source,
            remote_addr)
    return SavedInputs(now, instance.id)


def set_attributes(
    session: Session,
    actor: User | None,
    unit: OrgUnit,
    period: Period,
    values: Mapping[str, float | None],
    remote_addr: str | None = None,
) -> dict[str, float]:
    """:func:`save_inputs`, returning the unit's values now."""
    return save_inputs(session, actor, unit, period, values, remote_addr).values


def _present(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: v for k, v in sorted(values.items()) if v is not None}


def apply_values(
    session: Session,
    actor: User | None,
    unit: OrgUnit,
    period: Period,
    values: Mapping[str, float | None],
    *,
    remote_addr: str | None = None,
    action: str = "set_attributes",
    extra: Mapping[str, object] | None = None,
) -> dict[str, float]:
    """Write ``values`` (after the field check, again: an approval applies what the
    server kept, under the model active now), audited with before and after."""
    check_values(session, values)
    current = queries.unit_attributes(session, unit.id, period.id)
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return _present(current)
    with unit_of_work(session):
        for name, value in changed.items():
            org_queries.delete_attribute(session, unit.id, period.id, name)
            if value is not None:
                session.add(AttributeValue(period_id=period.id, unit_id=unit.id, name=name, value=value))
        audit.record(
            session,
            actor,
            action,
            "org_unit",
            f"{unit.code}@{period.code}",
            before={k: current.get(k) for k in changed},
            after={**changed, **(extra or {})},
            remote_addr=remote_addr,
        )
    return _present({**current, **changed})
