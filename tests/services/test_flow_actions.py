"""The built-in flow actions: "publish" (a plan published once the flow approves) and
"sync_hr" (the flow's data to the HR system through the outbox)."""

from __future__ import annotations

import pytest
from confirm_support import draft_plan, fresh_period, user
from sqlalchemy import select

from quotaflow.flows.interpreter import Action
from quotaflow.services import flows, specs
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.confirmation_models import ConfirmationGroup
from quotaflow.store.models import AuditEntry, Plan
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


def _flow(session, key: str, action: str, fields: dict) -> None:
    doc = {"id": key, "version": 1, "name_en": key, "name_zh": key, "fields": fields,
           "nodes": [{"id": "start", "kind": "start", "next": "ok"},
                     {"id": "ok", "kind": "approval", "name_en": "CFO", "name_zh": "CFO",
                      "assignees": [{"user": "cfo"}], "mode": "single", "next": "act"},
                     {"id": "act", "kind": "action", "action": action, "next": "done"},
                     {"id": "done", "kind": "end", "outcome": "approved"}]}
    specs.activate(session, specs.create_version(session, "flow", key, doc, None, "t"), None)
    session.commit()


def _start(session, key: str, data: dict):
    instance = flows.start(session, key, unit=q.unit_by_code(session, "HQ"),
                           initiator=user(session, "hrbp"), data=data,
                           subject_type="flow-actions-test", subject_id=1)
    session.commit()
    return instance


def test_publish_waits_for_the_approval_then_publishes_as_the_approver(ctx) -> None:
    _flow(ctx, "flowtest-publish", "publish", {"plan_id": "integer"})
    period = fresh_period(ctx)
    plan = draft_plan(ctx, period)
    instance = _start(ctx, "flowtest-publish", {"plan_id": plan.id})
    assert ctx.get(Plan, plan.id).status == "draft"  # nothing before the CFO approves
    flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.commit()
    ctx.expire_all()
    assert ctx.get(Plan, plan.id).status == "published"
    assert ctx.scalar(select(ConfirmationGroup).where(
        ConfirmationGroup.period_id == period.id)) is not None  # the regions' targets opened
    entry = ctx.scalar(select(AuditEntry).where(AuditEntry.action == "publish_plan",
                                                AuditEntry.after["id"].as_integer() == plan.id))
    assert entry.actor_name == "cfo"


def test_a_publish_that_cannot_be_done_refuses_the_approval_whole(ctx) -> None:
    _flow(ctx, "flowtest-publish", "publish", {"plan_id": "integer"})
    period = fresh_period(ctx)
    plan = draft_plan(ctx, period)
    ctx.get(Plan, plan.id).status = "superseded"  # no longer a draft
    ctx.commit()
    instance = _start(ctx, "flowtest-publish", {"plan_id": plan.id})
    with pytest.raises(flows.FlowRefused) as refused:
        flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    assert refused.value.code == "publish_failed" and refused.value.params == {
        "field": "plan_id"}
    ctx.rollback()
    assert ctx.get(type(instance), instance.id).status == "running"  # still waiting for the CFO
    missing = _start(ctx, "flowtest-publish", {"plan_id": 987_654_321})
    with pytest.raises(flows.FlowRefused, match="there is no plan 987654321"):
        flows.act(ctx, missing.id, user(ctx, "cfo"), Action("approve"))
    ctx.rollback()


def test_sync_hr_sends_the_flows_data_to_the_hr_webhook_once(ctx) -> None:
    _flow(ctx, "flowtest-sync", "sync_hr", {"employee": "string", "amount": "number"})
    instance = _start(ctx, "flowtest-sync", {"employee": "P0001", "amount": 12_000.0})
    assert ctx.scalar(select(OutboxEvent).where(
        OutboxEvent.key == f"hr.sync:{instance.id}")) is None  # not before the approval
    flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.commit()
    event = ctx.scalar(select(OutboxEvent).where(OutboxEvent.key == f"hr.sync:{instance.id}"))
    assert event.topic == "hr.sync"
    assert event.payload["data"] == {"employee": "P0001", "amount": 12_000.0}
    assert (event.payload["flow"], event.payload["unit"]) == ("flowtest-sync", "HQ")
    channels = {d.channel for d in ctx.scalars(select(OutboxDelivery).where(
        OutboxDelivery.event_id == event.id))}
    assert channels == {"hr_webhook"}  # routed by the seeded notification routes
