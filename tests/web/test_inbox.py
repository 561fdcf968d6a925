"""The in-app inbox (bell, list, mark read) and the HRBP's Outbox page (dead deliveries, retry).

Tests set up and check inside ``app.app_context()`` blocks and send requests outside
them: an app context shared with requests would pin the requests' language."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from support import DEMO_PASSWORD, sign_in

from quotaflow.channels import INBOX, Delivery, Recipient
from quotaflow.services import outbox
from quotaflow.services.auth import hash_password
from quotaflow.store import db
from quotaflow.store.models import AuditEntry, RoleGrant, User
from quotaflow.store.outbox_models import InboxMessage, OutboxDelivery, OutboxEvent
from quotaflow.store.queries import unit_by_code, user_by_username

EVENT_PREFIX = "test-inbox:"


def _user(username: str) -> User:
    """A user of these tests (made, with a team-lead grant, the first time a test asks)."""
    user = user_by_username(db.session, username)
    if user is None:
        user = User(username=username, display_name=username.title(),
                    password_hash=hash_password(DEMO_PASSWORD), locale="en")
        db.session.add(user)
    if not user.grants:
        user.grants.append(RoleGrant(role="team_lead", unit=unit_by_code(db.session, "EAST-T1")))
    db.session.commit()
    return user


def _deliver_inbox(keys: list[str]) -> None:
    """Hand the inbox deliveries of these events to the inbox channel, as the worker would."""
    from quotaflow.plugins import default_registry

    channel = default_registry().channels[INBOX]({})
    # The later event first, as a worker may: the inbox still lists by event time.
    rows = db.session.scalars(select(OutboxDelivery).join(OutboxEvent).where(
        OutboxEvent.key.in_(keys), OutboxDelivery.channel == INBOX)
        .order_by(OutboxEvent.id.desc())).all()
    for row in rows:
        user = db.session.get(User, row.recipient_id)
        channel.deliver(Delivery(
            key=row.key, topic=row.event.topic, payload=row.event.payload,
            recipient=Recipient(user.id, user.username, user.display_name, user.locale),
            attempt=1, event_id=row.event_id, session=db.session))
        row.status = "delivered"
    db.session.commit()


def _unread(html: bytes) -> int | None:
    found = re.search(rb'data-testid="inbox-unread"[^>]*>(\d+)<', html)
    return int(found.group(1)) if found else None


def test_inbox_lists_newest_first_and_marks_read(app: Any) -> None:
    keys = [f"{EVENT_PREFIX}1", f"{EVENT_PREFIX}2"]
    with app.app_context():
        reader, other = _user("inbox.reader"), _user("inbox.other")
        reader_id = reader.id
        outbox.emit(db.session, "flow.task_created", {
            "title_en": "Approve the EAST-T1 adjustment", "title_zh": "审批 EAST-T1 调整",
            "body_en": "Lead East T1 asks for +5%.", "body_zh": "申请上调 5%。",
            "url": "/org/EAST-T1"}, to_users=[reader.id], key=keys[0])
        db.session.commit()
        outbox.emit(db.session, "flow.reminded", {"title_en": "Reminder: 1 task waits",
                                                  "title_zh": "提醒"},
                    to_users=[reader.id, other.id], key=keys[1])
        db.session.commit()
        _deliver_inbox(keys)
        first_id = db.session.scalar(select(InboxMessage.id).join(OutboxEvent).where(
            OutboxEvent.key == keys[0], InboxMessage.user_id == reader.id))

    client = sign_in(app.test_client(), "inbox.reader")
    home = client.get("/")
    assert b'hx-get="/inbox/badge"' in home.data  # the bell loads after the page
    assert _unread(client.get("/inbox/badge").data) == 2

    page = client.get("/inbox")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.index("Reminder: 1 task waits") < text.index("Approve the EAST-T1 adjustment")
    assert 'href="/org/EAST-T1"' in text and "Lead East T1 asks for +5%." in text
    assert text.count('data-testid="unread"') == 2

    # Someone else's message cannot be touched (and looks absent).
    other_client = sign_in(app.test_client(), "inbox.other")
    assert other_client.post(f"/inbox/{first_id}/read").status_code == 404

    fragment = client.post(f"/inbox/{first_id}/read", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    message_part, _, badge_part = fragment.data.partition(b'<a id="inbox-badge"')
    assert b'data-testid="mark-read"' not in message_part
    assert b'hx-swap-oob="true"' in badge_part and _unread(fragment.data) == 1
    with app.app_context():
        assert db.session.get(InboxMessage, first_id).read_at is not None

    done = client.post("/inbox/read-all")
    assert done.status_code == 302
    assert _unread(client.get("/inbox/badge").data) is None
    assert b'data-testid="unread"' not in client.get("/inbox").data
    assert _unread(other_client.get("/inbox/badge").data) == 1  # the other person's stays
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "inbox_mark_read", AuditEntry.actor_id == reader_id)
            .order_by(AuditEntry.id.desc()))
        assert entry is not None and entry.entity_id == "all"


def test_inbox_in_chinese(app: Any) -> None:
    key = f"{EVENT_PREFIX}zh"
    with app.app_context():
        reader = _user("inbox.reader")
        outbox.emit(db.session, "plan.version_created", {"title_en": "New plan",
                                                         "title_zh": "新计划"},
                    to_users=[reader.id], key=key)
        db.session.commit()
        _deliver_inbox([key])
    client = sign_in(app.test_client(), "inbox.reader")
    client.post("/language", data={"lang": "zh", "next": "/inbox"})
    page = client.get("/inbox").get_data(as_text=True)
    assert "新计划" in page and "New plan" not in page


def test_outbox_page_shows_dead_deliveries_and_retry_requeues(app: Any,
                                                               as_user: Any) -> None:
    key = f"{EVENT_PREFIX}dead"
    with app.app_context():
        outbox.emit(db.session, "letter.completed", {"letter_id": 1}, key=key)
        event = db.session.scalar(select(OutboxEvent).where(OutboxEvent.key == key))
        dead = OutboxDelivery(event=event, channel="test_dead_channel",
                              key=f"{key}:test_dead_channel", status="failed", attempts=8,
                              last_error="gave up after 8 attempts: HTTP 503 from hr.example")
        db.session.add(dead)
        db.session.commit()
        dead_id = dead.id

    hrbp = as_user("hrbp")
    home = hrbp.get("/").get_data(as_text=True)
    assert 'href="/outbox"' in home
    page = hrbp.get("/outbox")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'data-delivery="{dead_id}"' in text and "HTTP 503 from hr.example" in text
    assert 'data-channel="test_dead_channel"' in text

    response = hrbp.post(f"/outbox/deliveries/{dead_id}/retry")
    assert response.status_code == 302
    with app.app_context():
        row = db.session.get(OutboxDelivery, dead_id)
        assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "outbox_requeue", AuditEntry.entity_id == str(dead_id)))
        assert entry is not None and entry.before["status"] == "failed"
    assert f"#{dead_id}" in hrbp.get("/outbox").get_data(as_text=True)
    assert hrbp.post("/outbox/deliveries/999999999/retry").status_code == 404

    head = as_user("head.east")
    assert 'href="/outbox"' not in head.get("/").get_data(as_text=True)
    assert head.get("/outbox").status_code == 403
    assert head.post(f"/outbox/deliveries/{dead_id}/retry").status_code == 403


def test_outbox_cli_status_and_retry(app: Any) -> None:
    from quotaflow.cli import main

    key = f"{EVENT_PREFIX}cli"
    with app.app_context():
        outbox.emit(db.session, "letter.completed", {"letter_id": 2}, key=key)
        event = db.session.scalar(select(OutboxEvent).where(OutboxEvent.key == key))
        dead = OutboxDelivery(event=event, channel="test_cli_channel", key=f"{key}:test_cli_channel",
                              status="failed", attempts=3, last_error="HTTP 410 Gone")
        db.session.add(dead)
        db.session.commit()
        dead_id = dead.id
    runner = app.test_cli_runner()
    status = runner.invoke(main, ["outbox", "status"])
    assert status.exit_code == 0, status.output
    assert "test_cli_channel" in status.output and f"#{dead_id} failed" in status.output
    assert "HTTP 410 Gone" in status.output

    retried = runner.invoke(main, ["outbox", "retry", str(dead_id), "--as", "hrbp"])
    assert retried.exit_code == 0, retried.output
    assert f"delivery #{dead_id} (test_cli_channel) is queued again" in retried.output
    with app.app_context():
        assert db.session.get(OutboxDelivery, dead_id).status == "pending"
        entry = db.session.scalar(select(AuditEntry).where(
            AuditEntry.action == "outbox_requeue", AuditEntry.entity_id == str(dead_id)))
        assert entry.actor_name == "hrbp"
    missing = runner.invoke(main, ["outbox", "retry", "999999999"])
    assert missing.exit_code != 0 and "There is no delivery 999999999" in missing.output


def test_outbox_cli_purge_deletes_old_delivered_rows(app: Any) -> None:
    import datetime as dt

    from quotaflow.cli import main
    from quotaflow.store.models import utcnow

    long_ago = utcnow() - dt.timedelta(days=200)
    with app.app_context():
        keys = {}
        for name, status in (("old", "delivered"), ("dead", "failed")):
            key = keys[name] = f"{EVENT_PREFIX}purge-{name}"
            outbox.emit(db.session, "letter.completed", {"letter_id": 3}, key=key)
            event = db.session.scalar(select(OutboxEvent).where(OutboxEvent.key == key))
            db.session.add(OutboxDelivery(event=event, channel="test_purge", key=f"{key}:x",
                                          status=status, attempts=1, created_at=long_ago,
                                          delivered_at=long_ago if status == "delivered"
                                          else None))
        db.session.execute(delete(OutboxDelivery).where(
            OutboxDelivery.channel != "test_purge",
            OutboxDelivery.event_id.in_(select(OutboxEvent.id).where(
                OutboxEvent.key.in_(list(keys.values()))))))
        db.session.commit()
    runner = app.test_cli_runner()
    refused = runner.invoke(main, ["outbox", "purge", "--older-than", "0"])
    assert refused.exit_code != 0 and "--older-than" in refused.output
    purged = runner.invoke(main, ["outbox", "purge", "--older-than", "150", "--as", "hrbp"])
    assert purged.exit_code == 0, purged.output
    assert re.search(r"purged [1-9]\d* delivered deliveries and [1-9]\d* events older than "
                     r"150 days", purged.output), purged.output
    with app.app_context():
        left = set(db.session.scalars(select(OutboxEvent.key).where(
            OutboxEvent.key.in_(list(keys.values())))))
        assert left == {keys["dead"]}  # the failed delivery and its event stay
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "outbox_purge")
                                  .order_by(AuditEntry.id.desc()).limit(1))
        assert entry.actor_name == "hrbp" and entry.after["older_than_days"] == 150


def test_users_create_sets_the_email(app: Any) -> None:
    from quotaflow.cli import main

    username = "mail.cli"
    runner = app.test_cli_runner()
    bad = runner.invoke(main, ["users", "create", username, "--name", "M", "--role", "sales",
                               "--scope", "EAST-T1", "--email", "nobody", "--password", "pw-12345678"])
    assert bad.exit_code != 0 and "“nobody” is not an e-mail address" in bad.output
    made = runner.invoke(main, ["users", "create", username, "--name", "M", "--role", "sales",
                                "--scope", "EAST-T1", "--email", "m@example.com",
                                "--password", "pw-12345678"])
    assert made.exit_code == 0, made.output
    with app.app_context():
        user = user_by_username(db.session, username)
        assert user.email == "m@example.com"
