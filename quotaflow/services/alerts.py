"""Stored alerts: list them within a scope, acknowledge one, render them as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import Forbidden, NotFound, QuotaFlowError
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services.access import readable
from quotaflow.services.auth import actor
from quotaflow.services.plan_reads import DRAFT, sees_drafts
from quotaflow.services.uow import Context, unit_of_work, use_case
from quotaflow.store import alert_queries
from quotaflow.store.models import Period, Plan, User, utcnow
from quotaflow.store.tracking_models import ALERT_STATUSES, Alert, ScanRun

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


class AlertError(QuotaFlowError):
    domain = "alert"
    CODES = messages.register(domain, {
        "bad_status": _l("The status is one of %(statuses)s."),
    })


def alerts_in_scope(session: Session, paths: Sequence[str], *, period_id: int | None = None,
                    status: str | None = None, week: int | None = None,
                    limit: int = 500, offset: int = 0, drafts: bool = True) -> list[Alert]:
    """Alerts of units inside ``paths``: newest week first, then by severity and unit.
    Without ``drafts``, alerts raised against a plan still in draft are left out: their
    figures are an unpublished target's."""
    if status is not None and status not in ALERT_STATUSES:
        raise AlertError("bad_status", "/status", statuses=", ".join(ALERT_STATUSES))
    return alert_queries.alerts_in_scope(
        session, paths, period_id=period_id, status=status, week=week,
        severity_order=SEVERITY_ORDER, limit=limit, offset=offset,
        without_plan_status=None if drafts else DRAFT)


def last_run(session: Session, period_id: int) -> ScanRun | None:
    return alert_queries.last_run(session, period_id)


def acknowledge(session: Session, alert: Alert, actor: User, *,
                remote_addr: str | None = None) -> Alert:
    """Mark an open alert acknowledged (audited, committed). Acknowledging again is a
    no-op, so two people clicking at once both see it acknowledged."""
    with unit_of_work(session):
        now = utcnow()
        # Guarded by the row's status, so of two people acknowledging at once only one
        # changes it (and is audited); the other sees it acknowledged.
        if alert_queries.acknowledge_open(session, alert.id, actor.id, now):
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
    return alerts_in_scope(ctx.session, paths, period_id=period_id, status=status, limit=limit,
                           drafts=sees_drafts(ctx.principal))


def last_scan(ctx: Context, period_id: int) -> ScanRun | None:
    return last_run(ctx.session, period_id)


def readable_alert(ctx: Context, alert_id: int) -> Alert:
    """The alert if the principal may read its unit (and, when it was raised against a
    draft plan, may read drafts); NotFound otherwise (no probing)."""
    found = readable(ctx.principal, alert_queries.alert(ctx.session, alert_id))
    if not sees_drafts(ctx.principal) and _against_draft(ctx, found):
        raise NotFound("not_found")
    return found


def _against_draft(ctx: Context, alert: Alert) -> bool:
    plan = ctx.session.get(Plan, alert.plan_id) if alert.plan_id is not None else None
    return plan is not None and plan.status == DRAFT


def can_acknowledge(ctx: Context, alert: Alert) -> bool:
    return alert.status == "open" and ctx.principal is not None and ctx.principal.can(
        "unit.write", alert.unit.path)


def scope_alerts(ctx: Context, *, period_id: int | None = None, status: str | None = None,
                 week: int | None = None, limit: int = 500, offset: int = 0) -> list[Alert]:
    """Alerts of the units in the caller's read scope, of a week and a page (the API's list;
    see :func:`alerts_in_scope`)."""
    paths = ctx.principal.scope_paths("unit.read") if ctx.principal is not None else ("/",)
    return alerts_in_scope(ctx.session, paths, period_id=period_id, status=status, week=week,
                           limit=limit, offset=offset, drafts=sees_drafts(ctx.principal))


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
