"""SQL of the org aggregate's writes and bulk reads: units as stored (for the org
import), past results, and a period's inputs (attribute values) written in bulk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from quotaflow.store.models import AttributeValue, OrgUnit, Period, UnitResult
from quotaflow.store.queries import IN_CHUNK, in_paths

# ---------------------------------------------------------------------------- units


def stored_unit_rows(session: Session) -> list[Row[Any]]:
    """Every unit's (id, code, parent_id, depth, path, name_en, name_zh, city_en,
    city_zh, opened)."""
    return list(session.execute(select(
        OrgUnit.id, OrgUnit.code, OrgUnit.parent_id, OrgUnit.depth, OrgUnit.path,
        OrgUnit.name_en, OrgUnit.name_zh, OrgUnit.city_en, OrgUnit.city_zh, OrgUnit.opened)))


def update_units(session: Session, changes: Sequence[Mapping[str, Any]]) -> None:
    """Bulk update of units by primary key (each change: id and the changed fields)."""
    if changes:
        session.execute(update(OrgUnit), list(changes))


def active_units_in(session: Session, paths: Sequence[str]) -> list[Row[Any]]:
    """(id, code, path, depth, name_en, name_zh) of the active units inside ``paths``."""
    return list(session.execute(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.path, OrgUnit.depth, OrgUnit.name_en,
               OrgUnit.name_zh)
        .where(in_paths(paths), OrgUnit.active.is_(True))).all())


def codes_at(session: Session, paths: Sequence[str]) -> list[str]:
    """Codes of the units at exactly ``paths`` (subtree roots), by code."""
    return list(session.scalars(select(OrgUnit.code).where(OrgUnit.path.in_(list(paths)))
                                .order_by(OrgUnit.code)).all())


def period_ids_by_code(session: Session) -> dict[str, int]:
    return {code: pid for pid, code in session.execute(select(Period.id, Period.code))}


# ---------------------------------------------------------------------------- results


def stored_results(session: Session, metric: str, unit_ids: Sequence[int]
                   ) -> dict[tuple[int, int], float]:
    """(unit id, period id) -> stored result of ``metric`` for ``unit_ids`` (chunked)."""
    stored: dict[tuple[int, int], float] = {}
    for start in range(0, len(unit_ids), IN_CHUNK):
        stored.update({(uid, pid): value for uid, pid, value in session.execute(
            select(UnitResult.unit_id, UnitResult.period_id, UnitResult.value).where(
                UnitResult.metric == metric,
                UnitResult.unit_id.in_(unit_ids[start:start + IN_CHUNK])))})
    return stored


def write_results(session: Session, inserts: Sequence[Mapping[str, Any]],
                  updates: Sequence[Mapping[str, Any]]) -> None:
    """Bulk insert new results and update changed ones (by primary key)."""
    if inserts:
        session.execute(insert(UnitResult), list(inserts))
    if updates:
        session.execute(update(UnitResult), list(updates))


# ---------------------------------------------------------------------------- inputs


def delete_attribute(session: Session, unit_id: int, period_id: int, name: str) -> None:
    session.execute(delete(AttributeValue).where(
        AttributeValue.unit_id == unit_id, AttributeValue.period_id == period_id,
        AttributeValue.name == name))


def write_attributes(session: Session, period_id: int, inserts: Sequence[Mapping[str, Any]],
                     updates: Sequence[Mapping[str, Any]],
                     deletes: Mapping[str, Sequence[int]]) -> None:
    """Apply input changes in bulk: executemany inserts/updates, one delete per field
    chunk (``deletes``: field name -> unit ids)."""
    if inserts:
        session.execute(insert(AttributeValue), list(inserts))
    if updates:
        session.execute(update(AttributeValue), list(updates))
    for name, ids in deletes.items():
        for start in range(0, len(ids), IN_CHUNK):
            session.execute(delete(AttributeValue).where(
                AttributeValue.period_id == period_id, AttributeValue.name == name,
                AttributeValue.unit_id.in_(list(ids[start:start + IN_CHUNK]))))
