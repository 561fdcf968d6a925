"""A planning period of the plan tests' own (importable as ``plan_support``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert, select

from quotaflow.services import specs
from quotaflow.services.seeding import add_period
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, OrgUnit

# Plans here run on a period of their own (the demo quarter already has a published plan):
# the demo's 2026Q4 inputs, topped up (the model's default, else 0) for any active unit
# that has none (a test may add units), each time it is used.
OWN_PERIOD = "2001Q4"


def own_period(session: Any) -> Any:
    period = q.period_by_code(session, OWN_PERIOD) or add_period(
        session, OWN_PERIOD, dt.date(2001, 10, 1), dt.date(2001, 12, 31))
    session.flush()
    demo = q.period_by_code(session, "2026Q4")
    for field in specs.active_version(session, "factor_model", "default").content["fields"]:
        name = field["name"]
        have = select(AttributeValue.unit_id).where(AttributeValue.period_id == period.id,
                                                    AttributeValue.name == name)
        missing = session.scalars(select(OrgUnit.id).where(OrgUnit.active,
                                                           OrgUnit.id.not_in(have))).all()
        if not missing:
            continue
        known = dict(session.execute(select(AttributeValue.unit_id, AttributeValue.value).where(
            AttributeValue.period_id == demo.id, AttributeValue.name == name)).all())
        session.execute(insert(AttributeValue), [
            {"period_id": period.id, "name": name, "unit_id": u,
             "value": known.get(u, float(field.get("default") or 0))} for u in missing])
    session.commit()
    return period


def readable_by_all(session: Any, plan_id: int) -> int:
    """Mark a test's plan published (without the confirmation round publishing opens), so
    readers who may not see drafts (region heads, team leads, sales) read it in scope."""
    from quotaflow.store.models import Plan

    session.get(Plan, plan_id).status = "published"
    session.commit()
    return plan_id
