"""SQL for plans: the org tree as columns, plan rows in and out.

The hot paths (the whole tree for a period, every unit's row of a new plan) go
through the raw driver cursor, as ``queries.load_attribute_column`` does: 100k
units must cost milliseconds, not ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from quotaflow.store.models import (
    AttributeValue,
    OrgUnit,
    Period,
    Plan,
    PlanUnit,
    SpecVersion,
    UnitResult,
)
from quotaflow.store.org_columns import OrgColumns, driver_cursor, org_columns
from quotaflow.store.queries import in_paths

PLAN_UNIT_COLUMNS = ("plan_id", "unit_id", "target", "lower", "upper", "locked",
                     "factor_amounts", "bounds_adjustment", "rounding_adjustment", "risks")


def _cursor(session: Session) -> tuple[Any, str]:
    return driver_cursor(session)


def active_unit_columns(session: Session) -> OrgColumns:
    """Every active unit as numpy columns, in id order (the one org loader's)."""
    return org_columns(session)


def units_by_ids(session: Session, ids: Sequence[int]) -> dict[int, OrgUnit]:
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(OrgUnit).where(OrgUnit.id.in_(list(ids))))}


def spec_version(session: Session, version_id: int | None) -> SpecVersion | None:
    return None if version_id is None else session.get(SpecVersion, version_id)


# -- plans ---------------------------------------------------------------------------

def next_plan_number(session: Session, period_id: int) -> int:
    latest = session.scalar(select(func.max(Plan.number)).where(Plan.period_id == period_id))
    return (latest or 0) + 1


def _json_rows(matrix: np.ndarray) -> list[str]:
    """Each row of an int matrix as a JSON list, without a Python loop per row: one
    ``json.dumps`` of the whole matrix, split between rows."""
    if len(matrix) == 0:
        return []
    text = json.dumps(matrix.tolist(), separators=(",", ":"))[1:-1]
    return text.replace("],[", "]\n[").split("\n")


def _nullable(values: np.ndarray) -> list[float | None]:
    """Floats with None where not finite (an open upper bound)."""
    column = values.astype(object)
    column[~np.isfinite(values)] = None
    return column.tolist()


def insert_plan_units(session: Session, plan_id: int, unit_ids: np.ndarray, target: np.ndarray,
                      lower: np.ndarray, upper: np.ndarray, locked: np.ndarray,
                      factor_amounts: np.ndarray, bounds: np.ndarray, rounding: np.ndarray,
                      risks: dict[int, list[dict[str, Any]]]) -> None:
    """Insert one plan's rows (arrays in the same unit order) in one bulk statement.

    ``risks`` maps a position in the arrays to that unit's risks (most units have none).
    Runs on the session's connection, so it commits or rolls back with the session.
    """
    n = len(unit_ids)
    risk_text = ["[]"] * n
    for i, items in risks.items():
        risk_text[i] = json.dumps(items, ensure_ascii=False)
    rows = zip([plan_id] * n, unit_ids.tolist(), target.tolist(), _nullable(lower),
               _nullable(upper), locked.tolist(), _json_rows(factor_amounts), bounds.tolist(),
               rounding.tolist(), risk_text, strict=True)
    columns = ", ".join(PLAN_UNIT_COLUMNS)
    connection = session.connection().connection.driver_connection
    if session.bind.dialect.name == "postgresql":
        # COPY is the fast path of PostgreSQL's bulk load (several times executemany).
        with connection.cursor() as cursor, \
                cursor.copy(f"COPY plan_units ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    cursor, marker = _cursor(session)
    cursor.executemany(
        f"INSERT INTO plan_units ({columns}) VALUES ({', '.join([marker] * len(PLAN_UNIT_COLUMNS))})",
        rows)
    cursor.close()


def plans(session: Session, period_id: int | None = None) -> list[Plan]:
    """Plans, newest period first, then highest number first."""
    stmt = (select(Plan).join(Period, Period.id == Plan.period_id)
            .options(joinedload(Plan.period), joinedload(Plan.created_by))
            .order_by(Period.start_date.desc(), Plan.number.desc()))
    if period_id is not None:
        stmt = stmt.where(Plan.period_id == period_id)
    return list(session.scalars(stmt))


def plan_by_id(session: Session, plan_id: int) -> Plan | None:
    return session.get(Plan, plan_id)


def latest_plan(session: Session, period_id: int) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.period_id == period_id)
                          .order_by(Plan.number.desc()).limit(1))


def plan_unit(session: Session, plan_id: int, unit_id: int) -> PlanUnit | None:
    return session.get(PlanUnit, (plan_id, unit_id))


