"""SQL of the tracking aggregate: actuals, the targets tracked against, past periods,
the alert scan's look-ups and the dashboards' health figures.

Bulk reads come back as numpy columns or plain tuples (no ORM objects per row); long
``IN`` lists are sent in chunks of :data:`quotaflow.store.queries.IN_CHUNK`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, joinedload

from quotaflow.store.flow_models import FlowInstance, FlowTask
from quotaflow.store.models import (
    AttributeValue,
    AuditEntry,
    OrgLevel,
    OrgUnit,
    Period,
    PlanUnit,
    RoleGrant,
    SpecVersion,
    User,
)
from quotaflow.store.queries import IN_CHUNK, in_paths
from quotaflow.store.tracking_models import Actual, Alert

# ---------------------------------------------------------------------------- targets


def plan_targets(session: Session, plan_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row of the plan: (unit ids, targets as float64)."""
    rows = session.execute(select(PlanUnit.unit_id, PlanUnit.target)
                           .where(PlanUnit.plan_id == plan_id)).all()
    units = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    return units, values


def plan_targets_locked(session: Session, plan_id: int, unit_ids: Sequence[int]
                        ) -> list[tuple[int, int, bool]]:
    """(unit id, target, locked) of the plan's rows of ``unit_ids``."""
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(PlanUnit.unit_id, PlanUnit.target, PlanUnit.locked)
        .where(PlanUnit.plan_id == plan_id, PlanUnit.unit_id.in_(list(unit_ids))))]


def periods_before(session: Session, period: Period) -> list[Period]:
    """The periods that ended before ``period`` started, oldest first."""
    return list(session.scalars(select(Period).where(Period.end_date < period.start_date)
                                .order_by(Period.start_date)))


def period_spans(session: Session) -> list[tuple[dt.date, dt.date]]:
    """(start, end) of every period."""
    return [(s, e) for s, e in session.execute(select(Period.start_date, Period.end_date))]


def attribute_rows(session: Session, period_id: int, names: Sequence[str]
                   ) -> list[tuple[str, int, float]]:
    """(name, unit id, value) of the period's attributes named ``names``."""
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(AttributeValue.name, AttributeValue.unit_id, AttributeValue.value).where(
            AttributeValue.period_id == period_id, AttributeValue.name.in_(list(names))))]


# ---------------------------------------------------------------------------- actuals


def units_with_level(session: Session, codes: Sequence[str]
                     ) -> list[tuple[int, str, str, int, str]]:
    """(id, code, path, depth, level key) of the units ``codes`` (chunked)."""
    found: list[tuple[int, str, str, int, str]] = []
    for start in range(0, len(codes), IN_CHUNK):
        chunk = list(codes[start:start + IN_CHUNK])
        found.extend(tuple(r) for r in session.execute(  # type: ignore[misc]
            select(OrgUnit.id, OrgUnit.code, OrgUnit.path, OrgUnit.depth, OrgLevel.key)
            .join(OrgLevel, OrgLevel.depth == OrgUnit.depth)
            .where(OrgUnit.code.in_(chunk))))
    return found


def stored_actuals(session: Session, unit_ids: Sequence[int], sources: Sequence[str],
                   first: dt.date, last: dt.date
                   ) -> dict[tuple[int, dt.date, str, str], tuple[int, float]]:
    """Stored actuals of ``unit_ids`` and ``sources`` dated first..last, by key (unit id,
    date, source, source id): (row id, value)."""
    stored: dict[tuple[int, dt.date, str, str], tuple[int, float]] = {}
    for start in range(0, len(unit_ids), IN_CHUNK):
        for aid, uid, date, source, source_id, value in session.execute(
                select(Actual.id, Actual.unit_id, Actual.date, Actual.source,
                       Actual.source_id, Actual.value).where(
                    Actual.unit_id.in_(unit_ids[start:start + IN_CHUNK]),
                    Actual.source.in_(list(sources)),
                    Actual.date >= first, Actual.date <= last)):
            stored[(uid, date, source, source_id)] = (aid, value)
    return stored


