"""The outbox: events written in the same transaction as the change that caused them.

:func:`emit` adds an :class:`OutboxEvent` and its deliveries to the caller's session and
never commits: if the caller's transaction rolls back, the event never existed. Deliveries:

* the in-app inbox, one per user in ``to_users``;
* every other channel the active "notification_routes" specs route the topic to
  (fnmatch patterns such as ``"alert.*"``), one per event, or one per user in
  ``to_users`` for channels registered as per-recipient (e-mail).

The worker in :mod:`quotaflow.services.outbox_worker` hands them to the channels with
retries; this module also holds what the CLI and the Outbox page need: counts, dead
deliveries, re-queueing and purging old delivered rows.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.channels import INBOX, ChannelInfo
from quotaflow.errors import Forbidden, QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules.specs import SpecIssue, pointer, schema_issues
from quotaflow.services import audit
from quotaflow.services.uow import Context, unit_of_work, use_case
from quotaflow.store import outbox_queries
from quotaflow.store.models import User, utcnow
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent

ROUTES_KIND = "notification_routes"
ROUTES_SCHEMA = "notification-routes"

#: The topics QuotaFlow emits (the contract between features). Route patterns are
#: checked against these so a typo does not silently route nothing.
TOPICS: list[str] = [
    "plan.published",
    "plan.version_created",
    "confirmation.opened",
    "confirmation.accepted",
    "appeal.submitted",
    "flow.task_created",
    "flow.reminded",
    "flow.ended",
    "flow.notified",
    "hr.sync",
    "letter.issued",
    "letter.signed",
    "letter.completed",
    "alert.raised",
    "account.failed_sign_ins",
    "account.password_reset",
]

MAX_TOPIC = 64
MAX_KEY = 200


class OutboxError(QuotaFlowError):
    """An outbox request that cannot be done; ``code`` says which kind."""

    domain = "outbox"
    CODE_KINDS = code_kinds(not_found="not_found", delivered="conflict")
    CODES = messages.register(domain, {
        "bad_recipient": _l("to_users holds user ids (whole numbers), not %(value)s."),
        "unknown_recipient": _l("to_users of %(topic)s names no user with id %(user)s."),
        "bad_topic": _l("An event topic has 1 to %(max)s characters: “%(topic)s”."),
        "bad_key": _l("An event key has at most %(max)s characters: “%(key)s…”."),
        "bad_payload": _l("The payload of %(topic)s is not JSON: %(detail)s"),
        "not_found": _l("There is no delivery %(id)s."),
        "delivered": _l("Delivery %(id)s was delivered already."),
        "bad_age": _l("A purge keeps at least one day: older_than_days must be a whole number "
                      "of days of at least 1, not %(value)s."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "", **params)


def register_topic(topic: str) -> None:
    """Make a topic known to route validation (for plugins that emit their own)."""
    if topic not in TOPICS:
        TOPICS.append(topic)


def _channel_info() -> Mapping[str, ChannelInfo]:
    from quotaflow.plugins import channel_registry

    return channel_registry()


# --- routes ---------------------------------------------------------------------------


def validate_routes(doc: Any, channels: Iterable[str] | None = None) -> list[SpecIssue]:
    """Every issue of a notification-routes spec, each with its JSON pointer."""
    if not isinstance(doc, dict):
        return [SpecIssue("", f"a spec is a JSON object, not {type(doc).__name__}", "not_object")]
    issues = schema_issues(ROUTES_SCHEMA, doc)
    if issues:
        return issues
    known = set(_channel_info() if channels is None else channels) | {INBOX}
    for index, route in enumerate(doc["routes"]):
        channel = route["channel"]
        if channel not in known:
            issues.append(SpecIssue(
                pointer("routes", index, "channel"),
                f"unknown channel {channel!r}; installed channels: {', '.join(sorted(known))}",
                "unknown_channel"))
        for position, pattern in enumerate(route["topics"]):
            if not any(fnmatch.fnmatchcase(topic, pattern) for topic in TOPICS):
                issues.append(SpecIssue(
                    pointer("routes", index, "topics", position),
                    f"{pattern!r} matches no topic; topics: {', '.join(TOPICS)}",
                    "unknown_topic"))
    return issues


def validate_routes_spec(doc: Any, _models: Any, _key: str) -> list[SpecIssue]:
    """The spec-kind validator (see :mod:`quotaflow.services.spec_kinds`)."""
    return validate_routes(doc)


def active_routes(session: Session) -> list[dict[str, Any]]:
    """The routes of every active notification-routes spec, in key order."""
    contents = outbox_queries.active_spec_contents(session, ROUTES_KIND)
    return [route for content in contents if isinstance(content, dict)
            for route in content.get("routes", []) if isinstance(route, dict)]


def channels_for(topic: str, routes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The channels (besides the inbox) a topic goes to, in route order, without repeats."""
    found: list[str] = []
    for route in routes:
        channel = route.get("channel")
        if (isinstance(channel, str) and channel != INBOX and channel not in found
                and any(fnmatch.fnmatchcase(topic, p) for p in route.get("topics", []))):
            found.append(channel)
    return found


