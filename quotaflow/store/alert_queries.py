"""SQL of stored alerts and scan runs (the tracking aggregate): reads pages and use
cases share, and the guarded acknowledgement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session, joinedload

from quotaflow.store.models import OrgUnit, Plan
from quotaflow.store.queries import in_paths
from quotaflow.store.tracking_models import Alert, ScanRun


def alert(session: Session, alert_id: int) -> Alert | None:
    """One alert with its unit and period loaded."""
    return session.scalar(select(Alert).options(joinedload(Alert.unit), joinedload(Alert.period))
                          .where(Alert.id == alert_id))


def alerts_in_scope(session: Session, paths: Sequence[str], *, period_id: int | None,
                    status: str | None, week: int | None, severity_order: Mapping[str, int],
                    limit: int, offset: int, without_plan_status: str | None = None
                    ) -> list[Alert]:
    """Alerts of units inside ``paths``: newest week first, then by severity and unit
    (alerts raised against a plan of status ``without_plan_status`` left out)."""
    stmt = (select(Alert).join(OrgUnit, OrgUnit.id == Alert.unit_id)
            .options(joinedload(Alert.unit), joinedload(Alert.period),
                     joinedload(Alert.acknowledged_by))
            .where(in_paths(paths)))
    if period_id is not None:
        stmt = stmt.where(Alert.period_id == period_id)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if week is not None:
        stmt = stmt.where(Alert.week == week)
    if without_plan_status is not None:
        stmt = stmt.outerjoin(Plan, Plan.id == Alert.plan_id).where(
            or_(Alert.plan_id.is_(None), Plan.status != without_plan_status))
    # The whole order in SQL, so that a page (limit/offset) is a slice of it: sorting a
    # page afterwards would let a low alert of page 1 hide a high one on page 2.
    severity = case(dict(severity_order), value=Alert.severity, else_=len(severity_order))
    stmt = stmt.order_by(Alert.week.desc(), severity, OrgUnit.depth, OrgUnit.code, Alert.rule,
                         Alert.id)
    return list(session.scalars(stmt.offset(offset).limit(limit)).unique())


def last_run(session: Session, period_id: int) -> ScanRun | None:
    return session.scalar(select(ScanRun).where(ScanRun.period_id == period_id)
                          .order_by(ScanRun.id.desc()).limit(1))


def acknowledge_open(session: Session, alert_id: int, user_id: int, at: dt.datetime) -> bool:
    """Mark the alert acknowledged if it is still open; whether this call changed it
    (guarded by the row's status, so of two people at once only one does)."""
    changed = session.execute(
        update(Alert).where(Alert.id == alert_id, Alert.status == "open")
        .values(status="acknowledged", acknowledged_by_id=user_id, acknowledged_at=at)
        .execution_options(synchronize_session=False)).rowcount
    return changed == 1
