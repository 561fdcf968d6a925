"""Reads and writes of background jobs: job leases, scan runs, and the period week a
scheduled scan covers."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from quotaflow.store.models import Period, PeriodWeek
from quotaflow.store.tracking_models import JobLease, ScanRun


def take_lease_if_free(session: Session, name: str, holder: str, now: dt.datetime,
                       expires_at: dt.datetime) -> bool:
    """Give the lease ``name`` to ``holder`` if it is expired or theirs already, in one
    conditional UPDATE (the database decides); False if it is held or does not exist."""
    taken = session.execute(
        update(JobLease).where(JobLease.name == name,
                               or_(JobLease.expires_at <= now, JobLease.holder == holder))
        .values(holder=holder, acquired_at=now, expires_at=expires_at)
        .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    return taken == 1


def lease_exists(session: Session, name: str) -> bool:
    return session.scalar(select(JobLease.name).where(JobLease.name == name)) is not None


def delete_lease(session: Session, name: str, holder: str) -> bool:
    """Delete the lease ``name`` if ``holder`` has it; whether it did."""
    gone = session.execute(delete(JobLease).where(JobLease.name == name,
                                                  JobLease.holder == holder)
                           .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    return gone == 1


def period_week_holding(session: Session, day: dt.date) -> tuple[Period, int] | None:
    """The period and week number whose week holds ``day``."""
    row = session.execute(select(Period, PeriodWeek.week_no)
                          .join(PeriodWeek, PeriodWeek.period_id == Period.id)
                          .where(PeriodWeek.start_date <= day, PeriodWeek.end_date >= day)
                          ).first()
    return (row[0], int(row[1])) if row else None


def scheduled_scan_since(session: Session, since: dt.datetime) -> int | None:
    """The id of a scheduled scan run started at or after ``since``, if any."""
    return session.scalar(select(ScanRun.id).where(ScanRun.trigger == "schedule",
                                                   ScanRun.started_at >= since).limit(1))
