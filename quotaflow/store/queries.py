"""Read queries shared by services. Columns come back as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from quotaflow.store.models import (
    AttributeValue,
    AuditEntry,
    CompanySetting,
    OrgLevel,
    OrgUnit,
    Period,
    RoleGrant,
    UnitResult,
    User,
)
from quotaflow.store.org_columns import input_column


def in_paths(paths: Sequence[str]) -> ColumnElement[bool]:
    """SQL condition: the unit lies in one of the subtrees ``paths``."""
    if not paths:
        return OrgUnit.id.is_(None)
    return or_(*(OrgUnit.path.startswith(p, autoescape=True) for p in paths))


def unit_by_code(session: Session, code: str) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def root_unit(session: Session) -> OrgUnit | None:
    return session.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)))


def units_at(session: Session, paths: Sequence[str]) -> list[OrgUnit]:
    """The subtree roots themselves (the top of what a user may see)."""
    return list(session.scalars(select(OrgUnit).where(OrgUnit.path.in_(paths)).order_by(OrgUnit.path)))


def children(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    return list(
        session.scalars(select(OrgUnit).where(OrgUnit.parent_id == unit.id).order_by(OrgUnit.code))
    )


def child_counts(session: Session, units: Sequence[OrgUnit]) -> dict[int, int]:
    ids = [u.id for u in units]
    if not ids:
        return {}
    rows = session.execute(
        select(OrgUnit.parent_id, func.count()).where(OrgUnit.parent_id.in_(ids)).group_by(OrgUnit.parent_id)
    )
    return {parent: count for parent, count in rows}


def ancestors(session: Session, unit: OrgUnit) -> list[OrgUnit]:
    """Root first, the unit itself excluded."""
    ids = [int(part) for part in unit.path.strip("/").split("/")[:-1]]
    if not ids:
        return []
    by_id = {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(ids)))}
    return [by_id[i] for i in ids]


def search_units(session: Session, paths: Sequence[str], text: str, limit: int = 20) -> list[OrgUnit]:
    pattern = f"%{text}%"
    return list(
        session.scalars(
            select(OrgUnit)
            .where(in_paths(paths))
            .where(or_(OrgUnit.code.ilike(pattern), OrgUnit.name_en.ilike(pattern), OrgUnit.name_zh.like(pattern)))
            .order_by(OrgUnit.depth, OrgUnit.code)
            .limit(limit)
        )
    )


def levels(session: Session) -> list[OrgLevel]:
    return list(session.scalars(select(OrgLevel).order_by(OrgLevel.depth)))


def periods(session: Session) -> list[Period]:
    return list(session.scalars(select(Period).order_by(Period.start_date)))


def period_by_code(session: Session, code: str) -> Period | None:
    return session.scalar(select(Period).where(Period.code == code))


def planning_period(session: Session) -> Period | None:
    """The company's chosen planning period (None until one is chosen)."""
    setting = session.get(CompanySetting, 1)
    return setting.planning_period if setting is not None else None


def set_planning_period(session: Session, period: Period) -> None:
    setting = session.get(CompanySetting, 1)
    if setting is None:
        setting = CompanySetting(id=1)
        session.add(setting)
    setting.planning_period = period
    session.flush()


def unit_attributes(session: Session, unit_id: int, period_id: int) -> dict[str, float]:
    rows = session.execute(
        select(AttributeValue.name, AttributeValue.value)
        .where(AttributeValue.unit_id == unit_id, AttributeValue.period_id == period_id)
        .order_by(AttributeValue.name)
    )
    return {name: value for name, value in rows}


def unit_history(session: Session, unit_id: int) -> list[tuple[str, str, float]]:
    """(period code, metric, value), oldest first."""
    rows = session.execute(
        select(Period.code, UnitResult.metric, UnitResult.value)
        .join(Period, Period.id == UnitResult.period_id)
        .where(UnitResult.unit_id == unit_id)
        .order_by(Period.start_date, UnitResult.metric)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def load_attribute_column(
    session: Session, period_id: int, name: str, unit_ids: np.ndarray
) -> np.ndarray:
    """One attribute for the given units as float64, NaN where no value is stored (the
    one loader's, :func:`quotaflow.store.org_columns.input_column`)."""
    return input_column(session, period_id, name, unit_ids)


def audit_page(session: Session, page: int, per_page: int = 50) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).order_by(AuditEntry.id.desc()).offset(page * per_page).limit(per_page)
        )
    )


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def users(session: Session, *, active: bool | None = None) -> list[User]:
    """Accounts by user name (grants loaded with them)."""
    stmt = select(User).order_by(User.username)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return list(session.scalars(stmt))


def role_grant(session: Session, grant_id: int) -> RoleGrant | None:
    return session.get(RoleGrant, grant_id)


def find_grant(session: Session, user_id: int, role: str, unit_id: int) -> RoleGrant | None:
    return session.scalar(select(RoleGrant).where(
        RoleGrant.user_id == user_id, RoleGrant.role == role, RoleGrant.unit_id == unit_id))

def display_names(session: Session, usernames: Sequence[str] | set[str]) -> dict[str, str]:
    if not usernames:
        return {}
    rows = session.execute(select(User.username, User.display_name)
                           .where(User.username.in_(sorted(usernames))))
    return {u: d for u, d in rows}