def insert_actuals(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        session.execute(insert(Actual), list(rows))


def update_actual_values(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bulk update by primary key (each row: id, value, updated_at)."""
    if rows:
        session.execute(update(Actual), list(rows))


def actual_rows(session: Session, metric: str, start: dt.date, end: dt.date
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every actual of ``metric`` dated within [start, end]: (unit ids, date ordinals,
    values)."""
    rows = session.execute(select(Actual.unit_id, Actual.date, Actual.value).where(
        Actual.metric == metric, Actual.date >= start, Actual.date <= end)).all()
    n = len(rows)
    units = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    days = np.fromiter((r[1].toordinal() for r in rows), dtype=np.int64, count=n)
    values = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
    return units, days, values


def last_actual_date(session: Session, start: dt.date, end: dt.date) -> dt.date | None:
    """The newest date with an actual within [start, end]."""
    return session.scalar(select(func.max(Actual.date)).where(
        Actual.date >= start, Actual.date <= end))


# ---------------------------------------------------------------------------- alert scan


def alert_keys_until(session: Session, period_id: int, week: int) -> list[tuple[str, str, int]]:
    """(unit code, rule, week) of the period's alerts of weeks up to ``week``."""
    return [(code, rule, w) for code, rule, w in session.execute(
        select(OrgUnit.code, Alert.rule, Alert.week).join(OrgUnit, OrgUnit.id == Alert.unit_id)
        .where(Alert.period_id == period_id, Alert.week <= week))]


def active_grants(session: Session, roles: Iterable[str]) -> list[tuple[int, str, str]]:
    """(user id, role, unit path) of the active users' grants of ``roles``."""
    return [(uid, role, path) for uid, role, path in session.execute(
        select(RoleGrant.user_id, RoleGrant.role, OrgUnit.path)
        .join(OrgUnit, OrgUnit.id == RoleGrant.unit_id)
        .join(User, User.id == RoleGrant.user_id)
        .where(RoleGrant.role.in_(list(roles)), User.active))]


def person_users(session: Session, unit_ids: Iterable[int]) -> dict[int, int]:
    """Person unit id -> the active user who is that person (chunked)."""
    ids = sorted(set(unit_ids))
    out: dict[int, int] = {}
    for start in range(0, len(ids), IN_CHUNK):
        out.update({unit_id: uid for uid, unit_id in session.execute(
            select(User.id, User.person_unit_id).where(
                User.active, User.person_unit_id.in_(ids[start:start + IN_CHUNK])))})
    return out


# ---------------------------------------------------------------------------- operations


def spec_version_rows(session: Session) -> list[tuple[str, str, int, str, dt.datetime | None]]:
    """(kind, key, version, status, created at) of every spec version."""
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(SpecVersion.kind, SpecVersion.key, SpecVersion.version, SpecVersion.status,
               SpecVersion.created_at))]


def pending_tasks(session: Session, scope_paths: Sequence[str]) -> list[FlowTask]:
    """Pending tasks of running instances about units in scope, soonest due first."""
    if not scope_paths:
        return []
    return list(session.scalars(
        select(FlowTask).join(FlowInstance, FlowInstance.id == FlowTask.instance_id)
        .join(OrgUnit, OrgUnit.id == FlowInstance.unit_id)
        .options(joinedload(FlowTask.instance).joinedload(FlowInstance.unit))
        .where(FlowTask.status == "pending", FlowInstance.status == "running",
               in_paths(scope_paths))
        .order_by(FlowTask.due_at.is_(None), FlowTask.due_at, FlowTask.instance_id,
                  FlowTask.task_id)))


def users_by_ids(session: Session, user_ids: Iterable[int | None]) -> dict[int, User]:
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


def newest_audit_id(session: Session) -> int:
    """The newest audit entry's id (0 when there is none)."""
    return int(session.scalar(select(func.max(AuditEntry.id))) or 0)
