"""Approval-flow instances: the interpreter's state, pinned to a flow spec version.

``flow_instances.state`` is the whole :class:`quotaflow.flows.FlowState` as JSON (its
history included); ``revision`` counts the steps applied and is the compare-and-swap
token of :func:`quotaflow.services.flows.act`. ``flow_tasks`` is a denormalised copy of
the state's tasks, rewritten on every step, so "my pending tasks" is one indexed query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, OrgUnit, SpecVersion, User, utcnow

FLOW_STATUSES = ("draft", "running", "approved", "rejected", "withdrawn")


class FlowInstance(Base):
    """One run of an approval flow about one subject (an appeal, a recompute, ...)."""

    __tablename__ = "flow_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"), index=True)
    flow_key: Mapped[str] = mapped_column(String(128))
    subject_type: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    initiator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[Any] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    flow_version: Mapped[SpecVersion] = relationship()
    unit: Mapped[OrgUnit] = relationship()
    initiator: Mapped[User] = relationship()

    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'running', 'approved', 'rejected', 'withdrawn')", name="status"
        ),
        CheckConstraint("revision >= 0", name="revision_not_negative"),
        Index("ix_flow_instances_subject", "subject_type", "subject_id"),
        Index("ix_flow_instances_status", "status"),
    )

    @property
    def data(self) -> dict[str, Any]:
        """The form data as it is now."""
        return dict((self.state or {}).get("data", {}))

    @property
    def ended(self) -> bool:
        return self.status in ("approved", "rejected", "withdrawn")


class FlowTask(Base):
    """One task of an instance (a copy of the state's task), for indexed look-ups."""

    __tablename__ = "flow_tasks"

    instance_id: Mapped[int] = mapped_column(ForeignKey("flow_instances.id"), primary_key=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    node: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    instance: Mapped[FlowInstance] = relationship()

    __table_args__ = (
        Index("ix_flow_tasks_user_id_status", "user_id", "status"),
        Index("ix_flow_tasks_status_due_at", "status", "due_at"),
    )
