"""The outbox: events commit with their cause; the worker delivers with retries, backoff and
idempotency keys, so a receiver that is down or slow loses nothing and gets nothing twice.

The worker tests run on a database of their own (SQLite file and, when reachable, a
temporary PostgreSQL database), so no other test's deliveries are claimed.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import postgres_available, temporary_postgres_database
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from quotaflow.channels import (
    INBOX,
    ChannelInfo,
    Delivery,
    PermanentError,
    Recipient,
    RetryPolicy,
    TransientError,
)
from quotaflow.plugins import PluginError, PluginRegistry, discover
from quotaflow.services import outbox, specs
from quotaflow.services.outbox_worker import (
    build_channels,
    channel_settings,
    claim,
    run_forever,
    run_once,
)
from quotaflow.store import outbox_queries
from quotaflow.store.db import make_engine
from quotaflow.store.models import AuditEntry, Base, User, utcnow
from quotaflow.store.outbox_models import InboxMessage, OutboxDelivery, OutboxEvent

# The workers' clock: an hour after the events are written (emit stamps the real time).
T0 = utcnow().replace(microsecond=0) + dt.timedelta(hours=1)
ROUTES = {"routes": [{"topics": ["letter.completed"], "channel": "hook"},
                     {"topics": ["alert.*", "plan.published"], "channel": "chat"}]}
TEXTS = {"title_en": "Plan published", "title_zh": "计划已发布", "body_en": "See it.",
         "body_zh": "请查看。", "url": "/plans"}


def _backends() -> list[Any]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
        not postgres_available(), reason="PostgreSQL not reachable"))]


@pytest.fixture(scope="module", params=_backends())
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A fresh database with every table, one per backend, for this module only."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'outbox.db'}"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    from conftest import POSTGRES_ADMIN_URL

    with temporary_postgres_database(POSTGRES_ADMIN_URL) as url:
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def factory(engine: Any) -> Iterator[sessionmaker[Session]]:
    """A session factory over the module's database, with routes and two users; the
    outbox tables are emptied after each test (users and audit entries stay)."""
    make = sessionmaker(bind=engine, expire_on_commit=False)
    with make() as session:
        if session.scalar(select(func.count()).select_from(User)) == 0:
            for name in ("ann", "bo"):
                session.add(User(username=name, display_name=name.title(), password_hash="x",
                                 locale="en" if name == "ann" else "zh"))
            spec = specs.create_version(session, outbox.ROUTES_KIND, "default", ROUTES, None)
            specs.activate(session, spec, None)
            session.commit()
    yield make
    with make() as session:
        for model in (InboxMessage, OutboxDelivery, OutboxEvent):
            session.query(model).delete()
        session.commit()


def _user_ids(session: Session) -> dict[str, int]:
    return {u.username: u.id for u in session.scalars(select(User))}


def _deliveries(session: Session, channel: str | None = None) -> list[OutboxDelivery]:
    query = select(OutboxDelivery).order_by(OutboxDelivery.id)
    if channel is not None:
        query = query.where(OutboxDelivery.channel == channel)
    return list(session.scalars(query).all())


class Receiver:
    """A fake receiver that is down for its first ``failures`` calls and dedupes on the key."""

    def __init__(self, failures: int = 0, error: type[Exception] = TransientError) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[str] = []
        self.accepted: Counter[str] = Counter()  # key -> times the receiver acted on it
        self.lock = threading.Lock()

    def deliver(self, delivery: Delivery) -> None:
        with self.lock:
            self.calls.append(delivery.key)
            if len(self.calls) <= self.failures:
                raise self.error(f"receiver down (call {len(self.calls)})")
            if self.accepted[delivery.key] == 0:  # an idempotent receiver
                self.accepted[delivery.key] += 1


# --- emit ---------------------------------------------------------------------------------


def test_emit_commits_with_the_callers_transaction(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        ids = _user_ids(session)
        outbox.emit(session, "plan.published", TEXTS, to_users=[ids["ann"], ids["bo"]])
        session.rollback()
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert session.scalar(select(func.count()).select_from(OutboxDelivery)) == 0

        outbox.emit(session, "plan.published", TEXTS, to_users=[ids["ann"], ids["bo"], ids["ann"]],
                    key="plan.published:42")
        session.commit()
    with factory() as session:
        event = session.scalar(select(OutboxEvent))
        assert event.key == "plan.published:42" and event.to_users == [ids["ann"], ids["bo"]]
        assert {(d.channel, d.recipient_id, d.key) for d in event.deliveries} == {
            (INBOX, ids["ann"], f"plan.published:42:inbox:{ids['ann']}"),
            (INBOX, ids["bo"], f"plan.published:42:inbox:{ids['bo']}"),
            ("chat", None, "plan.published:42:chat"),
        }
        assert all(d.status == "pending" and d.attempts == 0 for d in event.deliveries)
        # The same key again is the same event: nothing added.
        outbox.emit(session, "plan.published", TEXTS, to_users=[ids["ann"]], key="plan.published:42")
        session.commit()
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 1


def test_routes_pick_channels_by_topic_pattern(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "alert.raised", {"title_en": "Behind"}, key="a1")
        outbox.emit(session, "letter.completed", {"letter_id": 7}, key="l1")
        outbox.emit(session, "flow.reminded", {"title_en": "Reminder"}, key="f1")
        session.commit()
        assert [(d.event.key, d.channel) for d in _deliveries(session)] == [
            ("a1", "chat"), ("l1", "hook")]
    assert outbox.channels_for("plan.published", ROUTES["routes"]) == ["chat"]


def test_per_recipient_channels_get_one_delivery_per_person(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "_channel_info", lambda: {
        "chat": ChannelInfo("chat", lambda _s: Receiver(), per_recipient=True)})
    with factory() as session:
        ids = _user_ids(session)
        outbox.emit(session, "alert.raised", TEXTS, to_users=[ids["ann"], ids["bo"]], key="a2")
        session.commit()
        assert sorted((d.channel, d.recipient_id) for d in _deliveries(session)) == sorted([
            (INBOX, ids["ann"]), (INBOX, ids["bo"]), ("chat", ids["ann"]), ("chat", ids["bo"])])


def test_emit_refuses_what_it_cannot_store(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        with pytest.raises(outbox.OutboxError, match="not JSON"):
            outbox.emit(session, "plan.published", {"when": dt.date(2026, 1, 1)})
        with pytest.raises(outbox.OutboxError, match="user ids"):
            outbox.emit(session, "plan.published", TEXTS, to_users=["ann"])  # type: ignore[list-item]
        with pytest.raises(outbox.OutboxError, match="topic"):
            outbox.emit(session, "", TEXTS)
        # An id with no account is the caller's mistake: said here, not as a foreign-key
        # error at commit.
        with pytest.raises(outbox.OutboxError, match="no user with id 987654"):
            outbox.emit(session, "plan.published", TEXTS, to_users=[987654])


def test_the_emitters_own_channels_join_the_routed_ones(factory: sessionmaker[Session]) -> None:
    """An alert rule's channels: "in_app" is the inbox; others add deliveries once."""
    with factory() as session:
        ids = _user_ids(session)
        outbox.emit(session, "alert.raised", TEXTS, to_users=[ids["ann"]], key="own-channels",
                    channels=["in_app", "email", "email"])
        got = sorted((d.channel, d.recipient_id) for d in _deliveries(session))
        routed = outbox.channels_for("alert.raised", ROUTES["routes"])
        assert got == sorted({("inbox", ids["ann"]), ("email", ids["ann"]),
                              *((c, None) for c in routed if c != "email")})
        session.rollback()


