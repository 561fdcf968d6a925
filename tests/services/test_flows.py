"""Approval flows on the database: versions pinned, paths of the appeal flow, action
handlers, refusals, time passing, the directory, tasks and the outbox."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotaflow.flows import Action
from quotaflow.services import flows, registry, specs
from quotaflow.services.flows import FlowRefused
from quotaflow.services.uow import unit_of_work
from quotaflow.store import db, flow_queries
from quotaflow.store import queries as q
from quotaflow.store.flow_models import FlowInstance, FlowTask
from quotaflow.store.models import AuditEntry, User, utcnow
from quotaflow.store.outbox_models import OutboxEvent

SUBJECT = "flow_test"  # no feature listens for this subject type
FLOW_DIR = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs" / "flows"


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def handled(monkeypatch):
    """Register recording handlers for the actions the seed flows use (restored after)."""
    calls: list[tuple[str, int, dict, str]] = []

    def handler(name):
        def run(session, instance):
            calls.append((name, instance.id, instance.data, instance.status))
        return run

    for name in ("apply_adjustment", "publish_recompute"):
        monkeypatch.setitem(registry._loaded, registry.FLOW_ACTIONS[name], handler(name))
    return calls


def user(session, name: str) -> User:
    found = q.user_by_username(session, name)
    assert found is not None, name
    return found


def start_appeal(session, change_pct: float, *, key: str = "appeal", unit: str = "EAST",
                 initiator: str = "head.east", now: dt.datetime | None = None) -> FlowInstance:
    data = {"allocated": 1_000_000.0, "requested": 1_000_000.0 * (1 + change_pct / 100),
            "change_pct": change_pct, "reason": "new competitor"}
    return flows.start(session, key, unit=q.unit_by_code(session, unit),
                       initiator=user(session, initiator), data=data, subject_type=SUBJECT,
                       subject_id=1, now=now)


def pending(session, instance: FlowInstance) -> list[str]:
    return sorted(session.scalars(
        select(User.username).join(FlowTask, FlowTask.user_id == User.id)
        .where(FlowTask.instance_id == instance.id, FlowTask.status == "pending")))


def events(session, instance: FlowInstance) -> list[OutboxEvent]:
    return list(session.scalars(select(OutboxEvent).where(
        OutboxEvent.key.like(f"flow:{instance.id}:%")).order_by(OutboxEvent.id)))


def save_flow(session, key: str, doc: dict) -> None:
    version = specs.create_version(session, "flow", key, doc, None, "test")
    specs.activate(session, version, None)
    session.commit()


def simple_flow(key: str, **approval) -> dict:
    node = {"id": "ok", "kind": "approval", "name_en": "Check", "name_zh": "审核",
            "assignees": [{"user": "cfo"}], "mode": "single", "next": "done"} | approval
    return {"id": key, "version": 1, "fields": {"amount": "number"},
            "nodes": [{"id": "start", "kind": "start", "next": "ok"}, node,
                      {"id": "done", "kind": "end"}]}


def test_every_seed_flow_is_active_and_valid(ctx) -> None:
    keys = sorted(p.stem for p in FLOW_DIR.glob("*.json"))
    assert {"appeal", "appeal_team", "appeal_person", "emergency_recompute"} <= set(keys)
    for key in keys:
        version = flows.active_flow(ctx, key)
        assert version is not None, key
        assert specs.validate_content(ctx, "flow", key, version.content) == []


def test_start_pins_the_active_version(ctx) -> None:
    save_flow(ctx, "flowtest-pin", simple_flow("flowtest-pin"))
    v1 = flows.active_flow(ctx, "flowtest-pin")
    instance = flows.start(ctx, "flowtest-pin", unit=q.unit_by_code(ctx, "EAST"),
                           initiator=user(ctx, "head.east"), data={"amount": 1.0},
                           subject_type=SUBJECT, subject_id=1)
    ctx.commit()
    assert instance.flow_version_id == v1.id and instance.revision == 1
    assert instance.status == "running" and instance.data == {"amount": 1.0}
    assert pending(ctx, instance) == ["cfo"]
    # A new version (approved by the CEO instead) does not change the running instance.
    save_flow(ctx, "flowtest-pin", simple_flow("flowtest-pin", assignees=[{"user": "ceo"}]))
    assert flows.active_flow(ctx, "flowtest-pin").version == v1.version + 1
    with pytest.raises(FlowRefused) as refused:
        flows.act(ctx, instance.id, user(ctx, "ceo"), Action("approve"))
    assert refused.value.code == "not_assignee"
    done = flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.commit()
    assert (done.status, done.flow_version_id, done.revision) == ("approved", v1.id, 2)
    assert done.ended_at is not None
    assert [e["action"] for e in done.state["history"]] == ["create", "submit", "approve"]


def test_appeal_over_five_percent_needs_hrbp_and_cfo(ctx, handled) -> None:
    instance = start_appeal(ctx, 8.0)
    assert instance.state["current"] == ["countersign"]
    approvers = pending(ctx, instance)
    assert "hrbp" in approvers and "cfo" in approvers and "head.east" not in approvers
    assert {e.topic for e in events(ctx, instance)} == {"flow.task_created"}
    for name in approvers:
        if name != "cfo":
            instance = flows.act(ctx, instance.id, user(ctx, name), Action("approve", comment="ok"))
            assert instance.status == "running" and not handled
    assert pending(ctx, instance) == ["cfo"]
    instance = flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.commit()
    assert instance.status == "approved"
    assert handled == [("apply_adjustment", instance.id, instance.data, "approved")]
    assert pending(ctx, instance) == []
    ended = [e for e in events(ctx, instance) if e.topic == "flow.ended"]
    assert len(ended) == 1 and ended[0].to_users == [user(ctx, "head.east").id]
    assert ended[0].payload["url"] == f"/tasks/{instance.id}"
    assert ended[0].payload["title_en"] and ended[0].payload["title_zh"]
    notified = [e for e in events(ctx, instance) if e.topic == "flow.notified"]
    assert notified and user(ctx, "hrbp").id in notified[0].to_users


def test_appeal_up_to_five_percent_needs_any_one(ctx, handled) -> None:
    instance = start_appeal(ctx, -5.0)
    assert instance.state["current"] == ["any_one"]
    assert {"hrbp", "cfo"} <= set(pending(ctx, instance))
    instance = flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.commit()
    assert instance.status == "approved" and len(handled) == 1
    with pytest.raises(FlowRefused) as refused:
        flows.act(ctx, instance.id, user(ctx, "hrbp"), Action("approve"))
    assert refused.value.code == "already_decided"
    assert refused.value.params["by"] == "others"
    with pytest.raises(FlowRefused) as again:
        flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    assert again.value.code == "already_decided" and again.value.params["by"] == "you"


def test_a_rejection_ends_without_running_the_action(ctx, handled) -> None:
    instance = start_appeal(ctx, 2.0)
    instance = flows.act(ctx, instance.id, user(ctx, "hrbp"), Action("reject", comment="no"))
    ctx.commit()
    assert instance.status == "rejected" and handled == []
    assert [e.topic for e in events(ctx, instance)][-1] == "flow.ended"


def test_unknown_action_is_refused_and_nothing_changes(ctx, monkeypatch) -> None:
    instance = start_appeal(ctx, 1.0)
    ctx.commit()
    # A flow version stored while an action was declared, run after it no longer is.
    monkeypatch.delitem(registry.FLOW_ACTIONS, "apply_adjustment")
    before = copy.deepcopy(instance.state)
    audits = ctx.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(FlowRefused) as refused:
        flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    assert refused.value.code == "unknown_action"
    assert "apply_adjustment" in refused.value.message
    ctx.rollback()
    again = ctx.get(FlowInstance, instance.id, populate_existing=True)
    assert (again.revision, again.status, again.state) == (1, "running", before)
    assert "cfo" in pending(ctx, again)
    assert ctx.scalar(select(func.count()).select_from(AuditEntry)) == audits


def test_a_failing_handler_refuses_the_step(ctx, monkeypatch) -> None:
    def broken(session, instance):
        raise FlowRefused("adjustment_failed", "the plan is locked")

    monkeypatch.setitem(registry._loaded, registry.FLOW_ACTIONS["apply_adjustment"], broken)
    instance = start_appeal(ctx, 1.0)
    ctx.commit()
    with pytest.raises(FlowRefused):
        flows.act(ctx, instance.id, user(ctx, "cfo"), Action("approve"))
    ctx.rollback()
    assert ctx.get(FlowInstance, instance.id, populate_existing=True).status == "running"


def test_non_assignees_and_non_initiators_are_refused(ctx, handled) -> None:
    with unit_of_work(ctx):  # each refused act rolls back its own unit of work, not this
        instance = start_appeal(ctx, 3.0)
    for name, action, code in [
        ("lead.east.t1", Action("approve"), "not_assignee"),
        ("head.east", Action("approve"), "not_assignee"),
        ("hrbp", Action("withdraw"), "not_initiator"),
        ("hrbp", Action("urge"), "not_initiator"),
        ("lead.east.t1", Action("comment", comment="hi"), "not_participant"),
        ("hrbp", Action("transfer", target="nobody"), "unknown_user"),
        ("head.east", Action("tick"), "not_system"),
    ]:
        with pytest.raises(FlowRefused) as refused:
            flows.act(ctx, instance.id, user(ctx, name), action)
        assert refused.value.code == code, (name, action)
    with pytest.raises(FlowRefused) as missing:
        flows.act(ctx, 987654321, user(ctx, "cfo"), Action("approve"))
    assert missing.value.code == "not_found"
    with pytest.raises(FlowRefused) as none:
        flows.start(ctx, "no-such-flow", unit=q.unit_by_code(ctx, "EAST"),
                    initiator=user(ctx, "head.east"), data={}, subject_type=SUBJECT, subject_id=1)
    assert none.value.code == "no_flow"


def test_withdraw_only_before_the_first_decision(ctx, handled) -> None:
    first = start_appeal(ctx, 9.0)
    first = flows.act(ctx, first.id, user(ctx, "head.east"), Action("withdraw", comment="oops"))
    assert first.status == "withdrawn" and pending(ctx, first) == []
    second = start_appeal(ctx, 9.0)
    flows.act(ctx, second.id, user(ctx, "cfo"), Action("approve"))
    with pytest.raises(FlowRefused) as refused:
        flows.act(ctx, second.id, user(ctx, "head.east"), Action("withdraw"))
    assert refused.value.code == "too_late_to_withdraw"
    ctx.commit()


def test_return_edit_transfer_and_add_approver(ctx, handled) -> None:
    instance = start_appeal(ctx, 4.0)
    hrbp, cfo, ceo = user(ctx, "hrbp"), user(ctx, "cfo"), user(ctx, "ceo")
    instance = flows.act(ctx, instance.id, hrbp, Action("edit", changes={"requested": 1_030_000.0}))
    assert instance.data["requested"] == 1_030_000.0
    # The change in percent is derived from the requested target: an approver cannot make
    # the two disagree (the confirmation service recomputes it from what is approved).
    for changes in ({"reason": "mine"}, {"change_pct": 3.0}):
        with pytest.raises(FlowRefused) as refused:
            flows.act(ctx, instance.id, hrbp, Action("edit", changes=changes))
        assert refused.value.code == "field_not_editable"
    instance = flows.act(ctx, instance.id, hrbp, Action("return", target="initiator",
                                                        comment="add evidence"))
    assert instance.status == "draft" and pending(ctx, instance) == []
    instance = flows.act(ctx, instance.id, user(ctx, "head.east"),
                         Action("submit", changes={"reason": "evidence attached"}))
    assert instance.status == "running" and "cfo" in pending(ctx, instance)
    instance = flows.act(ctx, instance.id, cfo, Action("transfer", target="ceo"))
    assert "ceo" in pending(ctx, instance) and "cfo" not in pending(ctx, instance)
    instance = flows.act(ctx, instance.id, ceo, Action("add_approver", target="admin",
                                                       position="before"))
    assert "admin" in pending(ctx, instance) and "ceo" not in pending(ctx, instance)
    with pytest.raises(FlowRefused) as wait:
        flows.act(ctx, instance.id, ceo, Action("approve"))
    assert wait.value.code == "not_your_turn"
    instance = flows.act(ctx, instance.id, user(ctx, "admin"), Action("approve"))
    instance = flows.act(ctx, instance.id, ceo, Action("approve"))
    ctx.commit()
    assert instance.status == "approved" and len(handled) == 1
    assert handled[0][2]["reason"] == "evidence attached"
    actions = ctx.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "flow_instance", AuditEntry.entity_id == str(instance.id))
        .order_by(AuditEntry.id)).all()
    assert actions == ["flow_start", "flow_edit", "flow_return", "flow_submit", "flow_transfer",
                       "flow_add_approver", "flow_approve", "flow_approve"]


def test_tick_reminds_when_a_task_is_due(ctx) -> None:
    save_flow(ctx, "flowtest-remind", simple_flow("flowtest-remind", due_hours=1))
    t0 = utcnow() - dt.timedelta(hours=3)
    instance = flows.start(ctx, "flowtest-remind", unit=q.unit_by_code(ctx, "EAST"),
                           initiator=user(ctx, "head.east"), data={"amount": 2.0},
                           subject_type=SUBJECT, subject_id=1, now=t0)
    ctx.commit()
    task = ctx.scalar(select(FlowTask).where(FlowTask.instance_id == instance.id))
    assert task.due_at == t0 + dt.timedelta(hours=1)
    assert flows.tick(ctx, t0 + dt.timedelta(minutes=30), only=[instance.id]).ticked == []
    result = flows.tick(ctx)  # now: the task is two hours overdue
    ctx.commit()
    assert instance.id in result.ticked
    instance = ctx.get(FlowInstance, instance.id, populate_existing=True)
    assert instance.status == "running" and instance.revision == 2
    assert instance.state["history"][-1]["action"] == "tick"
    reminded = [e for e in events(ctx, instance) if e.topic == "flow.reminded"]
    assert len(reminded) == 1 and reminded[0].to_users == [user(ctx, "cfo").id]
    task = ctx.scalar(select(FlowTask).where(FlowTask.instance_id == instance.id))
    assert task.due_at > utcnow()  # the next reminder is in the future
    assert flows.tick(ctx, only=[instance.id]).ticked == []


def test_tick_auto_approves_and_escalates(ctx, handled) -> None:
    save_flow(ctx, "flowtest-auto", simple_flow("flowtest-auto", due_hours=2,
                                                on_due="auto_approve"))
    save_flow(ctx, "flowtest-escalate", simple_flow("flowtest-escalate", due_hours=2,
                                                    on_due="escalate",
                                                    escalate_to=[{"user": "ceo"}]))
    t0 = utcnow() - dt.timedelta(hours=5)
    made = [flows.start(ctx, key, unit=q.unit_by_code(ctx, "EAST"),
                        initiator=user(ctx, "head.east"), data={"amount": 1.0},
                        subject_type=SUBJECT, subject_id=1, now=t0)
            for key in ("flowtest-auto", "flowtest-escalate")]
    flows.tick(ctx, only=[i.id for i in made])
    ctx.commit()
    auto, escalated = (ctx.get(FlowInstance, i.id, populate_existing=True) for i in made)
    assert auto.status == "approved"
    assert escalated.status == "running" and pending(ctx, escalated) == ["ceo"]


def test_directory_heads_and_managers(ctx) -> None:
    directory = flows.build_directory(ctx, q.unit_by_code(ctx, "P0001"))
    assert directory.heads["EAST"] == "head.east"
    assert directory.heads["EAST-T1"] == "lead.east.t1"
    assert directory.managers["sales.p0001"] == "lead.east.t1"
    assert directory.managers["lead.east.t1"] == "head.east"
    assert {"P0001", "EAST-T1", "EAST", "HQ"} <= set(directory.units)
    assert ("hrbp", "hrbp", q.unit_by_code(ctx, "HQ").path) in directory.grants


def test_team_and_person_appeals_go_to_the_head_above(ctx, handled) -> None:
    team = start_appeal(ctx, 3.0, key="appeal_team", unit="EAST-T1", initiator="lead.east.t1")
    assert pending(ctx, team) == ["head.east"]
    person = start_appeal(ctx, 3.0, key="appeal_person", unit="P0001", initiator="sales.p0001")
    assert pending(ctx, person) == ["lead.east.t1"]
    person = flows.act(ctx, person.id, user(ctx, "lead.east.t1"), Action("approve"))
    assert person.status == "approved" and handled[-1][0] == "apply_adjustment"
    ctx.commit()


def test_emergency_recompute_needs_one_executive(ctx, handled) -> None:
    instance = flows.start(ctx, "emergency_recompute", unit=q.unit_by_code(ctx, "HQ"),
                           initiator=user(ctx, "hrbp"),
                           data={"plan_id": 1, "period": "2026Q4", "reason": "merger"},
                           subject_type=SUBJECT, subject_id=1)
    assert pending(ctx, instance) == ["ceo", "cfo"]
    instance = flows.act(ctx, instance.id, user(ctx, "ceo"), Action("approve"))
    assert instance.status == "approved"
    assert handled[-1][:2] == ("publish_recompute", instance.id)
    ctx.commit()


def test_pending_tasks_and_started(ctx, handled) -> None:
    instance = start_appeal(ctx, 1.5)
    ctx.commit()
    cfo = user(ctx, "cfo")
    mine = flow_queries.open_tasks(ctx, cfo.id)
    assert instance.id in {t.instance_id for t in mine}
    assert flow_queries.open_task_count(ctx, cfo.id) == len(mine)
    assert instance.id in {i.id for i in flow_queries.started_by(ctx, user(ctx, "head.east").id)}
    flows.act(ctx, instance.id, cfo, Action("approve"))
    ctx.commit()
    assert instance.id not in {t.instance_id for t in flow_queries.open_tasks(ctx, cfo.id)}
    assert instance.id not in {t.instance_id for t in flow_queries.open_tasks(ctx, user(ctx, "hrbp").id)}


def test_a_refused_tick_leaves_that_instance_whole_and_ticks_the_others(
        ctx, monkeypatch) -> None:
    """The step used to stay written (approved, no end handler run) when a handler refused
    after it: tick caught the refusal and the caller committed the half."""
    def refuse(session, instance):
        raise FlowRefused("adjustment_failed", "the plan is locked")

    subject = "flow_tick_test"
    monkeypatch.setitem(registry.FLOW_END_HANDLERS, subject, ("tests:refuse",))
    monkeypatch.setitem(registry._loaded, "tests:refuse", refuse)
    save_flow(ctx, "flowtest-tick-auto", simple_flow("flowtest-tick-auto", due_hours=2,
                                                     on_due="auto_approve"))
    save_flow(ctx, "flowtest-tick-remind", simple_flow("flowtest-tick-remind", due_hours=1))
    t0 = utcnow() - dt.timedelta(hours=5)
    broken, fine = (flows.start(ctx, key, unit=q.unit_by_code(ctx, "EAST"),
                                initiator=user(ctx, "head.east"), data={"amount": 1.0},
                                subject_type=kind, subject_id=1, now=t0)
                    for key, kind in (("flowtest-tick-auto", subject),
                                      ("flowtest-tick-remind", SUBJECT)))
    ctx.commit()
    before = len(events(ctx, broken))
    result = flows.tick(ctx, only=[broken.id, fine.id])
    ctx.commit()
    assert result.ticked == [fine.id]
    assert result.refused == {broken.id: "the plan is locked"}
    broken = ctx.get(FlowInstance, broken.id, populate_existing=True)
    assert (broken.status, broken.revision) == ("running", 1)
    assert broken.state["history"][-1]["action"] != "tick"
    assert pending(ctx, broken) == ["cfo"]
    assert len(events(ctx, broken)) == before  # no "flow.ended" for a step that never was
    fine = ctx.get(FlowInstance, fine.id, populate_existing=True)
    assert fine.revision == 2 and fine.state["history"][-1]["action"] == "tick"
