"""The outbox worker: claims due deliveries, hands them to their channels, records the outcome.

Several workers may run at once (processes, hosts, threads). A worker claims a batch by
writing its run token and a lease end (``locked_until``) on the rows: on PostgreSQL the
candidates are picked with ``SELECT ... FOR UPDATE SKIP LOCKED``; on SQLite (one writer at
a time) one conditional ``UPDATE`` claims only rows that are still free. Every outcome is
recorded with ``WHERE claimed_by = <token>``, so a worker whose lease ran out cannot
overwrite the row another worker took over. A worker that dies mid-batch leaves its rows
locked until the lease ends; then they are due again (at-least-once to the channel, and the
same idempotency key every time, so a receiver that dedupes sees each event once).

Channels come from the plugin registry (:func:`build_channels`); their settings from the
app config ``CHANNELS`` or the ``QUOTAFLOW_CHANNELS`` environment variable (JSON, or
``@/path/to/file.json``). A routed channel without settings is not built: its deliveries
wait (``pending``, attempts unchanged, not claimed) with the reason as the last error, and
go out on the first run after the channel is configured. Deliveries of a channel no plugin
registers are looked at again every ``UNAVAILABLE_WAIT_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from quotaflow.channels import (
    Channel,
    ChannelInfo,
    Delivery,
    PermanentError,
    Recipient,
    RetryPolicy,
    TransientError,
)
from quotaflow.services.uow import unit_of_work
from quotaflow.store import outbox_queries
from quotaflow.store.models import User
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent

DEFAULT_BATCH = 50
DEFAULT_LEASE_SECONDS = 300.0
#: How long deliveries of a channel no plugin registers wait before the next look.
UNAVAILABLE_WAIT_SECONDS = 600.0
MAX_ERROR = 2000

SessionFactory = Callable[[], Session]


@dataclass
class RunResult:
    """What one :func:`run_once` did."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # newly noted as waiting for their channel (not configured/installed)
    lost: int = 0  # lease taken over by another worker before the outcome was recorded
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "delivered": self.delivered, "retried": self.retried,
                "failed": self.failed, "waiting": self.waiting, "lost": self.lost}


class ChannelConfigError(ValueError):
    """The channel settings (QUOTAFLOW_CHANNELS) cannot be read."""