def test_deactivated_accounts_get_nothing(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        ids = _user_ids(session)
        bo = session.get(User, ids["bo"])
        bo.active = False
        session.flush()
        outbox.emit(session, "letter.signed", TEXTS, to_users=[ids["ann"], ids["bo"]],
                    key="deactivated-test")
        recipients = {d.recipient_id for d in _deliveries(session)}
        assert recipients == {ids["ann"]}
        session.rollback()


# --- routes spec ------------------------------------------------------------------------------


def test_routes_spec_errors_carry_json_pointers() -> None:
    doc = {"routes": [{"topics": ["letter.completed"], "channel": "hr_webhook"},
                      {"topics": ["alert.*", "leter.*"], "channel": "fax"}]}
    issues = outbox.validate_routes(doc, channels=["hr_webhook", "wecom"])
    assert [(i.pointer, i.code) for i in issues] == [
        ("/routes/1/channel", "unknown_channel"), ("/routes/1/topics/1", "unknown_topic")]
    assert "fax" in issues[0].message and "hr_webhook" in issues[0].message
    schema = outbox.validate_routes({"routes": [{"topics": [], "channel": "Fax"}], "extra": 1},
                                    channels=[])
    assert {(i.pointer, i.code) for i in schema} == {
        ("", "schema.additionalProperties"), ("/routes/0/channel", "schema.pattern"),
        ("/routes/0/topics", "schema.minItems")}


def test_routes_kind_is_registered_and_the_seed_is_valid() -> None:
    import json
    from pathlib import Path

    from quotaflow.services import spec_kinds
    from quotaflow.services.seeding import SEED_DIR, SEED_SPECS

    kind = spec_kinds.get("notification_routes")
    assert kind is not None
    assert SEED_SPECS["notification_routes.json"] == ("notification_routes", "default")
    seed = json.loads(Path(SEED_DIR / "specs" / "notification_routes.json").read_text("utf-8"))
    # The seed routes to first-party channel plugins (hr_webhook, wecom).
    assert {"inbox", "hr_webhook", "wecom"} <= set(discover().channels)
    assert outbox.validate_routes(seed) == []
    assert kind.validate(seed, lambda _key: None, "default") == []


# --- worker -------------------------------------------------------------------------------


def test_transient_errors_are_retried_with_backoff_then_delivered_once(
        factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "letter.completed", {"letter_id": 1}, key="letter:1")
        session.commit()
    receiver = Receiver(failures=2)
    policy = RetryPolicy(max_attempts=5, base_seconds=10, max_seconds=100)
    rng = random.Random(7)

    first = run_once(factory, T0, {"hook": receiver}, policy=policy, rng=rng)
    assert (first.claimed, first.retried) == (1, 1)
    with factory() as session:
        (row,) = _deliveries(session, "hook")
        assert (row.status, row.attempts, row.claimed_by, row.locked_until) == ("pending", 1, None, None)
        assert "receiver down (call 1)" in row.last_error
        wait = (row.next_attempt_at - T0).total_seconds()
        assert 5 <= wait <= 10  # attempt 1: between half and all of 10 s
    # Not due yet: nothing happens.
    assert run_once(factory, T0 + dt.timedelta(seconds=4), {"hook": receiver}, policy=policy).claimed == 0

    second = run_once(factory, T0 + dt.timedelta(seconds=10), {"hook": receiver}, policy=policy, rng=rng)
    assert second.retried == 1
    with factory() as session:
        (row,) = _deliveries(session, "hook")
        assert row.attempts == 2
        assert 10 <= (row.next_attempt_at - T0 - dt.timedelta(seconds=10)).total_seconds() <= 20

    third = run_once(factory, T0 + dt.timedelta(minutes=5), {"hook": receiver}, policy=policy)
    assert third.delivered == 1
    with factory() as session:
        (row,) = _deliveries(session, "hook")
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
        assert row.delivered_at == T0 + dt.timedelta(minutes=5)
    # Every attempt carried the same idempotency key; the receiver acted once.
    assert receiver.calls == ["letter:1:hook"] * 3
    assert receiver.accepted == Counter({"letter:1:hook": 1})
    assert run_once(factory, T0 + dt.timedelta(days=1), {"hook": receiver}).claimed == 0


def test_retry_after_and_the_cap_bound_the_wait() -> None:
    policy = RetryPolicy(max_attempts=10, base_seconds=30, max_seconds=600)
    rng = random.Random(1)
    assert policy.delay(1, retry_after=42, rng=rng) == 42
    assert policy.delay(1, retry_after=10_000, rng=rng) == 600
    for attempt in range(1, 12):
        ceiling = min(600, 30 * 2 ** (attempt - 1))
        assert ceiling / 2 <= policy.delay(attempt, rng=rng) <= ceiling


def test_dead_letter_after_max_attempts_and_requeue(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "letter.completed", {"letter_id": 2}, key="letter:2")
        session.commit()
    receiver = Receiver(failures=100)
    policy = RetryPolicy(max_attempts=3, base_seconds=1, max_seconds=1)
    for step in range(3):
        run_once(factory, T0 + dt.timedelta(hours=step), {"hook": receiver}, policy=policy)
    with factory() as session:
        (row,) = _deliveries(session, "hook")
        assert (row.status, row.attempts) == ("failed", 3)
        assert row.last_error.startswith("gave up after 3 attempts: receiver down")
    assert run_once(factory, T0 + dt.timedelta(days=9), {"hook": receiver}, policy=policy).claimed == 0

    with factory() as session:
        admin = session.scalar(select(User).where(User.username == "ann"))
        outbox.requeue(session, row.id, admin, now=T0 + dt.timedelta(days=1))
        session.commit()
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "outbox_requeue")
                               .order_by(AuditEntry.id.desc()))
        assert entry.entity_id == str(row.id) and entry.before["status"] == "failed"
    receiver.failures = 0
    receiver.calls.clear()
    assert run_once(factory, T0 + dt.timedelta(days=1), {"hook": receiver}, policy=policy).delivered == 1
    with factory() as session:
        assert _deliveries(session, "hook")[0].status == "delivered"
        with pytest.raises(outbox.OutboxError, match="delivered already"):
            outbox.requeue(session, row.id, None)


