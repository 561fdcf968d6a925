"""Commitment letters (KPI cards) and their signatures.

A letter's ``content`` is everything the card shows, frozen when it is issued, and
``content_sha256`` its hash; neither ever changes (guarded in
``quotaflow.services.letters``), and signatures are never changed or deleted. A later
plan version issues a new letter (``version`` + 1 within the unit).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, OrgUnit, Plan, User, utcnow

LETTER_STATUSES = ("issued", "signed", "countersigned", "superseded")
SIGNATURE_ROLES = ("person", "manager")


class CommitmentLetter(Base):
    """One person's KPI card for one plan version."""

    __tablename__ = "commitment_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... within the unit
    content: Mapped[Any] = mapped_column(JSON)
    content_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="issued", active_history=True)
    issued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("commitment_letters.id"),
                                                        active_history=True)

    plan: Mapped[Plan] = relationship()
    unit: Mapped[OrgUnit] = relationship()
    signatures: Mapped[list[LetterSignature]] = relationship(
        back_populates="letter", order_by="LetterSignature.signed_at", lazy="selectin")

    __table_args__ = (
        UniqueConstraint("unit_id", "version", name="uq_commitment_letters_unit_id_version"),
        UniqueConstraint("plan_id", "unit_id", name="uq_commitment_letters_plan_id_unit_id"),
        CheckConstraint("status IN ('issued', 'signed', 'countersigned', 'superseded')",
                        name="status"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    def signature(self, role: str) -> LetterSignature | None:
        return next((s for s in self.signatures if s.role == role), None)


class LetterSignature(Base):
    """A signature on a letter: who, when, and the hash of the content they signed."""

    __tablename__ = "letter_signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("commitment_letters.id"))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    content_sha256: Mapped[str] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))

    letter: Mapped[CommitmentLetter] = relationship(back_populates="signatures")
    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("letter_id", "role", name="uq_letter_signatures_letter_id_role"),
        CheckConstraint("role IN ('person', 'manager')", name="role"),
    )
