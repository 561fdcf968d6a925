"""Reads and writes of approval flow instances and their task rows (the flow aggregate),
and the people, grants and units a flow's directory is built from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, joinedload

from quotaflow.store.flow_models import FlowInstance, FlowTask
from quotaflow.store.models import OrgUnit, RoleGrant, SpecVersion, User


def instance(session: Session, instance_id: int, *, fresh: bool = False) -> FlowInstance | None:
    """One instance; ``fresh`` reloads it from the database (after a step elsewhere)."""
    return session.get(FlowInstance, instance_id, populate_existing=fresh)


def active_flow_version(session: Session, kind: str, flow_key: str) -> SpecVersion | None:
    """The active version of the flow spec ``flow_key`` (``kind``: the flow spec kind)."""
    return session.scalar(select(SpecVersion).where(
        SpecVersion.kind == kind, SpecVersion.key == flow_key, SpecVersion.status == "active"))


# --- the directory's sources -------------------------------------------------------------


def grants_with_units(session: Session) -> list[Row[tuple[int, str, int, str, str, int | None]]]:
    """Every role grant as (user id, role, unit id, unit code, unit path, unit parent id),
    by user, role and unit path."""
    return list(session.execute(
        select(RoleGrant.user_id, RoleGrant.role, OrgUnit.id, OrgUnit.code, OrgUnit.path,
               OrgUnit.parent_id)
        .join(OrgUnit, OrgUnit.id == RoleGrant.unit_id)
        .order_by(RoleGrant.user_id, RoleGrant.role, OrgUnit.path)).all())


def unit_codes_and_parents(session: Session, unit_ids: Iterable[int]
                           ) -> dict[int, tuple[str, int | None]]:
    """Unit id -> (code, parent id) of the units ``unit_ids``."""
    return {unit_id: (code, parent_id) for unit_id, code, parent_id in session.execute(
        select(OrgUnit.id, OrgUnit.code, OrgUnit.parent_id).where(OrgUnit.id.in_(unit_ids)))}


def unit_codes(session: Session, unit_ids: Iterable[int]) -> dict[int, str]:
    """Unit id -> code of the units ``unit_ids``."""
    return dict(session.execute(
        select(OrgUnit.id, OrgUnit.code).where(OrgUnit.id.in_(unit_ids))).all())


def unit_paths(session: Session, unit_ids: Iterable[int]) -> dict[str, str]:
    """Unit code -> path of the units ``unit_ids``."""
    return dict(session.execute(
        select(OrgUnit.code, OrgUnit.path).where(OrgUnit.id.in_(unit_ids))).all())


def user_ids_by_username(session: Session, usernames: Iterable[str]) -> dict[str, int]:
    """Username -> user id of those of ``usernames`` that have an account."""
    names = sorted(set(usernames))
    if not names:
        return {}
    return dict(session.execute(
        select(User.username, User.id).where(User.username.in_(names))).all())


# --- writing a step ------------------------------------------------------------------------


def write_step(session: Session, instance_id: int, seen_revision: int, *, state: dict[str, Any],
               status: str, now: dt.datetime, ended_at: dt.datetime | None) -> bool:
    """Store a step if the instance is still at ``seen_revision`` (compare-and-swap on the
    revision, the same on SQLite and PostgreSQL); False if someone else stepped first."""
    done = session.execute(
        update(FlowInstance)
        .where(FlowInstance.id == instance_id, FlowInstance.revision == seen_revision)
        .values(state=state, status=status, revision=seen_revision + 1, updated_at=now,
                ended_at=ended_at)
        .execution_options(synchronize_session=False))
    return done.rowcount == 1  # type: ignore[attr-defined]


def replace_tasks(session: Session, instance_id: int, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace the instance's task rows with ``rows`` (dicts of FlowTask columns)."""
    session.execute(delete(FlowTask).where(FlowTask.instance_id == instance_id))
    if rows:
        session.execute(insert(FlowTask), list(rows))


# --- lists ---------------------------------------------------------------------------------


def due_instance_ids(session: Session, now: dt.datetime,
                     only: Iterable[int] | None = None) -> list[int]:
    """Ids of running instances with a pending task due at ``now`` (``only``: among these)."""
    query = (
        select(FlowTask.instance_id).join(FlowInstance, FlowInstance.id == FlowTask.instance_id)
        .where(FlowTask.status == "pending", FlowTask.due_at.is_not(None),
               FlowTask.due_at <= now, FlowInstance.status == "running"))
    if only is not None:
        query = query.where(FlowTask.instance_id.in_(list(only)))
    return list(session.scalars(query.distinct().order_by(FlowTask.instance_id)))


def _open_tasks_of(user_id: int) -> Any:
    return (FlowTask.user_id == user_id, FlowTask.status == "pending",
            FlowInstance.status == "running")


def open_tasks(session: Session, user_id: int) -> list[FlowTask]:
    """The user's tasks waiting for their decision (instance loaded), oldest due first."""
    return list(session.scalars(
        select(FlowTask).join(FlowInstance, FlowInstance.id == FlowTask.instance_id)
        .options(joinedload(FlowTask.instance))
        .where(*_open_tasks_of(user_id))
        .order_by(FlowTask.due_at.is_(None), FlowTask.due_at, FlowTask.instance_id,
                  FlowTask.task_id)))


def open_task_count(session: Session, user_id: int) -> int:
    """How many tasks wait for the user's decision."""
    return session.scalar(
        select(func.count()).select_from(FlowTask)
        .join(FlowInstance, FlowInstance.id == FlowTask.instance_id)
        .where(*_open_tasks_of(user_id))) or 0


def started_by(session: Session, user_id: int, limit: int = 100) -> list[FlowInstance]:
    """Instances the user started, newest first."""
    return list(session.scalars(
        select(FlowInstance).where(FlowInstance.initiator_id == user_id)
        .order_by(FlowInstance.id.desc()).limit(limit)))


def open_instances(session: Session, scope_paths: Iterable[str],
                   limit: int = 100) -> list[FlowInstance]:
    """Running or draft instances about units under ``scope_paths``, newest first."""
    paths = list(scope_paths)
    if not paths:
        return []
    return list(session.scalars(
        select(FlowInstance).join(OrgUnit, OrgUnit.id == FlowInstance.unit_id)
        .where(FlowInstance.status.in_(("running", "draft")),
               or_(*(OrgUnit.path.startswith(p) for p in paths)))
        .order_by(FlowInstance.id.desc()).limit(limit)))


def for_subject(session: Session, subject_type: str, subject_id: int) -> list[FlowInstance]:
    """Every instance about one subject, newest first."""
    return list(session.scalars(
        select(FlowInstance).where(FlowInstance.subject_type == subject_type,
                                   FlowInstance.subject_id == subject_id)
        .order_by(FlowInstance.id.desc())))
