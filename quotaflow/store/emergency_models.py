"""Emergency recomputes: a request to re-run a period's published plan with some units
frozen (e.g. the cities a local policy change froze), decided by a fast-track flow.

``frozen`` holds the codes of every unit kept at its target (the chosen units, the
chosen cities' teams and people, and everything below them), resolved when the
request was made; ``summary`` the preview the approvers saw and, once published, the
diff of the new version (``result_plan_id``) against the plan it replaced.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, Period, Plan, User, utcnow

RECOMPUTE_STATUSES = ("pending", "published", "rejected", "withdrawn")


class EmergencyRecompute(Base):
    """One emergency recompute request and what became of it."""

    __tablename__ = "emergency_recomputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))  # the plan it started from
    cities: Mapped[Any] = mapped_column(JSON)  # chosen cities (English names)
    unit_codes: Mapped[Any] = mapped_column(JSON)  # chosen unit codes
    frozen: Mapped[Any] = mapped_column(JSON)  # every frozen unit's code
    total: Mapped[int | None] = mapped_column(BigInteger)  # a new company total, if any
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    flow_instance_id: Mapped[int | None] = mapped_column(ForeignKey("flow_instances.id"))
    result_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    summary: Mapped[Any] = mapped_column(JSON)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    period: Mapped[Period] = relationship()
    plan: Mapped[Plan] = relationship(foreign_keys=[plan_id])
    result_plan: Mapped[Plan | None] = relationship(foreign_keys=[result_plan_id])
    requested_by: Mapped[User] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'published', 'rejected', 'withdrawn')",
                        name="status"),
        CheckConstraint("total IS NULL OR total > 0", name="total_positive"),
    )