def test_permanent_error_is_dead_at_once(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "letter.completed", {"letter_id": 3}, key="letter:3")
        session.commit()
    result = run_once(factory, T0, {"hook": Receiver(failures=1, error=PermanentError)})
    assert result.failed == 1
    with factory() as session:
        (row,) = _deliveries(session, "hook")
        assert (row.status, row.attempts, row.last_error) == ("failed", 1, "receiver down (call 1)")
    counts = {c.channel: c for c in outbox.counts(factory())}
    assert counts["hook"].failed == 1


def test_unconfigured_channel_waits_with_a_clear_error(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "alert.raised", {"title_en": "x"}, key="alert:9")
        session.commit()
    reason = "channel 'chat' is not configured: add its settings to QUOTAFLOW_CHANNELS['chat']"
    result = run_once(factory, T0, {}, unavailable={"chat": reason})
    assert (result.claimed, result.waiting) == (0, 1)
    with factory() as session:
        (row,) = _deliveries(session, "chat")
        assert (row.status, row.attempts, row.last_error) == ("pending", 0, reason)
        assert row.next_attempt_at < T0 and row.claimed_by is None
        assert [d.id for d in outbox.problem_deliveries(session)] == [row.id]
        assert outbox.counts(session)[0].waiting_with_error == 1
    assert run_once(factory, T0, {}, unavailable={"chat": reason}).waiting == 0  # noted once
    # Once configured it goes out at the next run; nothing was lost.
    receiver = Receiver()
    assert run_once(factory, T0, {"chat": receiver}).delivered == 1
    assert receiver.accepted == Counter({"alert:9:chat": 1})
    with factory() as session:
        assert _deliveries(session, "chat")[0].last_error is None


