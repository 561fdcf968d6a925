"""Background jobs inside the server: job leases and the weekly alert scan schedule.

Several server processes (gunicorn workers, or several machines) each run the same
scheduler thread; a **lease** row in ``job_leases`` decides which one does a job. A
lease is taken when it is free, expired, or already held by the caller (renewal); the
database decides atomically (one conditional UPDATE, or one INSERT guarded by the
primary key), so two processes never both hold it. Lease calls are their own
transactions (they commit), separate from the job's own.

The alert scan runs when ``QUOTAFLOW_ALERT_SCHEDULE`` is set, e.g. ``"MON 07:00"``
(weekday and time in the app's time zone, ``BABEL_DEFAULT_TIMEZONE``). At each slot, the
worker that takes the lease scans the week that ended before the slot (the week of the
slot's previous day) of the period holding that day, unless a scheduled scan for this
slot is already recorded in ``scan_runs``. A worker that dies mid-scan loses nothing:
the scan commits whole, the lease expires, and another worker retries the slot (for
:data:`GRACE` after it).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow.services.uow import unit_of_work
from quotaflow.store import job_queries
from quotaflow.store.models import Period, utcnow
from quotaflow.store.tracking_models import JobLease

log = logging.getLogger(__name__)

SCAN_JOB = "alert_scan"
#: How long a lease lasts without renewal.
LEASE_TTL = dt.timedelta(minutes=10)
#: How long after its slot a missed scan is still run.
GRACE = dt.timedelta(hours=6)
#: How often the scheduler thread looks at the clock.
POLL_SECONDS = 60.0
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def holder_id() -> str:
    """This process's name for leases: host, pid and a random part."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------- leases


def acquire(session: Session, name: str, holder: str, ttl: dt.timedelta = LEASE_TTL,
            now: dt.datetime | None = None) -> bool:
    """Take (or renew) the lease ``name`` for ``ttl``; commits. True if ``holder`` has it."""
    now = now or utcnow()
    try:
        with unit_of_work(session):  # one short transaction per lease
            if job_queries.take_lease_if_free(session, name, holder, now, now + ttl):
                return True
            if job_queries.lease_exists(session, name):
                return False
            session.add(JobLease(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
        return True
    except IntegrityError:  # another process inserted it first
        return False


def release(session: Session, name: str, holder: str) -> bool:
    """Give the lease back if ``holder`` has it; commits. True if it was released."""
    with unit_of_work(session):
        return job_queries.delete_lease(session, name, holder)


def lease_holder(session: Session, name: str, now: dt.datetime | None = None) -> str | None:
    """Who holds the lease now (None if nobody, or it expired)."""
    now = now or utcnow()
    row = session.get(JobLease, name)
    if row is None or row.expires_at <= now:
        return None
    return row.holder


# ---------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    weekday: int  # 0 = Monday
    at: dt.time
    zone: str = "Asia/Shanghai"

    def last_slot(self, now_utc: dt.datetime) -> dt.datetime:
        """The latest slot at or before ``now_utc`` (naive UTC in, naive UTC out)."""
        tz = ZoneInfo(self.zone)
        local = now_utc.replace(tzinfo=dt.UTC).astimezone(tz)
        days = (local.weekday() - self.weekday) % 7
        day = local.date() - dt.timedelta(days=days)
        slot = dt.datetime.combine(day, self.at, tzinfo=tz)
        if slot > local:
            slot -= dt.timedelta(days=7)
        return slot.astimezone(dt.UTC).replace(tzinfo=None)


def parse_schedule(text: str, zone: str = "Asia/Shanghai") -> Schedule:
    """``"MON 07:00"`` -> Schedule; ValueError naming what is wrong otherwise."""
    parts = text.strip().upper().split()
    if len(parts) != 2 or parts[0][:3] not in WEEKDAYS:
        raise ValueError(f"alert schedule {text!r}: expected a weekday and a time such as "
                         "'MON 07:00'")
    try:
        at = dt.time.fromisoformat(parts[1])
    except ValueError:
        raise ValueError(f"alert schedule {text!r}: {parts[1]!r} is not a time such as "
                         "07:00") from None
    ZoneInfo(zone)  # an unknown zone fails here, at start-up
    return Schedule(WEEKDAYS.index(parts[0][:3]), at, zone)


def week_to_scan(session: Session, slot_local_date: dt.date) -> tuple[Period, int] | None:
    """The period and week holding the day before the slot (the week just ended)."""
    day = slot_local_date - dt.timedelta(days=1)
    return job_queries.period_week_holding(session, day)


def run_due(session: Session, schedule: Schedule, holder: str,
            now: dt.datetime | None = None) -> Any:
    """Run the scheduled scan if a slot is due, this holder gets the lease and the slot
    was not scanned yet. Returns the ScanResult, or None when there was nothing to do."""
    from quotaflow.services import alert_scan

    now = now or utcnow()
    slot = schedule.last_slot(now)
    if now - slot > GRACE:
        return None
    if not acquire(session, SCAN_JOB, holder, now=now):
        return None
    try:
        with unit_of_work(session):  # the reads end before the scan's own transaction
            if job_queries.scheduled_scan_since(session, slot) is not None:
                return None
            local = slot.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(schedule.zone)).date()
            target = week_to_scan(session, local)
        if target is None:
            return None
        period, week = target
        return alert_scan.scan(session, period, week, trigger="schedule")
    finally:
        release(session, SCAN_JOB, holder)


class AlertScheduler(threading.Thread):
    """A daemon thread that runs :func:`run_due` every :data:`POLL_SECONDS`."""

    def __init__(self, engine: Any, schedule: Schedule, poll: float = POLL_SECONDS) -> None:
        super().__init__(name="quotaflow-alert-scheduler", daemon=True)
        self.engine = engine
        self.schedule = schedule
        self.poll = poll
        self.holder = holder_id()
        self.stopped = threading.Event()

    def run(self) -> None:
        # The first look comes one poll after start, so a short CLI command that builds
        # the app (``quotaflow db upgrade``) is over before any scan could start.
        while not self.stopped.wait(self.poll):
            try:
                with Session(bind=self.engine, expire_on_commit=False) as session:
                    result = run_due(session, self.schedule, self.holder)
                if result is not None:
                    log.info("scheduled alert scan of %s week %s: %s new alert(s)",
                             result.period, result.week, len(result.raised))
            except Exception:  # keep the thread alive; the next poll retries
                log.exception("scheduled alert scan failed")

    def stop(self) -> None:
        self.stopped.set()


def start_scheduler(app: Any) -> AlertScheduler | None:
    """Start the scan schedule of ``app`` if ``ALERT_SCHEDULE`` is set (else None)."""
    text = (app.config.get("ALERT_SCHEDULE") or "").strip()
    if not text:
        return None
    from quotaflow.store import db

    schedule = parse_schedule(text, app.config.get("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai"))
    thread = AlertScheduler(db.engine, schedule)
    thread.start()
    app.extensions["quotaflow_alert_scheduler"] = thread
    return thread
