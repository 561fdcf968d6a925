"""SQL for the two-way confirmation: groups, items, appeals, plan versions compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload

from quotaflow.store.confirmation_models import Appeal, ConfirmationGroup, ConfirmationItem
from quotaflow.store.models import OrgUnit, Period, Plan, PlanUnit, RoleGrant, User
from quotaflow.store.queries import in_paths


def _diff_select(old_id: int, new_id: int, paths: Sequence[str],
                 columns: Callable[..., tuple[Any, ...]]) -> tuple[Any, Any, Any]:
    old, new = aliased(PlanUnit), aliased(PlanUnit)
    ids = (select(PlanUnit.unit_id).where(PlanUnit.plan_id.in_([old_id, new_id]))
           .distinct().subquery())
    change = func.coalesce(new.target, 0) - func.coalesce(old.target, 0)
    differs = (old.target.is_(None)) | (new.target.is_(None)) | (old.target != new.target)
    stmt = (select(*columns(old, new, change, differs))
            .select_from(OrgUnit).join(ids, ids.c.unit_id == OrgUnit.id)
            .outerjoin(old, (old.unit_id == OrgUnit.id) & (old.plan_id == old_id))
            .outerjoin(new, (new.unit_id == OrgUnit.id) & (new.plan_id == new_id))
            .where(in_paths(paths)))
    return stmt, change, differs


def diff_rows(session: Session, old_id: int, new_id: int, paths: Sequence[str], *,
              limit: int | None = None) -> list[tuple[OrgUnit, int | None, int | None]]:
    """(unit, old target, new target) for the units of either plan inside ``paths``:
    changed units first (largest change first), then the rest in tree order."""
    stmt, change, differs = _diff_select(
        old_id, new_id, paths, lambda o, n, _c, _d: (OrgUnit, o.target, n.target))
    stmt = stmt.order_by(case((differs, 0), else_=1), func.abs(change).desc(), OrgUnit.path)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(u, o, n) for u, o, n in session.execute(stmt)]


def diff_counts(session: Session, old_id: int, new_id: int, paths: Sequence[str]
                ) -> tuple[int, int]:
    """(units, changed units) of two plans inside ``paths``."""
    stmt, _change, _differs = _diff_select(
        old_id, new_id, paths,
        lambda _o, _n, _c, d: (func.count(), func.coalesce(func.sum(case((d, 1), else_=0)), 0)))
    total, changed = session.execute(stmt).one()
    return int(total), int(changed)


def published_plan(session: Session, period_id: int) -> Plan | None:
    return session.scalar(select(Plan).where(Plan.period_id == period_id,
                                             Plan.status == "published")
                          .order_by(Plan.number.desc()).limit(1))


def plan_targets(session: Session, plan_id: int, unit_ids: Sequence[int]) -> dict[int, int]:
    if not unit_ids:
        return {}
    rows = session.execute(select(PlanUnit.unit_id, PlanUnit.target).where(
        PlanUnit.plan_id == plan_id, PlanUnit.unit_id.in_(list(unit_ids))))
    return {u: int(t) for u, t in rows}


def group(session: Session, period_id: int, parent_unit_id: int) -> ConfirmationGroup | None:
    return session.scalar(select(ConfirmationGroup).where(
        ConfirmationGroup.period_id == period_id,
        ConfirmationGroup.parent_unit_id == parent_unit_id))


def groups(session: Session, period_id: int) -> list[ConfirmationGroup]:
    return list(session.scalars(select(ConfirmationGroup)
                                .where(ConfirmationGroup.period_id == period_id)
                                .order_by(ConfirmationGroup.id)))


def period_items(session: Session, period_id: int) -> list[ConfirmationItem]:
    return list(session.scalars(
        select(ConfirmationItem).join(ConfirmationGroup)
        .where(ConfirmationGroup.period_id == period_id)
        .options(joinedload(ConfirmationItem.unit)).order_by(ConfirmationItem.id)))


def item(session: Session, item_id: int) -> ConfirmationItem | None:
    return session.get(ConfirmationItem, item_id)


def item_for_unit(session: Session, period_id: int, unit_id: int) -> ConfirmationItem | None:
    return session.scalar(select(ConfirmationItem).join(ConfirmationGroup).where(
        ConfirmationGroup.period_id == period_id, ConfirmationItem.unit_id == unit_id))


def items_for_units(session: Session, unit_ids: Sequence[int], statuses: Sequence[str]
                    ) -> list[ConfirmationItem]:
    """Items of these units (any period) in these statuses, newest group first."""
    if not unit_ids:
        return []
    return list(session.scalars(
        select(ConfirmationItem).join(ConfirmationGroup)
        .where(ConfirmationItem.unit_id.in_(list(unit_ids)),
               ConfirmationItem.status.in_(list(statuses)))
        .options(joinedload(ConfirmationItem.unit), joinedload(ConfirmationItem.group))
        .order_by(ConfirmationGroup.opened_at.desc(), ConfirmationItem.id)))


def open_appeals(session: Session, item_ids: Sequence[int]) -> list[Appeal]:
    if not item_ids:
        return []
    return list(session.scalars(select(Appeal).where(Appeal.item_id.in_(list(item_ids)),
                                                     Appeal.status == "open")))


def appeal(session: Session, appeal_id: int) -> Appeal | None:
    return session.get(Appeal, appeal_id)


def period_appeals(session: Session, period_id: int) -> list[Appeal]:
    return list(session.scalars(select(Appeal).where(Appeal.period_id == period_id)
                                .options(joinedload(Appeal.unit)).order_by(Appeal.id)))


def unit_heads(session: Session, unit_ids: Sequence[int], roles: Sequence[str]
               ) -> dict[int, list[int]]:
    """Unit id -> ids of the active users holding one of ``roles`` exactly on that unit."""
    out: dict[int, list[int]] = {u: [] for u in unit_ids}
    if not unit_ids:
        return out
    rows = session.execute(
        select(RoleGrant.unit_id, RoleGrant.user_id).join(User, User.id == RoleGrant.user_id)
        .where(RoleGrant.unit_id.in_(list(unit_ids)), RoleGrant.role.in_(list(roles)),
               User.active).order_by(RoleGrant.user_id))
    for unit_id, user_id in rows:
        if user_id not in out[unit_id]:
            out[unit_id].append(user_id)
    return out


def headed_units(session: Session, user_id: int, roles: Sequence[str]) -> list[int]:
    """The units a user heads (grants of ``roles`` on exactly that unit)."""
    return list(session.scalars(select(RoleGrant.unit_id).where(
        RoleGrant.user_id == user_id, RoleGrant.role.in_(list(roles)))))


def active_children(session: Session, parent_ids: Sequence[int]) -> dict[int, list[OrgUnit]]:
    out: dict[int, list[OrgUnit]] = {p: [] for p in parent_ids}
    if not parent_ids:
        return out
    for u in session.scalars(select(OrgUnit).where(OrgUnit.parent_id.in_(list(parent_ids)),
                                                   OrgUnit.active).order_by(OrgUnit.code)):
        out[u.parent_id].append(u)  # type: ignore[index]
    return out


def units_per_depth(session: Session, plan_id: int) -> dict[int, int]:
    """How many units of a plan sit at each depth."""
    rows = session.execute(select(OrgUnit.depth, func.count()).join(
        PlanUnit, PlanUnit.unit_id == OrgUnit.id).where(PlanUnit.plan_id == plan_id)
        .group_by(OrgUnit.depth))
    return {int(d): int(n) for d, n in rows}


def item_units_in(session: Session, period_id: int, paths: Sequence[str]) -> list[int]:
    """Ids of units with an item in the period inside ``paths``."""
    return list(session.scalars(
        select(ConfirmationItem.unit_id).join(ConfirmationGroup)
        .join(OrgUnit, OrgUnit.id == ConfirmationItem.unit_id)
        .where(ConfirmationGroup.period_id == period_id,
               or_(in_paths(paths)))))


def plan_tree(session: Session, plan_id: int) -> list[tuple[int, int | None, str, int]]:
    """(unit id, parent id, path, target) of every unit of a plan."""
    rows = session.execute(select(OrgUnit.id, OrgUnit.parent_id, OrgUnit.path, PlanUnit.target)
                           .join(PlanUnit, PlanUnit.unit_id == OrgUnit.id)
                           .where(PlanUnit.plan_id == plan_id))
    return [(int(u), p, path, int(t)) for u, p, path, t in rows]


def open_items_in(session: Session, paths: Sequence[str], statuses: Sequence[str]
                  ) -> list[ConfirmationItem]:
    """Items of open groups for units inside ``paths`` in these statuses, tree order."""
    return list(session.scalars(
        select(ConfirmationItem).join(ConfirmationGroup)
        .join(OrgUnit, OrgUnit.id == ConfirmationItem.unit_id)
        .where(ConfirmationGroup.status == "open", ConfirmationItem.status.in_(list(statuses)),
               in_paths(paths))
        .options(joinedload(ConfirmationItem.unit),
                 joinedload(ConfirmationItem.group).joinedload(ConfirmationGroup.period))
        .order_by(ConfirmationGroup.period_id.desc(), OrgUnit.path)))


def lock_group(session: Session, group_id: int) -> ConfirmationGroup | None:
    """The group, row-locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite
    serialises writers anyway), so two answers that complete a group see each other."""
    return session.scalars(select(ConfirmationGroup).where(ConfirmationGroup.id == group_id)
                           .with_for_update().execution_options(populate_existing=True)
                           ).one_or_none()


def item_statuses(session: Session, group_id: int) -> list[str]:
    """The group's item statuses as stored now (after this transaction's own flushes)."""
    return list(session.scalars(select(ConfirmationItem.status)
                                .where(ConfirmationItem.group_id == group_id)))


def lock_period(session: Session, period_id: int) -> None:
    """Row-lock the period (PostgreSQL): publishing and new plan versions of one period
    happen one at a time, so a period never has two published plans."""
    session.execute(select(Period.id).where(Period.id == period_id).with_for_update())