def test_a_channel_no_plugin_registers_is_looked_at_later(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "alert.raised", {"title_en": "x"}, key="alert:10")
        session.commit()
    result = run_once(factory, T0, {})
    assert (result.claimed, result.waiting) == (1, 1)
    with factory() as session:
        (row,) = _deliveries(session, "chat")
        assert row.last_error == "channel 'chat' is not installed: no plugin registers it"
        assert (row.attempts, row.next_attempt_at) == (0, T0 + dt.timedelta(minutes=10))


def test_a_crashed_worker_is_resumed_after_its_lease(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        outbox.emit(session, "letter.completed", {"letter_id": 4}, key="letter:4")
        session.commit()
    with factory() as session:  # a worker claims, then dies before delivering
        assert len(claim(session, T0, "dead-worker", 10, lease_seconds=300)) == 1
    receiver = Receiver()
    assert run_once(factory, T0 + dt.timedelta(seconds=299), {"hook": receiver}).claimed == 0

    class CrashAfterSending(Receiver):
        def deliver(self, delivery: Delivery) -> None:
            super().deliver(delivery)
            raise KeyboardInterrupt  # the receiver got it; the worker dies before recording

    crashing = CrashAfterSending()
    crashing.accepted = receiver.accepted
    with pytest.raises(KeyboardInterrupt):
        run_once(factory, T0 + dt.timedelta(seconds=301), {"hook": crashing})
    assert run_once(factory, T0 + dt.timedelta(seconds=400), {"hook": receiver}).claimed == 0
    assert run_once(factory, T0 + dt.timedelta(seconds=700), {"hook": receiver}).delivered == 1
    # Sent twice with one key: the receiver acted once (exactly-once effect).
    assert crashing.calls + receiver.calls == ["letter:4:hook", "letter:4:hook"]
    assert receiver.accepted == Counter({"letter:4:hook": 1})


def test_inbox_channel_writes_each_message_once(factory: sessionmaker[Session]) -> None:
    channels, unavailable = build_channels({"CHANNELS": {}})
    assert INBOX in channels and "hr_webhook" in unavailable
    with factory() as session:
        ids = _user_ids(session)
        outbox.emit(session, "flow.reminded", {**TEXTS, "url": "https://evil.example/x"},
                    to_users=[ids["ann"], ids["bo"]], key="flow:1")
        session.commit()
    assert run_once(factory, T0, channels).delivered == 2
    with factory() as session:
        messages = session.scalars(select(InboxMessage).order_by(InboxMessage.user_id)).all()
        assert [(m.user_id, m.title_en, m.title_zh, m.url) for m in messages] == [
            (ids["ann"], "Plan published", "计划已发布", None),  # only in-app paths are links
            (ids["bo"], "Plan published", "计划已发布", None)]
        # The same delivery again (a re-run after a crash) adds nothing.
        row = _deliveries(session, INBOX)[0]
        event = row.event
        user = session.get(User, row.recipient_id)
        again = Delivery(key=row.key, topic=event.topic, payload=event.payload,
                         recipient=Recipient(user.id, user.username, user.display_name, user.locale),
                         attempt=2, event_id=event.id, session=session)
        channels[INBOX].deliver(again)
        session.commit()
        assert session.scalar(select(func.count()).select_from(InboxMessage)) == 2
        assert outbox_queries.unread_count(session, ids["ann"]) == 1
        assert outbox.mark_read(session, session.get(User, ids["ann"])) == 1
        session.commit()
        assert outbox_queries.unread_count(session, ids["ann"]) == 0


@pytest.mark.parametrize("workers", [4])
def test_concurrent_workers_never_deliver_a_row_twice(factory: sessionmaker[Session],
                                                      workers: int) -> None:
    events = 120
    with factory() as session:
        for n in range(events):
            outbox.emit(session, "letter.completed", {"letter_id": n}, key=f"letter:c{n}")
        session.commit()
    class SlowReceiver(Receiver):
        def deliver(self, delivery: Delivery) -> None:
            time.sleep(0.002)  # a slow receiver: the workers' batches interleave
            super().deliver(delivery)

    receiver = SlowReceiver()
    done: list[dict[str, int]] = []
    by_worker: Counter[str] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(workers)

    def work(name: str) -> None:
        try:
            start.wait()
            while True:
                result = run_once(factory, T0, {"hook": receiver}, batch=4, worker_id=name)
                done.append(result.as_dict())
                by_worker[name] += result.delivered
                if result.claimed == 0:
                    return
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(receiver.calls) == events  # no row was handed to the channel twice
    assert set(Counter(receiver.calls).values()) == {1}
    assert sum(d["delivered"] for d in done) == events
    assert sum(d["lost"] for d in done) == 0
    assert len([n for n in by_worker.values() if n]) >= 2  # the workers really ran side by side
    with factory() as session:
        rows = _deliveries(session, "hook")
        assert len(rows) == events and {(r.status, r.attempts) for r in rows} == {("delivered", 1)}


# --- channel plugins and settings ---------------------------------------------------------------


def test_channel_registry_and_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    registry = PluginRegistry()
    built: list[dict[str, Any]] = []

    def factory(settings: Any) -> Receiver:
        built.append(dict(settings))
        if "url" not in settings:
            raise ValueError("url is required")
        return Receiver()

    registry.add_channel("hook", factory)
    with pytest.raises(PluginError, match="twice"):
        registry.add_channel("hook", factory)
    channels, unavailable = build_channels(
        {"CHANNELS": {"hook": {"url": "http://hr.example/in"}}, "BASE_URL": "https://qf.example"},
        registry.channel_info)
    assert set(channels) == {"hook"} and built[-1] == {"base_url": "https://qf.example",
                                                       "url": "http://hr.example/in"}
    channels, unavailable = build_channels({"CHANNELS": {"hook": {}}}, registry.channel_info)
    assert channels == {} and "url is required" in unavailable["hook"]

    monkeypatch.setenv("QUOTAFLOW_CHANNELS", '{"hook": {"url": "x"}}')
    assert channel_settings({}) == {"hook": {"url": "x"}}
    settings_file = tmp_path / "channels.json"
    settings_file.write_text('{"wecom": {"webhook_url": "y"}}')
    monkeypatch.setenv("QUOTAFLOW_CHANNELS", f"@{settings_file}")
    assert channel_settings({}) == {"wecom": {"webhook_url": "y"}}
    monkeypatch.setenv("QUOTAFLOW_CHANNELS", "[1]")
    from quotaflow.services.outbox_worker import ChannelConfigError

    with pytest.raises(ChannelConfigError, match="QUOTAFLOW_CHANNELS"):
        channel_settings({})


def test_delivery_texts_fall_back_and_links_are_absolute() -> None:
    delivery = Delivery(key="k", topic="plan.published", payload={"title_en": "Hi", "url": "/plans/3"},
                        recipient=Recipient(1, "ann", "Ann", "zh"), attempt=1)
    assert delivery.title() == "Hi" and delivery.title("en") == "Hi"
    assert delivery.link("https://qf.example/") == "https://qf.example/plans/3"
    assert delivery.as_json()["recipient"]["username"] == "ann"


def test_run_loop_drains_due_deliveries(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        for n in range(5):
            outbox.emit(session, "letter.completed", {"letter_id": n}, key=f"letter:loop{n}")
        outbox.emit(session, "alert.raised", {"title_en": "x"}, key="alert:loop")
        session.commit()
    registry = PluginRegistry()
    receiver = Receiver()
    registry.add_channel("hook", lambda _settings: receiver)
    registry.add_channel("chat", lambda _settings: Receiver())
    lines: list[str] = []
    run_forever({"CHANNELS": {"hook": {}}}, once=True, batch=2, echo=lines.append,
                session_factory=factory, registry=registry.channel_info)
    assert len(receiver.accepted) == 5
    assert lines[0] == ("note: channel 'chat' is not configured: add its settings to "
                        "QUOTAFLOW_CHANNELS['chat']")
    with factory() as session:
        assert {(d.channel, d.status) for d in _deliveries(session)} == {
            ("hook", "delivered"), ("chat", "pending")}
    assert lines[1:] == ["claimed=2 delivered=2 retried=0 failed=0 waiting=1 lost=0",
                         "claimed=2 delivered=2 retried=0 failed=0 waiting=0 lost=0",
                         "claimed=1 delivered=1 retried=0 failed=0 waiting=0 lost=0"]

    sleeps: list[float] = []

    def stop(seconds: float) -> None:
        sleeps.append(seconds)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_forever({"CHANNELS": {}}, interval=7, echo=lines.append, sleep=stop,
                    session_factory=factory, registry=registry.channel_info)
    assert sleeps == [7]


# --- recipients' e-mail and purging -------------------------------------------------------


def test_the_worker_hands_channels_the_address_on_the_users_account(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "_channel_info", lambda: {
        "chat": ChannelInfo("chat", lambda _s: Receiver(), per_recipient=True)})
    seen: dict[str, str | None] = {}

    class Capture:
        def deliver(self, delivery: Delivery) -> None:
            assert delivery.recipient is not None
            seen[delivery.recipient.username] = delivery.recipient.email

    with factory() as session:
        ids = _user_ids(session)
        session.get(User, ids["ann"]).email = "ann@example.com"
        outbox.emit(session, "alert.raised", TEXTS, to_users=[ids["ann"], ids["bo"]], key="m1")
        session.commit()
    try:
        assert run_once(factory, T0, {"chat": Capture(), INBOX: Receiver()}).delivered == 4
        assert seen == {"ann": "ann@example.com", "bo": None}
    finally:
        with factory() as session:
            session.get(User, ids["ann"]).email = None
            session.commit()


def test_purge_deletes_old_delivered_rows_and_their_events_only(
        factory: sessionmaker[Session]) -> None:
    old, recent = T0 - dt.timedelta(days=100), T0 - dt.timedelta(days=10)

    def settle(key: str, channel: str, status: str, when: dt.datetime) -> None:
        with factory() as session:
            row = session.scalar(select(OutboxDelivery).join(OutboxEvent).where(
                OutboxEvent.key == key, OutboxDelivery.channel == channel))
            row.status = status
            row.created_at = when
            row.delivered_at = when if status == "delivered" else None
            session.commit()

    with factory() as session:
        ids = _user_ids(session)
        outbox.emit(session, "alert.raised", TEXTS, key="gone")           # chat
        outbox.emit(session, "plan.published", TEXTS, to_users=[ids["ann"]],
                    key="read")                                            # inbox + chat
        outbox.emit(session, "alert.raised", TEXTS, key="dead")           # chat, failed
        outbox.emit(session, "letter.completed", TEXTS, key="owed")       # hook, pending
        outbox.emit(session, "alert.raised", TEXTS, key="young")          # chat, 10 days
        outbox.emit(session, "plan.published", TEXTS, to_users=[ids["bo"]],
                    key="half")                                            # inbox pending
        session.commit()
    settle("gone", "chat", "delivered", old)
    settle("read", "chat", "delivered", old)
    settle("read", INBOX, "delivered", old)
    settle("dead", "chat", "failed", old)
    settle("owed", "hook", "pending", old)
    settle("young", "chat", "delivered", recent)
    settle("half", "chat", "delivered", old)
    with factory() as session:
        event = session.scalar(select(OutboxEvent).where(OutboxEvent.key == "read"))
        session.add(InboxMessage(user_id=ids["ann"], event_id=event.id, topic=event.topic,
                                 title_en="t", title_zh="t", created_at=old))
        session.commit()

    with factory() as session:
        with pytest.raises(outbox.OutboxError, match="older_than_days"):
            outbox.purge(session, 0, now=T0)
        result = outbox.purge(session, 90, actor=session.get(User, ids["bo"]), now=T0)
        session.commit()
        assert (result.deliveries, result.events) == (4, 1)
        assert result.cutoff == T0 - dt.timedelta(days=90)
        left = {(d.event.key, d.channel, d.status) for d in _deliveries(session)}
        assert left == {("dead", "chat", "failed"), ("owed", "hook", "pending"),
                        ("young", "chat", "delivered"), ("half", INBOX, "pending")}
        # "read" keeps its event: ann's inbox message refers to it.
        assert set(session.scalars(select(OutboxEvent.key))) == {
            "read", "dead", "owed", "young", "half"}
        assert session.scalar(select(func.count()).select_from(InboxMessage)) == 1
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "outbox_purge")
                               .order_by(AuditEntry.id.desc()))
        assert entry.after["deliveries"] == 4 and entry.after["events"] == 1
        assert entry.after["older_than_days"] == 90
        # Nothing left to purge: a second run deletes nothing (and is audited too).
        again = outbox.purge(session, 90, now=T0)
        session.commit()
        assert (again.deliveries, again.events) == (0, 0)


def test_inbox_links_stay_inside_the_app() -> None:
    """``/\\evil.example`` and ``/\\t/evil.example`` are other sites to a browser (it reads
    a backslash as a slash and drops tabs); they used to be stored as links."""
    from quotaflow.plugins import default_registry

    app_path = type(default_registry().channels[INBOX]({})).deliver.__globals__["app_path"]
    assert app_path("/tasks/7?x=1#y") == "/tasks/7?x=1#y"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil.example",
                "/\t/evil.example", "/a b", "tasks/7", "", "/" + "x" * 600):
        assert app_path(bad) is None, bad
