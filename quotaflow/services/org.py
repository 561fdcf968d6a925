"""Org-tree use cases: browsing within scope and editing a unit's inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotaflow.services import audit
from quotaflow.store.models import AttributeValue, OrgUnit, Period, User

ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


MESSAGES = {
    "bad_name": "attribute names are lower-case letters, digits and _",
    "not_a_number": "{value!r} is not a number",
    "not_finite": "must be a finite number",
}


@dataclass(frozen=True)
class InputError(ValueError):
    """Bad input: where (a JSON pointer), a stable code, and the values for the message.

    The message is English; the web layer translates by ``code``.
    """

    where: str
    code: str
    value: object = None

    @property
    def message(self) -> str:
        return MESSAGES[self.code].format(value=self.value)

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
    """Replace some of a unit's inputs for a period, audited, in one transaction."""
    current = dict(
        session.execute(
            select(AttributeValue.name, AttributeValue.value).where(
                AttributeValue.unit_id == unit.id, AttributeValue.period_id == period.id
            )
        ).all()
    )
    changed = {k: v for k, v in values.items() if current.get(k) != v}
    if not changed:
        return current
    for name, value in changed.items():
        session.execute(
            delete(AttributeValue).where(
                AttributeValue.unit_id == unit.id,
                AttributeValue.period_id == period.id,
                AttributeValue.name == name,
            )
        )
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
    session.commit()
    updated = {**current, **changed}
    return {k: v for k, v in sorted(updated.items()) if v is not None}
