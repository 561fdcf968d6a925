"""Outbox (events written in the same transaction as their cause), deliveries per channel, the in-app inbox."""

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
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quotaflow.store.models import Base, utcnow

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class OutboxEvent(Base):
    """Something that happened, written in the same transaction as the change that caused it.

    ``key`` is the event's idempotency key: emitting an event with a key already stored
    adds nothing.
    """

    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[Any] = mapped_column(JSON)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"))
    to_users: Mapped[Any] = mapped_column(JSON)  # list of user ids
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    deliveries: Mapped[list[OutboxDelivery]] = relationship(
        back_populates="event", order_by="OutboxDelivery.id"
    )


class OutboxDelivery(Base):
    """One event to one channel (and one person, for per-person channels), with its retries.

    ``key`` (event key + channel [+ recipient]) is unique and is the idempotency key the
    channel passes to the receiver. A worker claims a row by setting ``claimed_by`` and
    ``locked_until`` (its lease); a crashed worker's row is due again once the lease ends.
    """

    __tablename__ = "outbox_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    event: Mapped[OutboxEvent] = relationship(back_populates="deliveries")

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_outbox_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )


class InboxMessage(Base):
    """A message in a person's in-app inbox; one per (user, event)."""

    __tablename__ = "inbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"))
    topic: Mapped[str] = mapped_column(String(64))
    title_en: Mapped[str] = mapped_column(String(300))
    title_zh: Mapped[str] = mapped_column(String(300))
    body_en: Mapped[str] = mapped_column(Text, default="")
    body_zh: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "event_id", name="uq_inbox_messages_user_event"),
        Index("ix_inbox_messages_user_id_created_at", "user_id", "created_at"),
    )

    def title(self, locale: str) -> str:
        return (self.title_zh or self.title_en) if locale.startswith("zh") else (self.title_en or self.title_zh)

    def body(self, locale: str) -> str:
        return (self.body_zh or self.body_en) if locale.startswith("zh") else (self.body_en or self.body_zh)
