"""Shared set-up for the confirmation tests: a fresh period and a published plan each."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from sqlalchemy import insert, select

from quotaflow.services import plans, specs
from quotaflow.services import uploads as upload_service
from quotaflow.services.seeding import add_period
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, OrgUnit, User

TOTAL = 249_500_000


def fresh_period(session: Any) -> Any:
    """A period of the test's own, with the demo's 2026Q4 inputs (the model's default, else
    0, for units without one): confirmation state is per period, and the demo quarter
    already has a published plan.  1950Q3 first, then 1951Q3 if the test asks again."""
    year = 1950
    while q.period_by_code(session, f"{year}Q3") is not None:
        year += 1
    period = add_period(session, f"{year}Q3", dt.date(year, 7, 1), dt.date(year, 9, 30))
    session.flush()
    demo = q.period_by_code(session, "2026Q4")
    units = session.scalars(select(OrgUnit.id).where(OrgUnit.active)).all()
    for field in specs.active_version(session, "factor_model", "default").content["fields"]:
        name = field["name"]
        known = dict(session.execute(select(AttributeValue.unit_id, AttributeValue.value).where(
            AttributeValue.period_id == demo.id, AttributeValue.name == name)).all())
        session.execute(insert(AttributeValue), [
            {"period_id": period.id, "name": name, "unit_id": u,
             "value": known.get(u, float(field.get("default") or 0))} for u in units])
    session.commit()
    return period


def draft_plan(session: Any, period: Any, scenario: str = "balanced") -> Any:
    admin = user(session, "hrbp")
    sim = plans.simulate(session, period, TOTAL)
    key = scenario if scenario in sim.results else next(iter(sim.results))
    return plans.save_scenario(session, admin, sim, key, "confirmation test")


def user(session: Any, username: str) -> User:
    return session.scalar(select(User).where(User.username == username))


def evidence(session: Any, unit: OrgUnit, tmp_path: Any, name: str = "proof.txt") -> int:
    stored = upload_service.store_upload(
        session, user(session, "admin"), unit, name,
        io.BytesIO(b"market survey: two large customers moved to a competitor\n"),
        storage_dir=tmp_path / "uploads")
    return stored.id
