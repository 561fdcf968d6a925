"""Two-way confirmation: sibling groups opened level by level, each unit's accept/appeal.

A group is one sibling group of a period (the children of ``parent_unit``) opened for
confirmation; each member has an item (pending -> accepted | appealed). An appeal asks
for another target within the policy's range and runs through an approval flow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, OrgUnit, Period, Plan, utcnow

GROUP_STATUSES = ("open", "settled")
ITEM_STATUSES = ("pending", "accepted", "appealed")
APPEAL_STATUSES = ("open", "approved", "rejected", "withdrawn")


class ConfirmationGroup(Base):
    """The children of ``parent_unit`` confirming their targets for a period."""

    __tablename__ = "confirmation_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    parent_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    level: Mapped[str] = mapped_column(String(32))  # the members' level key
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("spec_versions.id"))
    opened_plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    parent_unit: Mapped[OrgUnit] = relationship()
    period: Mapped[Period] = relationship()
    items: Mapped[list[ConfirmationItem]] = relationship(
        back_populates="group", order_by="ConfirmationItem.id")

    __table_args__ = (
        UniqueConstraint("period_id", "parent_unit_id",
                         name="uq_confirmation_groups_period_parent"),
        CheckConstraint("status IN ('open', 'settled')", name="status"),
    )


class ConfirmationItem(Base):
    """One unit's answer to its current target; ``version`` guards concurrent answers."""

    __tablename__ = "confirmation_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("confirmation_groups.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))  # the version of ``target``
    target: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    note_en: Mapped[str | None] = mapped_column(Text)
    note_zh: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    group: Mapped[ConfirmationGroup] = relationship(back_populates="items")
    unit: Mapped[OrgUnit] = relationship()
    plan: Mapped[Plan] = relationship()

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("group_id", "unit_id", name="uq_confirmation_items_group_unit"),
        CheckConstraint("status IN ('pending', 'accepted', 'appealed')", name="status"),
        CheckConstraint("target >= 0", name="target_not_negative"),
    )


class Appeal(Base):
    """A unit asking for another target, with its reason and evidence (upload ids).

    ``flow_instance_id`` is the approval flow running it; ``result_plan_id`` the plan
    version an approval produced.
    """

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("confirmation_items.id"), index=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    level: Mapped[str] = mapped_column(String(32))
    allocated: Mapped[int] = mapped_column(BigInteger)
    requested: Mapped[int] = mapped_column(BigInteger)
    approved: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[Any] = mapped_column(JSON)  # list of upload ids
    status: Mapped[str] = mapped_column(String(16), default="open")
    flow_key: Mapped[str] = mapped_column(String(128))
    flow_instance_id: Mapped[int | None] = mapped_column(ForeignKey("flow_instances.id"))
    result_plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    item: Mapped[ConfirmationItem] = relationship()
    unit: Mapped[OrgUnit] = relationship()

    __table_args__ = (
        CheckConstraint("status IN ('open', 'approved', 'rejected', 'withdrawn')",
                        name="status"),
        CheckConstraint("requested >= 0", name="requested_not_negative"),
    )
