"""A small world for the API tests: a period of its own with a published plan, an appeal
(with its evidence and approval flow), a second draft to compare, a commitment letter,
an alert and an outbox delivery. Built once per module."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from confirm_support import draft_plan, fresh_period, user
from sqlalchemy import select

from quotaflow.services import alert_scan, emergency, letters
from quotaflow.services import confirmation as conf
from quotaflow.services import uploads as upload_service
from quotaflow.services.auth import create_api_token, hash_password
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import ApiToken, RoleGrant, User
from quotaflow.store.outbox_models import InboxMessage, OutboxDelivery, OutboxEvent
from quotaflow.store.tracking_models import Alert


@dataclass(frozen=True)
class World:
    period: str
    plan_id: int  # published
    draft_id: int  # a later draft of the same period
    east_item: int  # EAST's item, pending (head.east answers)
    north_item: int  # NORTH's item, appealed by head.north
    appeal_id: int
    flow_id: int  # the appeal's approval flow
    upload_id: int  # NORTH's evidence file
    letter_id: int  # P0001's card (sales.p0001; lead.east.t1 countersigns)
    alert_id: int | None
    delivery_id: int | None
    message_id: int  # head.north's inbox message
    spare_user: str  # an account of its own (sales over P0003)
    spare_grant: int
    emergency_id: int  # a pending emergency recompute of the period (Jinan frozen)
    spare_token: int = 0  # an API token of the spare account


def store_file(app, unit_code: str, name: str = "proof.txt") -> int:
    session = db.session
    stored = upload_service.store_upload(
        session, user(session, "admin"), q.unit_by_code(session, unit_code), name,
        io.BytesIO(b"market survey: two large customers moved to a competitor\n"),
        storage_dir=upload_service.storage_dir(app.instance_path))
    return stored.id


@pytest.fixture(scope="module")
def world(app):
    return _world(app)


def _world(app) -> World:
    with app.app_context():
        session = db.session
        period = fresh_period(session)
        plan = draft_plan(session, period)
        conf.publish(session, plan, user(session, "hrbp"))
        east = cq.item_for_unit(session, period.id, q.unit_by_code(session, "EAST").id)
        north = cq.item_for_unit(session, period.id, q.unit_by_code(session, "NORTH").id)
        upload_id = store_file(app, "NORTH")
        bounds = conf.appeal_bounds(session, north)
        appeal = conf.submit_appeal(session, north.id, user(session, "head.north"),
                                    requested=bounds.minimum,
                                    reason="Two key accounts left the region.",
                                    evidence=[upload_id])
        draft = draft_plan(session, period, "aggressive")
        (letter,) = letters.issue_letters(session, plan, [q.unit_by_code(session, "P0001").id],
                                          None)
        session.commit()
        demo = q.period_by_code(session, "2026Q4")
        alert_scan.scan(session, demo, 6, trigger="test")
        alert_id = session.scalar(select(Alert.id).order_by(Alert.id).limit(1))
        delivery_id = session.scalar(select(OutboxDelivery.id).order_by(OutboxDelivery.id)
                                     .limit(1))
        reader = user(session, "head.north")
        event = OutboxEvent(topic="test.api", key=f"test.api:{period.code}", payload={},
                            to_users=[reader.id])
        session.add(event)
        session.flush()
        message = InboxMessage(user_id=reader.id, event_id=event.id, topic="test.api",
                               title_en="A test message", title_zh="测试消息")
        session.add(message)
        spare = User(username=f"api.spare.{period.code.lower()}", display_name="Spare",
                     password_hash=hash_password("a-long-password"), locale="en")
        spare.grants.append(RoleGrant(role="sales", unit=q.unit_by_code(session, "P0003")))
        session.add(spare)
        session.commit()
        recompute = emergency.submit(session, period, user(session, "hrbp"),
                                     reason="Local policy change in Jinan.", cities=["Jinan"])
        create_api_token(session, spare, "spare")
        session.commit()
        spare_token = session.scalar(select(ApiToken.id).where(ApiToken.user_id == spare.id))
        return World(period.code, plan.id, draft.id, east.id, north.id, appeal.id,
                     appeal.flow_instance_id, upload_id, letter.id, alert_id, delivery_id,
                     message.id, spare.username, spare.grants[0].id, recompute.id,
                     spare_token)
