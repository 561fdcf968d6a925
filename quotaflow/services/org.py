"""Org-tree use cases: browsing within scope and editing a unit's inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.input_check import InputCheckError, check_values
from quotaflow.services.uow import unit_of_work
from quotaflow.store import org_queries, queries
from quotaflow.store.models import AttributeValue, OrgUnit, Period, User

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")




__all__ = ["InputCheckError", "InputError", "parse_values", "set_attributes"]


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


def set_attributes(
    session: Session,
    actor: User,
    unit: OrgUnit,
    period: Period,
    values: Mapping[str, float | None],
    remote_addr: str | None = None,
) -> dict[str, float]:
    """Replace some of a unit's inputs for a period, audited, in one transaction.

    Every value is first checked against the active factor model's field spec (the
    check the planner runs): :class:`InputCheckError` names the field, nothing is saved.
    """
    check_values(session, values)
    current = queries.unit_attributes(session, unit.id, period.id)
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return current
    with unit_of_work(session):
        for name, value in changed.items():
            org_queries.delete_attribute(session, unit.id, period.id, name)
            if value is not None:
                session.add(AttributeValue(period_id=period.id, unit_id=unit.id, name=name, value=value))
        audit.record(
            session,
            actor,
            "set_attributes",
            "org_unit",
            f"{unit.code}@{period.code}",
            before={k: current.get(k) for k in changed},
            after=changed,
            remote_addr=remote_addr,
        )
    updated = {**current, **changed}
    return {k: v for k, v in sorted(updated.items()) if v is not None}