def channel_settings(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per-channel settings: ``config["CHANNELS"]``, else the QUOTAFLOW_CHANNELS variable."""
    raw: Any = config.get("CHANNELS")
    source = "CHANNELS"
    if raw is None:
        raw = os.environ.get("QUOTAFLOW_CHANNELS", "").strip() or "{}"
        source = "QUOTAFLOW_CHANNELS"
    if isinstance(raw, str):
        if raw.startswith("@"):
            source = raw[1:]
            try:
                raw = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise ChannelConfigError(f"cannot read channel settings file {source}: {exc}") from exc
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ChannelConfigError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(raw, Mapping) or not all(isinstance(v, Mapping) for v in raw.values()):
        raise ChannelConfigError(f"{source} must be a JSON object of channel name -> settings object")
    return {str(name): value for name, value in raw.items()}


def build_channels(config: Mapping[str, Any], registry: Mapping[str, ChannelInfo] | None = None,
                   ) -> tuple[dict[str, Channel], dict[str, str]]:
    """Build every registered channel that can run: (channels, reasons the others cannot)."""
    if registry is None:
        from quotaflow.plugins import channel_registry

        registry = channel_registry()
    settings = channel_settings(config)
    base_url = str(config.get("BASE_URL") or os.environ.get("QUOTAFLOW_BASE_URL", ""))
    channels: dict[str, Channel] = {}
    unavailable: dict[str, str] = {}
    for name, info in sorted(registry.items()):
        own = settings.get(name)
        if own is None and info.needs_config:
            unavailable[name] = (f"channel {name!r} is not configured: add its settings to "
                                 f"QUOTAFLOW_CHANNELS[{name!r}]")
            continue
        try:
            channels[name] = info.factory({"base_url": base_url, **(own or {})})
        except Exception as exc:  # a plugin's own validation: any error means "not usable"
            unavailable[name] = f"channel {name!r} settings are invalid: {exc}"
    return channels, unavailable


def _worker_token(worker_id: str | None) -> str:
    base = worker_id or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base[:48]}:{uuid.uuid4().hex[:12]}"


def mark_unavailable(session: Session, unavailable: Mapping[str, str]) -> int:
    """Note on every pending delivery of an unusable channel why it waits, and commit.

    The rows are neither claimed nor postponed: they go out on the first run after the
    channel is configured. Returns how many rows got a new note."""
    marked = 0
    with unit_of_work(session):
        for channel, reason in sorted(unavailable.items()):
            marked += outbox_queries.note_waiting(session, channel, reason, MAX_ERROR)
    return marked


def claim(session: Session, now: dt.datetime, token: str, batch: int,
          lease_seconds: float = DEFAULT_LEASE_SECONDS,
          skip_channels: Collection[str] = ()) -> list[int]:
    """Claim up to ``batch`` due deliveries for ``token`` and commit; returns their ids."""
    with unit_of_work(session):
        lease_end = now + dt.timedelta(seconds=lease_seconds)
        return outbox_queries.claim_due(session, now, token, batch, lease_end, skip_channels)


@dataclass(frozen=True)
class _Claimed:
    id: int
    channel: str
    attempts: int
    delivery: Delivery


def _load(session: Session, delivery_id: int, token: str) -> _Claimed | None:
    row = session.get(OutboxDelivery, delivery_id, populate_existing=True)
    if row is None or row.claimed_by != token or row.status != "pending":
        return None
    event: OutboxEvent = row.event
    recipient = None
    if row.recipient_id is not None:
        user = session.get(User, row.recipient_id)
        if user is not None:
            recipient = Recipient(user.id, user.username, user.display_name, user.locale or "zh",
                                  email=user.email or None)
    delivery = Delivery(
        key=row.key, topic=event.topic, payload=dict(event.payload or {}), recipient=recipient,
        attempt=row.attempts + 1, event_key=event.key, delivery_id=row.id, event_id=event.id,
        unit_id=event.unit_id, to_users=tuple(event.to_users or ()),
        created_at=event.created_at.isoformat() + "Z")
    return _Claimed(row.id, row.channel, row.attempts, delivery)


def _record(session: Session, delivery_id: int, token: str, **values: Any) -> bool:
    """Write the outcome and release the lease, if the row is still ours."""
    return outbox_queries.record_if_claimed(session, delivery_id, token, **values)


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, TransientError | PermanentError):
        text = f"{type(exc).__name__}: {text}"
    return text[:MAX_ERROR]


def deliver_one(session_factory: SessionFactory, delivery_id: int, token: str, now: dt.datetime,
                channels: Mapping[str, Channel], unavailable: Mapping[str, str],
                policy: RetryPolicy, rng: random.Random, result: RunResult) -> None:
    """Deliver one claimed row and record the outcome (its own transactions)."""
    with session_factory() as session:
        with unit_of_work(session):  # no transaction held while the channel talks to the world
            claimed = _load(session, delivery_id, token)
        if claimed is None:
            result.lost += 1
            return
        channel = channels.get(claimed.channel)
        if channel is None:
            reason = unavailable.get(claimed.channel) or (
                f"channel {claimed.channel!r} is not installed: no plugin registers it")
            wait = now + dt.timedelta(seconds=UNAVAILABLE_WAIT_SECONDS)
            with unit_of_work(session):
                recorded = _record(session, delivery_id, token, last_error=reason,
                                   next_attempt_at=wait)
            if recorded:
                result.waiting += 1
            else:
                result.lost += 1
            return
        attempt = claimed.attempts + 1
        outcome: dict[str, Any]
        try:
            # The channel's own writes (an inbox message) and the outcome: one transaction.
            with unit_of_work(session):
                channel.deliver(_with_session(claimed.delivery, session))
                if not _record(session, delivery_id, token, status="delivered",
                               attempts=attempt, delivered_at=now, last_error=None):
                    raise _LeaseLost
            result.delivered += 1
            return
        except _LeaseLost:
            # Another worker took the row over after our lease ended: keep nothing of ours
            # (an inbox message written here would be a duplicate of theirs).
            result.lost += 1
            return
        except PermanentError as exc:
            outcome = {"status": "failed", "attempts": attempt, "last_error": _error_text(exc)}
            counter = "failed"
        except Exception as exc:  # TransientError, and anything unexpected, is retried
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            if attempt >= policy.max_attempts:
                outcome = {"status": "failed", "attempts": attempt,
                           "last_error": f"gave up after {attempt} attempts: {_error_text(exc)}"}
                counter = "failed"
            else:
                wait = policy.delay(attempt, retry_after=retry_after, rng=rng)
                outcome = {"attempts": attempt, "last_error": _error_text(exc),
                           "next_attempt_at": now + dt.timedelta(seconds=wait)}
                counter = "retried"
        with unit_of_work(session):
            recorded = _record(session, delivery_id, token, **outcome)
        if recorded:
            setattr(result, counter, getattr(result, counter) + 1)
        else:
            result.lost += 1  # another worker took the row over after our lease ended


class _LeaseLost(Exception):
    """The row was taken over by another worker: what this delivery wrote is undone."""


def _with_session(delivery: Delivery, session: Session) -> Delivery:
    from dataclasses import replace

    return replace(delivery, session=session)


def run_once(session_factory: SessionFactory, now: dt.datetime, channels: Mapping[str, Channel],
             batch: int = DEFAULT_BATCH, *, unavailable: Mapping[str, str] | None = None,
             policy: RetryPolicy | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS,
             worker_id: str | None = None, rng: random.Random | None = None) -> RunResult:
    """Claim up to ``batch`` due deliveries and deliver them; ``now`` is naive UTC."""
    token = _worker_token(worker_id)
    result = RunResult()
    unavailable = unavailable or {}
    with session_factory() as session:
        if unavailable:
            result.waiting = mark_unavailable(session, unavailable)
        ids = claim(session, now, token, batch, lease_seconds, skip_channels=unavailable)
    result.claimed = len(ids)
    for delivery_id in ids:
        deliver_one(session_factory, delivery_id, token, now, channels, unavailable,
                    policy or RetryPolicy(), rng or random.Random(), result)
    return result


def run_forever(config: Mapping[str, Any], *, once: bool = False, interval: float = 5.0,
                batch: int = DEFAULT_BATCH, echo: Callable[[str], Any] = print,
                sleep: Callable[[float], Any] | None = None,
                session_factory: SessionFactory | None = None,
                registry: Mapping[str, ChannelInfo] | None = None) -> None:
    """The ``quotaflow outbox run`` loop: poll, deliver, sleep (``once``: one pass, for cron).

    Uses the app's database unless ``session_factory`` is given."""
    import time

    from sqlalchemy.orm import sessionmaker

    from quotaflow.store.models import utcnow

    channels, unavailable = build_channels(config, registry)
    for reason in sorted(unavailable.values()):
        echo(f"note: {reason}")
    if session_factory is None:
        from quotaflow.store import db

        session_factory = sessionmaker(bind=db.engine, expire_on_commit=False)
    factory = session_factory
    policy = RetryPolicy.from_config(config)
    lease = float(config.get("OUTBOX_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))
    pause = sleep or time.sleep
    while True:
        # A pass drains everything due now, batch by batch.
        while True:
            result = run_once(factory, utcnow(), channels, batch, unavailable=unavailable,
                              policy=policy, lease_seconds=lease)
            if result.claimed or result.waiting:
                echo(" ".join(f"{k}={v}" for k, v in result.as_dict().items()))
            if result.claimed < batch:
                break
        if once:
            return
        pause(interval)