# --- emit -----------------------------------------------------------------------------


def _user_ids(to_users: Iterable[int]) -> list[int]:
    ids: list[int] = []
    for value in to_users:
        if isinstance(value, bool) or not isinstance(value, int):
            raise OutboxError("bad_recipient", value=repr(value))
        if value not in ids:
            ids.append(value)
    return ids


def _active_recipients(session: Session, ids: list[int], topic: str) -> list[int]:
    """``ids`` without deactivated accounts (they can neither sign in nor be e-mailed);
    an id with no account at all is a caller's mistake, refused here rather than as a
    foreign-key error at commit."""
    if not ids:
        return ids
    active = outbox_queries.users_active(session, ids)
    unknown = [i for i in ids if i not in active]
    if unknown:
        raise OutboxError("unknown_recipient", topic=topic, user=str(unknown[0]))
    return [i for i in ids if active[i]]


#: Names specs use for the in-app inbox (alert rules say "in_app").
INBOX_ALIASES = frozenset({INBOX, "in_app"})


def emit(session: Session, topic: str, payload: Mapping[str, Any], *, to_users: Iterable[int] = (),
         unit_id: int | None = None, key: str | None = None,
         channels: Iterable[str] = ()) -> None:
    """Add an event and its deliveries to the caller's transaction (never commits).

    ``payload`` carries ``title_en``/``title_zh``/``body_en``/``body_zh``/``url`` for
    people plus structured fields; it must be JSON. ``key`` is the idempotency key
    (default: topic + a UUID): an event whose key is already stored is not added again.
    The event goes to every recipient's inbox, to the channels the routes spec names for
    its topic and to ``channels`` the emitter's own spec asks for (e.g. an alert rule's).
    """
    if not topic or len(topic) > MAX_TOPIC:
        raise OutboxError("bad_topic", max=MAX_TOPIC, topic=str(topic)[:80])
    key = key or f"{topic}:{uuid.uuid4().hex}"
    if len(key) > MAX_KEY:
        raise OutboxError("bad_key", max=MAX_KEY, key=key[:40])
    try:
        content = json.loads(json.dumps(dict(payload), ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise OutboxError("bad_payload", topic=topic, detail=str(exc)) from exc
    users = _active_recipients(session, _user_ids(to_users), topic)
    if outbox_queries.event_id_with_key(session, key) is not None:
        return
    event = OutboxEvent(topic=topic, key=key, payload=content, unit_id=unit_id, to_users=users,
                        created_at=utcnow())
    session.add(event)
    now = event.created_at
    for user_id in users:
        session.add(OutboxDelivery(event=event, channel=INBOX, recipient_id=user_id,
                                   key=f"{key}:{INBOX}:{user_id}", next_attempt_at=now,
                                   status="pending", attempts=0, created_at=now))
    info = _channel_info()
    wanted = channels_for(topic, active_routes(session))
    wanted += [c for c in dict.fromkeys(channels) if c not in INBOX_ALIASES and c not in wanted]
    for channel in wanted:
        per_recipient = info[channel].per_recipient if channel in info else False
        for user_id in (users if per_recipient else [None]):
            suffix = f":{user_id}" if user_id is not None else ""
            session.add(OutboxDelivery(event=event, channel=channel, recipient_id=user_id,
                                       key=f"{key}:{channel}{suffix}", next_attempt_at=now,
                                       status="pending", attempts=0, created_at=now))


# --- status and re-queueing -------------------------------------------------------------


@dataclass(frozen=True)
class ChannelCounts:
    channel: str
    pending: int = 0
    delivered: int = 0
    failed: int = 0
    waiting_with_error: int = 0  # pending rows whose last try failed

    @property
    def total(self) -> int:
        return self.pending + self.delivered + self.failed


def counts(session: Session) -> list[ChannelCounts]:
    """Deliveries per channel and status, channels in name order."""
    table: dict[str, dict[str, int]] = {}
    for channel, status, has_error, count in outbox_queries.delivery_counts(session):
        entry = table.setdefault(channel, {"pending": 0, "delivered": 0, "failed": 0,
                                           "waiting_with_error": 0})
        entry[status] = entry.get(status, 0) + count
        if status == "pending" and has_error:
            entry["waiting_with_error"] += count
    return [ChannelCounts(channel, **values) for channel, values in sorted(table.items())]


def problem_deliveries(session: Session, limit: int = 100) -> list[OutboxDelivery]:
    """Dead deliveries, then pending ones whose last try failed, newest first."""
    failed = outbox_queries.failed_deliveries(session, limit)
    waiting = outbox_queries.waiting_after_error(session, max(0, limit - len(failed)))
    return [*failed, *waiting]


def requeue(session: Session, delivery_id: int, actor: User | None,
            now: dt.datetime | None = None, remote_addr: str | None = None) -> OutboxDelivery:
    """Put a failed (or waiting) delivery back in the queue, due now, attempts reset; audited."""
    with unit_of_work(session):
        delivery = session.get(OutboxDelivery, delivery_id)
        if delivery is None:
            raise OutboxError("not_found", id=str(delivery_id))
        if delivery.status == "delivered":
            raise OutboxError("delivered", id=str(delivery_id))
        before = {"status": delivery.status, "attempts": delivery.attempts,
                  "last_error": delivery.last_error}
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now or utcnow()
        delivery.locked_until = None
        delivery.claimed_by = None
        session.flush()
        audit.record(session, actor, "outbox_requeue", "outbox_delivery", str(delivery.id),
                     before=before, after={"status": "pending", "channel": delivery.channel},
                     remote_addr=remote_addr)
        return delivery


# --- purging ----------------------------------------------------------------------------

DEFAULT_PURGE_DAYS = 90


@dataclass(frozen=True)
class PurgeResult:
    cutoff: dt.datetime
    deliveries: int
    events: int


def purge(session: Session, older_than_days: int = DEFAULT_PURGE_DAYS, *,
          actor: User | None = None, now: dt.datetime | None = None,
          remote_addr: str | None = None) -> PurgeResult:
    """Delete delivered deliveries delivered more than ``older_than_days`` days ago, and
    then each of their events no delivery and no inbox message refers to any more; audited.

    Pending and failed deliveries are never deleted (they are still owed), nor inbox
    messages (they are the people's own), nor the events those refer to. Never commits.
    """
    with unit_of_work(session):
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, int) \
                or older_than_days < 1:
            raise OutboxError("bad_age", value=repr(older_than_days))
        cutoff = (now or utcnow()) - dt.timedelta(days=older_than_days)
        event_ids = outbox_queries.events_delivered_before(session, cutoff)
        deliveries = 0
        events = 0
        if event_ids:
            deliveries = outbox_queries.delete_delivered_before(session, cutoff)
            events = outbox_queries.delete_events(
                session, outbox_queries.unreferenced_events(session, event_ids))
        session.expire_all()
        audit.record(session, actor, "outbox_purge", "outbox", "delivered",
                     after={"older_than_days": older_than_days, "cutoff": cutoff.isoformat(),
                            "deliveries": deliveries, "events": events},
                     remote_addr=remote_addr)
        return PurgeResult(cutoff, deliveries, events)


# --- inbox ----------------------------------------------------------------------------


def mark_read(session: Session, user: User, message_id: int | None = None,
              now: dt.datetime | None = None, remote_addr: str | None = None) -> int:
    """Mark one of the user's messages (or, without ``message_id``, all) read; audited.

    Returns how many changed (messages read already are left as they were)."""
    with unit_of_work(session):
        messages = outbox_queries.unread_messages(session, user.id, message_id)
        for message in messages:
            message.read_at = now or utcnow()
        session.flush()
        if messages:
            audit.record(session, user, "inbox_mark_read", "inbox_message",
                         str(message_id) if message_id is not None else "all",
                         after={"count": len(messages)}, remote_addr=remote_addr)
        return len(messages)


# --- purging as a use case (the CLI) ----------------------------------------------------------


@use_case
def purge_delivered(ctx: Context, older_than_days: int = DEFAULT_PURGE_DAYS) -> PurgeResult:
    """Delete old delivered deliveries and then their events (see :func:`purge`); outbox.read."""
    if ctx.principal is not None and not ctx.principal.can("outbox.read"):
        raise Forbidden("forbidden")
    actor = ctx.session.get(User, ctx.user_id) if ctx.user_id is not None else None
    return purge(ctx.session, older_than_days, actor=actor, remote_addr=ctx.remote_addr)
