"""During the quarter: actuals, alerts raised by scans, scan runs, job leases.

Actuals are stored per person and date (never per week: a period's weeks are ISO weeks
clipped to the period, while sources report by their own calendars, so results are
bucketed into weeks when read). Roll-ups up the tree are computed, never stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, OrgUnit, Period, User, utcnow

ALERT_STATUSES = ("open", "acknowledged", "resolved")
SCAN_TRIGGERS = ("cli", "schedule", "web", "api", "test")


class Actual(Base):
    """One result of one person on one date from one source record.

    (unit, date, source, source_id) identifies the record: sending it again changes
    nothing; sending it with another value is an update (audited by the service).
    """

    __tablename__ = "actuals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    metric: Mapped[str] = mapped_column(String(64), default="sales")
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("unit_id", "date", "source", "source_id",
                         name="uq_actuals_unit_date_source"),
    )


class ScanRun(Base):
    """One alert scan of a period's week: when, by whom, what it found."""

    __tablename__ = "scan_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    week: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    trigger: Mapped[str] = mapped_column(String(16))
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    units: Mapped[int] = mapped_column(Integer, default=0)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    raised: Mapped[int] = mapped_column(Integer, default=0)
    existing: Mapped[int] = mapped_column(Integer, default=0)
    suppressed: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[Any] = mapped_column(JSON)

    period: Mapped[Period] = relationship()
    triggered_by: Mapped[User | None] = relationship()

    __table_args__ = (
        CheckConstraint("trigger IN ('cli', 'schedule', 'web', 'api', 'test')", name="trigger"),
        Index("ix_scan_runs_period_id_week", "period_id", "week"),
    )


class Alert(Base):
    """A rule that held for a unit at a week, pinned to the spec versions it ran under."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    week: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    run: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[Any] = mapped_column(JSON)
    label_en: Mapped[str] = mapped_column(String(200))
    label_zh: Mapped[str] = mapped_column(String(200))
    message_en: Mapped[str] = mapped_column(Text)
    message_zh: Mapped[str] = mapped_column(Text)
    remedies: Mapped[Any] = mapped_column(JSON)  # list of the top three, concrete
    rules_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"))
    remedies_version_id: Mapped[int | None] = mapped_column(ForeignKey("spec_versions.id"))
    pacing_version_id: Mapped[int | None] = mapped_column(ForeignKey("spec_versions.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    scan_run_id: Mapped[int | None] = mapped_column(ForeignKey("scan_runs.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    unit: Mapped[OrgUnit] = relationship()
    period: Mapped[Period] = relationship()
    acknowledged_by: Mapped[User | None] = relationship()

    __table_args__ = (
        UniqueConstraint("rule", "unit_id", "period_id", "week",
                         name="uq_alerts_rule_unit_period_week"),
        CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
        Index("ix_alerts_period_id_week", "period_id", "week"),
    )


class JobLease(Base):
    """Who runs a background job now: one row per job, taken until ``expires_at``."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
