"""Org-tree use cases: browsing within scope and editing a unit's inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.uow import Context, use_case
from quotaflow.store import queries as q
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


# -- reads for pages, API and CLI (through a use-case context) ---------------------------------

class PeriodNotFound(NotFound):
    domain = "periods"


messages.register("periods", {
    "not_found": _l("There is no period %(code)s."),
    "no_periods": _l("There are no periods yet."),
})


def periods(ctx: Context) -> list[Period]:
    """Every period, oldest first."""
    return q.periods(ctx.session)


def find_period(ctx: Context, code: str | None) -> Period | None:
    """The period ``code``; without one, the latest period (None: none such)."""
    if code is None:
        found = q.periods(ctx.session)
        return found[-1] if found else None
    return q.period_by_code(ctx.session, code)


def period(ctx: Context, code: str | None, pointer: str = "/period") -> Period:
    """Like :func:`find_period`, refusing with ``not_found`` when there is none."""
    found = find_period(ctx, code)
    if found is None:
        if code is None:
            raise PeriodNotFound("no_periods", pointer)
        raise PeriodNotFound("not_found", pointer, code=code)
    return found


def current_period(ctx: Context, code: str | None = None) -> Period:
    """The period ``code``, else the one holding today, else the latest."""
    if code:
        return period(ctx, code)
    today = ctx.now.date()
    found = q.periods(ctx.session)
    chosen = next((p for p in found if p.start_date <= today <= p.end_date),
                  found[-1] if found else None)
    if chosen is None:
        raise PeriodNotFound("no_periods", "/period")
    return chosen


def scope_tops(ctx: Context) -> list[OrgUnit]:
    """The tops of the caller's read scope."""
    return q.units_at(ctx.session, ctx.principal.scope_paths("unit.read") if ctx.principal
                      else ())


def children(ctx: Context, unit: OrgUnit) -> list[OrgUnit]:
    return q.children(ctx.session, unit)


def attributes(ctx: Context, unit: OrgUnit, period: Period) -> dict[str, float]:
    return q.unit_attributes(ctx.session, unit.id, period.id)


def history(ctx: Context, unit: OrgUnit) -> list[tuple[str, str, float]]:
    """(period code, metric, value) of the unit's past results, oldest first."""
    return q.unit_history(ctx.session, unit.id)


@use_case
def update_attributes(ctx: Context, unit: OrgUnit, period: Period,
                      raw: Mapping[str, object]) -> dict[str, float]:
    """Check and store some of a unit's inputs (unit.write over it), audited."""
    if ctx.principal is not None and not ctx.principal.can("unit.write", unit.path):
        raise Forbidden("forbidden")
    actor = q.user_by_id(ctx.session, ctx.user_id)
    return set_attributes(ctx.session, actor, unit, period, parse_values(raw), ctx.remote_addr)
