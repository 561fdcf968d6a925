"""Reads and writes of the outbox aggregate: events, their deliveries (and the worker's
claims on them) and the in-app inbox messages they become."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from quotaflow.store.models import SpecVersion, User
from quotaflow.store.outbox_models import InboxMessage, OutboxDelivery, OutboxEvent

# --- emitting ---------------------------------------------------------------------------


def active_spec_contents(session: Session, kind: str) -> list[Any]:
    """The contents of every active spec of ``kind`` (the notification routes), in key order."""
    return list(session.scalars(
        select(SpecVersion.content).where(SpecVersion.kind == kind,
                                          SpecVersion.status == "active")
        .order_by(SpecVersion.key)))


def users_active(session: Session, user_ids: Iterable[int]) -> dict[int, bool]:
    """User id -> whether the account is active, for those of ``user_ids`` that exist."""
    return dict(session.execute(
        select(User.id, User.active).where(User.id.in_(list(user_ids)))).all())


def event_id_with_key(session: Session, key: str) -> int | None:
    """The id of the event stored under the idempotency key ``key``, if any."""
    return session.scalar(select(OutboxEvent.id).where(OutboxEvent.key == key))


# --- status -----------------------------------------------------------------------------


def delivery_counts(session: Session) -> list[Row[tuple[str, str, bool, int]]]:
    """(channel, status, whether the last try failed, how many) over all deliveries."""
    has_error = OutboxDelivery.last_error.is_not(None)
    return list(session.execute(
        select(OutboxDelivery.channel, OutboxDelivery.status, has_error, func.count())
        .group_by(OutboxDelivery.channel, OutboxDelivery.status, has_error)).all())


def failed_deliveries(session: Session, limit: int) -> list[OutboxDelivery]:
    """Dead deliveries (event loaded), newest first."""
    return list(session.scalars(
        select(OutboxDelivery).options(selectinload(OutboxDelivery.event))
        .where(OutboxDelivery.status == "failed")
        .order_by(OutboxDelivery.id.desc()).limit(limit)))


def waiting_after_error(session: Session, limit: int) -> list[OutboxDelivery]:
    """Pending deliveries whose last try failed (event loaded), newest first."""
    return list(session.scalars(
        select(OutboxDelivery).options(selectinload(OutboxDelivery.event))
        .where(OutboxDelivery.status == "pending", OutboxDelivery.last_error.is_not(None))
        .order_by(OutboxDelivery.id.desc()).limit(limit)))


# --- purging ----------------------------------------------------------------------------


def _delivered_before(cutoff: dt.datetime) -> tuple[Any, ...]:
    return (OutboxDelivery.status == "delivered",
            func.coalesce(OutboxDelivery.delivered_at, OutboxDelivery.created_at) < cutoff)


def events_delivered_before(session: Session, cutoff: dt.datetime) -> set[int]:
    """Ids of the events with a delivery delivered (else created) before ``cutoff``."""
    return set(session.scalars(
        select(OutboxDelivery.event_id).where(*_delivered_before(cutoff)).distinct()))


def delete_delivered_before(session: Session, cutoff: dt.datetime) -> int:
    """Delete the deliveries delivered (else created) before ``cutoff``; how many."""
    return session.execute(
        delete(OutboxDelivery).where(*_delivered_before(cutoff))
        .execution_options(synchronize_session=False)).rowcount or 0  # type: ignore[attr-defined]


def unreferenced_events(session: Session, event_ids: Iterable[int]) -> list[int]:
    """Those of ``event_ids`` no delivery and no inbox message refers to, in id order."""
    return sorted(set(session.scalars(
        select(OutboxEvent.id).where(
            OutboxEvent.id.in_(sorted(event_ids)),
            ~select(OutboxDelivery.id).where(OutboxDelivery.event_id == OutboxEvent.id).exists(),
            ~select(InboxMessage.id).where(InboxMessage.event_id == OutboxEvent.id).exists()))))


def delete_events(session: Session, event_ids: Sequence[int], chunk: int = 500) -> int:
    """Delete the events ``event_ids`` (``chunk`` ids a statement); how many."""
    deleted = 0
    for start in range(0, len(event_ids), chunk):
        deleted += session.execute(
            delete(OutboxEvent).where(OutboxEvent.id.in_(list(event_ids[start:start + chunk])))
            .execution_options(synchronize_session=False)).rowcount or 0  # type: ignore[attr-defined]
    return deleted


# --- the inbox --------------------------------------------------------------------------


def unread_count(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(InboxMessage).where(
        InboxMessage.user_id == user_id, InboxMessage.read_at.is_(None))) or 0


def inbox_messages(session: Session, user_id: int, limit: int = 200) -> list[InboxMessage]:
    """A person's messages, newest event first (not delivery order: one worker run may
    deliver a later event before an earlier one)."""
    return list(session.scalars(
        select(InboxMessage).join(OutboxEvent, OutboxEvent.id == InboxMessage.event_id)
        .where(InboxMessage.user_id == user_id)
        .order_by(OutboxEvent.created_at.desc(), OutboxEvent.id.desc()).limit(limit)))


def inbox_message(session: Session, user_id: int, message_id: int) -> InboxMessage | None:
    """One of the user's own messages (None for anyone else's)."""
    return session.scalar(select(InboxMessage).where(InboxMessage.id == message_id,
                                                     InboxMessage.user_id == user_id))


def unread_messages(session: Session, user_id: int,
                    message_id: int | None = None) -> list[InboxMessage]:
    """The user's unread messages (``message_id``: only that one, if unread)."""
    query = select(InboxMessage).where(InboxMessage.user_id == user_id,
                                       InboxMessage.read_at.is_(None))
    if message_id is not None:
        query = query.where(InboxMessage.id == message_id)
    return list(session.scalars(query))


