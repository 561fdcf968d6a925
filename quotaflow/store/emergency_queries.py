"""SQL of emergency recomputes: the cities and units a request may freeze, and the
stored requests."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from quotaflow.store.emergency_models import EmergencyRecompute
from quotaflow.store.models import OrgUnit


def city_names(session: Session) -> list[tuple[str | None, str | None]]:
    """Distinct (city_en, city_zh) of the active units that have a city."""
    return [(en, zh) for en, zh in session.execute(
        select(OrgUnit.city_en, OrgUnit.city_zh).where(
            OrgUnit.active, OrgUnit.city_en.is_not(None), OrgUnit.city_en != "").distinct())]


def active_units_in_city(session: Session, name: str) -> list[OrgUnit]:
    """Active units whose city is ``name`` (English or Chinese)."""
    return list(session.scalars(select(OrgUnit).where(
        OrgUnit.active, (OrgUnit.city_en == name) | (OrgUnit.city_zh == name))))


def active_ids_under(session: Session, path: str) -> list[int]:
    """Ids of the active units at or below ``path``."""
    return list(session.scalars(select(OrgUnit.id).where(
        OrgUnit.active, OrgUnit.path.startswith(path))))


def pending_request(session: Session, period_id: int) -> EmergencyRecompute | None:
    return session.scalar(select(EmergencyRecompute).where(
        EmergencyRecompute.period_id == period_id, EmergencyRecompute.status == "pending")
        .order_by(EmergencyRecompute.id).limit(1))


def requests(session: Session, period_id: int | None, limit: int) -> list[EmergencyRecompute]:
    """Requests, newest first (of one period, if given)."""
    stmt = select(EmergencyRecompute).order_by(EmergencyRecompute.id.desc()).limit(limit)
    if period_id is not None:
        stmt = stmt.where(EmergencyRecompute.period_id == period_id)
    return list(session.scalars(stmt))
