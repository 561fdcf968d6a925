"""Stored alerts: list them within a scope, acknowledge one, render them as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session, joinedload

from quotaflow import messages
from quotaflow.errors import Forbidden, QuotaFlowError
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.access import readable
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context, unit_of_work, use_case
from quotaflow.store import alert_queries
from quotaflow.store.models import OrgUnit, Period, User, utcnow
from quotaflow.store.queries import in_paths
from quotaflow.store.tracking_models import ALERT_STATUSES, Alert, ScanRun

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


class AlertError(QuotaFlowError):
    domain = "alert"
    CODES = messages.register(domain, {
        "bad_status": _l("The status is one of %(statuses)s."),
    })


def alerts_in_scope(session: Session, paths: Sequence[str], *, period_id: int | None = None,
                    status: str | None = None, week: int | None = None,
                    limit: int = 500, offset: int = 0) -> list[Alert]:
    """Alerts of units inside ``paths``: newest week first, then by severity and unit."""
    if status is not None and status not in ALERT_STATUSES:
        raise AlertError("bad_status", "/status", statuses=", ".join(ALERT_STATUSES))
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
    # The whole order in SQL, so that a page (limit/offset) is a slice of it: sorting a
    # page afterwards would let a low alert of page 1 hide a high one on page 2.
    severity = case(SEVERITY_ORDER, value=Alert.severity, else_=len(SEVERITY_ORDER))
    stmt = stmt.order_by(Alert.week.desc(), severity, OrgUnit.depth, OrgUnit.code, Alert.rule,
                         Alert.id)
    return list(session.scalars(stmt.offset(offset).limit(limit)).unique())


def last_run(session: Session, period_id: int) -> ScanRun | None:
    return session.scalar(select(ScanRun).where(ScanRun.period_id == period_id)
                          .order_by(ScanRun.id.desc()).limit(1))


def acknowledge(session: Session, alert: Alert, actor: User, *,
                remote_addr: str | None = None) -> Alert:
    """Mark an open alert acknowledged (audited, committed). Acknowledging again is a
    no-op, so two people clicking at once both see it acknowledged."""
    with unit_of_work(session):
        now = utcnow()
        # Guarded by the row's status, so of two people acknowledging at once only one
        # changes it (and is audited); the other sees it acknowledged.
        changed = session.execute(
            update(Alert).where(Alert.id == alert.id, Alert.status == "open")
            .values(status="acknowledged", acknowledged_by_id=actor.id, acknowledged_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if changed == 1:
            audit.record(session, actor, "acknowledge_alert", "alert", str(alert.id),
                         before={"status": "open"},
                         after={"status": "acknowledged", "unit": alert.unit.code,
                                "rule": alert.rule, "week": alert.week},
                         remote_addr=remote_addr)
    session.refresh(alert)
    return alert


def alert_json(alert: Alert) -> dict[str, Any]:
    period: Period = alert.period
    return {
        "id": alert.id, "rule": alert.rule, "unit": alert.unit.code, "level": alert.level,
        "unit_name_en": alert.unit.name_en, "unit_name_zh": alert.unit.name_zh,
        "period": period.code, "week": alert.week, "severity": alert.severity,
        "run": alert.run, "status": alert.status, "label_en": alert.label_en,
        "label_zh": alert.label_zh, "message_en": alert.message_en,
        "message_zh": alert.message_zh, "metrics": alert.metrics, "remedies": alert.remedies,
        "spec_versions": {"alert_rules": alert.rules_version_id,
                          "remedies": alert.remedies_version_id,
                          "pacing_curve": alert.pacing_version_id},
        "plan_id": alert.plan_id,
        "created_at": alert.created_at.isoformat() + "Z",
        "acknowledged_by": alert.acknowledged_by.username if alert.acknowledged_by else None,
        "acknowledged_at": alert.acknowledged_at.isoformat() + "Z"
        if alert.acknowledged_at else None,
    }


# -- use cases of the pages (and the API): the reader's context decides the scope ---------


def page_alerts(ctx: Context, period_id: int, status: str | None, limit: int = 500
                ) -> list[Alert]:
    """The period's alerts of units the principal may read."""
    paths = ctx.principal.scope_paths("unit.read") if ctx.principal is not None else ()
    return alerts_in_scope(ctx.session, paths, period_id=period_id, status=status, limit=limit)


def last_scan(ctx: Context, period_id: int) -> ScanRun | None:
    return last_run(ctx.session, period_id)


def readable_alert(ctx: Context, alert_id: int) -> Alert:
    """The alert if the principal may read its unit; NotFound otherwise (no probing)."""
    found = alert_queries.alert(ctx.session, alert_id)
    return readable(ctx.principal, found)


def can_acknowledge(ctx: Context, alert: Alert) -> bool:
    return alert.status == "open" and ctx.principal is not None and ctx.principal.can(
        "unit.write", alert.unit.path)


def scope_alerts(ctx: Context, *, period_id: int | None = None, status: str | None = None,
                 week: int | None = None, limit: int = 500, offset: int = 0) -> list[Alert]:
    """Alerts of the units in the caller's read scope, of a week and a page (the API's list;
    see :func:`alerts_in_scope`)."""
    paths = ctx.principal.scope_paths("unit.read") if ctx.principal is not None else ("/",)
    return alerts_in_scope(ctx.session, paths, period_id=period_id, status=status, week=week,
                           limit=limit, offset=offset)


@use_case
def acknowledge_alert(ctx: Context, alert_id: int) -> Alert:
    """Acknowledge an alert of a unit the principal may write (Forbidden if only read)."""
    found = readable_alert(ctx, alert_id)
    if not ctx.principal.can("unit.write", found.unit.path):
        raise Forbidden("forbidden")
    return acknowledge(ctx.session, found, actor(ctx), remote_addr=ctx.remote_addr)


def alerts_by_ids(ctx: Context, alert_ids: Sequence[int]) -> list[Alert]:
    """The alerts ``alert_ids`` (e.g. those a scan raised), in that order."""
    found = (alert_queries.alert(ctx.session, alert_id) for alert_id in alert_ids)
    return [alert for alert in found if alert is not None]