def inbox_message_id_for_event(session: Session, user_id: int, event_id: int) -> int | None:
    """The id of the user's message about the event ``event_id``, if it was written."""
    return session.scalar(select(InboxMessage.id).where(InboxMessage.user_id == user_id,
                                                        InboxMessage.event_id == event_id))


# --- the worker's claims ----------------------------------------------------------------


def _due(now: dt.datetime, skip_channels: Collection[str] = ()) -> Any:
    due = and_(OutboxDelivery.status == "pending", OutboxDelivery.next_attempt_at <= now,
               or_(OutboxDelivery.locked_until.is_(None), OutboxDelivery.locked_until <= now))
    if skip_channels:
        due = and_(due, OutboxDelivery.channel.not_in(sorted(skip_channels)))
    return due


def note_waiting(session: Session, channel: str, reason: str, max_chars: int) -> int:
    """Set ``reason`` (its first ``max_chars``) as the last error of the channel's pending
    deliveries that do not say so yet; how many changed."""
    result = session.execute(
        update(OutboxDelivery)
        .where(OutboxDelivery.status == "pending", OutboxDelivery.channel == channel,
               or_(OutboxDelivery.last_error.is_(None), OutboxDelivery.last_error != reason))
        .values(last_error=reason[:max_chars])
        .execution_options(synchronize_session=False))
    return result.rowcount  # type: ignore[attr-defined]


def claim_due(session: Session, now: dt.datetime, token: str, batch: int,
              lease_end: dt.datetime, skip_channels: Collection[str] = ()) -> list[int]:
    """Mark up to ``batch`` deliveries due at ``now`` as ``token``'s until ``lease_end``;
    their ids. Two workers never claim the same row: PostgreSQL picks the candidates with
    ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite claims with one conditional UPDATE."""
    order = (OutboxDelivery.next_attempt_at, OutboxDelivery.id)
    due = _due(now, skip_channels)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(select(OutboxDelivery.id).where(due).order_by(*order)
                                   .limit(batch).with_for_update(skip_locked=True)))
        if ids:
            session.execute(update(OutboxDelivery).where(OutboxDelivery.id.in_(ids))
                            .values(claimed_by=token, locked_until=lease_end)
                            .execution_options(synchronize_session=False))
        return ids
    # One statement: SQLite runs one writer at a time, and the row conditions are checked
    # again by the UPDATE itself, so a row is claimed by one worker only.
    candidates = select(OutboxDelivery.id).where(due).order_by(*order).limit(batch)
    session.execute(update(OutboxDelivery)
                    .where(OutboxDelivery.id.in_(candidates.scalar_subquery()), due)
                    .values(claimed_by=token, locked_until=lease_end)
                    .execution_options(synchronize_session=False))
    return list(session.scalars(select(OutboxDelivery.id)
                                .where(OutboxDelivery.claimed_by == token,
                                       OutboxDelivery.status == "pending")
                                .order_by(OutboxDelivery.id)))


def record_if_claimed(session: Session, delivery_id: int, token: str, **values: Any) -> bool:
    """Write ``values`` and release the claim, if ``token`` still holds the pending row."""
    result = session.execute(
        update(OutboxDelivery)
        .where(OutboxDelivery.id == delivery_id, OutboxDelivery.claimed_by == token,
               OutboxDelivery.status == "pending")
        .values(claimed_by=None, locked_until=None, **values)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]
