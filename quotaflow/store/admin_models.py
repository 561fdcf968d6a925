"""What the Flask-Admin pages need from the store: the records they list and edit, the
session they run on, and the few record-level steps their forms take (a new unit's place
in the tree, a period's ISO weeks, a record's columns for the audit log)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session, scoped_session

from quotaflow.store.db import db
from quotaflow.store.models import (
    AuditEntry,
    OrgLevel,
    OrgUnit,
    Period,
    PeriodWeek,
    RoleGrant,
    SpecVersion,
    User,
)

#: The records of the admin pages, by the name the pages use.
MODELS: dict[str, type[Any]] = {
    "units": OrgUnit, "users": User, "grants": RoleGrant, "periods": Period,
    "specs": SpecVersion, "audit": AuditEntry,
}


def session() -> scoped_session[Session]:
    """The app's scoped session (Flask-Admin keeps it for the life of the app)."""
    return db.session


def snapshot(model: Any, secret: Iterable[str] = ()) -> dict[str, Any]:
    """A record's columns as JSON-ready values, ``secret`` columns left out."""
    hidden = frozenset(secret)
    out: dict[str, Any] = {}
    for attr in inspect(model).mapper.column_attrs:
        if attr.key in hidden:
            continue
        value = getattr(model, attr.key)
        out[attr.key] = value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
    return out


def table_name(model_class: type[Any]) -> str:
    return inspect(model_class).mapper.local_table.name


def identity(model: Any) -> str:
    state = inspect(model)
    return str(state.identity[0]) if state.identity else ""


def place_new_unit(session: Session, unit: OrgUnit) -> bool:
    """Give a new unit its depth and path below its parent; False if no level lies below."""
    parent = unit.parent
    if session.get(OrgLevel, parent.depth + 1) is None:
        return False
    unit.depth = parent.depth + 1
    unit.path = parent.path  # completed below, once the id is known
    session.flush()
    unit.path = f"{parent.path}{unit.id}/"
    return True


def set_weeks(session: Session, period: Period,
              weeks: list[tuple[int, int, dt.date, dt.date]]) -> None:
    """Make the period's ISO weeks ``(iso_year, iso_week, start, end)``, if they differ."""
    current = [(w.iso_year, w.iso_week, w.start_date, w.end_date) for w in period.weeks]
    if current == weeks:
        return
    # Rebuild the weeks: delete the old rows first (same primary keys).
    period.weeks.clear()
    session.flush()
    for number, (year, week, first, last) in enumerate(weeks, start=1):
        period.weeks.append(PeriodWeek(week_no=number, iso_year=year, iso_week=week,
                                       start_date=first, end_date=last))