def plan_rows(session: Session, plan_id: int, *, paths: Sequence[str] | None = None,
              parent_id: int | None = None, unit_ids: Sequence[int] | None = None,
              depth: int | None = None, offset: int = 0, limit: int | None = None) -> list[tuple[PlanUnit, OrgUnit]]:
    """A plan's rows with their units, in tree order (by path), narrowed as asked.

    ``paths`` keeps the rows inside those subtrees (a user's scope); ``parent_id``
    keeps one sibling group; ``unit_ids`` keeps those units; ``depth`` one level.
    """
    stmt = (select(PlanUnit, OrgUnit).join(OrgUnit, OrgUnit.id == PlanUnit.unit_id)
            .where(PlanUnit.plan_id == plan_id).order_by(OrgUnit.depth, OrgUnit.code))
    if paths is not None:
        stmt = stmt.where(in_paths(paths))
    if parent_id is not None:
        stmt = stmt.where(OrgUnit.parent_id == parent_id)
    if unit_ids is not None:
        stmt = stmt.where(OrgUnit.id.in_(list(unit_ids)))
    if depth is not None:
        stmt = stmt.where(OrgUnit.depth == depth)
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(pu, u) for pu, u in session.execute(stmt)]


def count_plan_rows(session: Session, plan_id: int, paths: Sequence[str]) -> int:
    return session.scalar(
        select(func.count()).select_from(PlanUnit).join(OrgUnit, OrgUnit.id == PlanUnit.unit_id)
        .where(PlanUnit.plan_id == plan_id, in_paths(paths))) or 0


def plan_row_columns(session: Session, plan_id: int, paths: Sequence[str], *, offset: int = 0,
                     limit: int | None = None) -> list[tuple[Any, ...]]:
    """Rows for an export or the API, plain tuples in tree order: (code, name_en, name_zh,
    depth, parent code, target, lower, upper, locked, factor_amounts, bounds, rounding,
    risks)."""
    parent = select(OrgUnit.id, OrgUnit.code).subquery()
    stmt = (select(OrgUnit.code, OrgUnit.name_en, OrgUnit.name_zh, OrgUnit.depth, parent.c.code,
                   PlanUnit.target, PlanUnit.lower, PlanUnit.upper, PlanUnit.locked,
                   PlanUnit.factor_amounts, PlanUnit.bounds_adjustment,
                   PlanUnit.rounding_adjustment, PlanUnit.risks)
            .join(OrgUnit, OrgUnit.id == PlanUnit.unit_id)
            .outerjoin(parent, parent.c.id == OrgUnit.parent_id)
            .where(PlanUnit.plan_id == plan_id, in_paths(paths))
            .order_by(OrgUnit.path))
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [tuple(r) for r in session.execute(stmt)]


def units_by_codes(session: Session, codes: Sequence[str]) -> dict[str, OrgUnit]:
    if not codes:
        return {}
    return {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(list(codes))))}


def attribute_rows(session: Session, period_id: int, unit_ids: Sequence[int],
                   names: Sequence[str]) -> dict[int, dict[str, float]]:
    """Some units' inputs (for a page of rows): unit id -> {name: value}."""
    out: dict[int, dict[str, float]] = {u: {} for u in unit_ids}
    if not unit_ids or not names:
        return out
    rows = session.execute(
        select(AttributeValue.unit_id, AttributeValue.name, AttributeValue.value)
        .where(AttributeValue.period_id == period_id, AttributeValue.unit_id.in_(list(unit_ids)),
               AttributeValue.name.in_(list(names))))
    for unit_id, name, value in rows:
        out[unit_id][name] = value
    return out


def same_period_last_year(session: Session, period: Period) -> Period | None:
    try:
        start = period.start_date.replace(year=period.start_date.year - 1)
    except ValueError:  # 29 February
        start = period.start_date.replace(year=period.start_date.year - 1, day=28)
    return session.scalar(select(Period).where(Period.start_date == start))


def unit_result(session: Session, unit_id: int, period_id: int, metric: str) -> float | None:
    return session.scalar(select(UnitResult.value).where(
        UnitResult.unit_id == unit_id, UnitResult.period_id == period_id,
        UnitResult.metric == metric))



def depth_total(session: Session, plan_id: int, depth: int | None,
                paths: Sequence[str] | None = None) -> tuple[int, int]:
    """(units, sum of their targets) of the plan's rows at ``depth``, inside ``paths``
    (None: the whole company)."""
    stmt = (select(func.count(), func.coalesce(func.sum(PlanUnit.target), 0))
            .select_from(PlanUnit).join(OrgUnit, OrgUnit.id == PlanUnit.unit_id)
            .where(PlanUnit.plan_id == plan_id, OrgUnit.depth == depth))
    if paths is not None:
        stmt = stmt.where(in_paths(paths))
    count, total = session.execute(stmt).one()
    return int(count), int(total)


def depth_rows(session: Session, plan_id: int, depth: int, paths: Sequence[str] | None = None
               ) -> list[Any]:
    """(id, code, name_en, name_zh, path, target) of the plan's units at ``depth`` inside
    ``paths`` (None: the whole company)."""
    stmt = (select(OrgUnit.id, OrgUnit.code, OrgUnit.name_en, OrgUnit.name_zh, OrgUnit.path,
                   PlanUnit.target)
            .join(PlanUnit, PlanUnit.unit_id == OrgUnit.id)
            .where(PlanUnit.plan_id == plan_id, OrgUnit.depth == depth))
    if paths is not None:
        stmt = stmt.where(in_paths(paths))
    return list(session.execute(stmt).all())
