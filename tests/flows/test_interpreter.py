"""The approval-flow interpreter: modes, routing, actions, permissions and due times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from quotaflow.flows import (
    SYSTEM,
    Action,
    Directory,
    FlowError,
    FlowSpec,
    FlowSpecError,
    FlowState,
    load_flow,
    new_instance,
    step,
)

APPEAL = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs" / "flows" / "appeal.json"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DIRECTORY = Directory(
    users=frozenset({"ini", "hrbp", "hrbp.west", "cfo", "ceo", "admin", "mgr1", "mgr2",
                     "x", "y", "z"}),
    grants=(("hrbp", "hrbp", "/1/"), ("hrbp.west", "hrbp", "/1/9/"),
            ("cfo", "executive", "/1/"), ("ceo", "executive", "/1/")),
    units={"HQ": "/1/", "EAST": "/1/2/", "WEST": "/1/9/"},
    heads={"HQ": "ceo", "EAST": "ini"},
    managers={"ini": "mgr1", "mgr1": "mgr2"},
)


def flow(**approval: Any) -> FlowSpec:
    """start -> one approval node "a" -> action -> end."""
    node = {"id": "a", "kind": "approval", "assignees": [{"user": "x"}], "next": "act"}
    node.update(approval)
    return load_flow({
        "id": "t", "version": 1,
        "fields": {"amount": "number", "who": "string", "urgent": "boolean"},
        "nodes": [{"id": "s", "kind": "start", "next": "a"}, node,
                  {"id": "act", "kind": "action", "action": "publish", "next": "e"},
                  {"id": "e", "kind": "end"}]})


def users(*names: str) -> list[dict[str, str]]:
    return [{"user": n} for n in names]


def started(spec: FlowSpec, data: dict | None = None, initiator: str = "ini",
            unit: str = "EAST") -> tuple[FlowState, list]:
    state = new_instance(spec, initiator, unit, data or {"amount": 1.0}, DIRECTORY, T0)
    return step(spec, state, Action("submit"), initiator, T0)


def act(spec: FlowSpec, state: FlowState, kind: str, actor: str, minutes: int = 1,
        **kw: Any) -> tuple[FlowState, list]:
    return step(spec, state, Action(kind, **kw), actor, T0 + timedelta(minutes=minutes))


def refused(spec: FlowSpec, state: FlowState, kind: str, actor: str, code: str,
            **kw: Any) -> None:
    before = state.as_dict()
    with pytest.raises(FlowError) as info:
        act(spec, state, kind, actor, **kw)
    assert info.value.code == code
    assert state.as_dict() == before


def pending(state: FlowState) -> list[str]:
    return sorted(t.assignee for t in state.pending())


def kinds(events: list) -> list[str]:
    return [e.kind for e in events]


# --- modes ------------------------------------------------------------------------


def test_single_takes_the_first_resolved() -> None:
    spec = flow(mode="single", assignees=users("x", "y"))
    state, events = started(spec)
    assert pending(state) == ["x"] and kinds(events) == ["task_created"]
    state, events = act(spec, state, "approve", "x")
    assert state.status == "approved"
    assert kinds(events) == ["action", "ended"]
    assert events[0].detail["name"] == "publish"
    assert events[-1].detail == {"outcome": "approved"}


def test_any_one_approval_passes_and_cancels_the_rest() -> None:
    spec = flow(mode="any", assignees=users("x", "y"))
    state, _ = started(spec)
    assert pending(state) == ["x", "y"]
    state, _ = act(spec, state, "approve", "y")
    assert state.status == "approved"
    assert {t.assignee: t.status for t in state.tasks} == {"x": "cancelled", "y": "approved"}


def test_any_one_rejection_rejects() -> None:
    spec = flow(mode="any", assignees=users("x", "y"))
    state, _ = started(spec)
    state, events = act(spec, state, "reject", "x")
    assert state.status == "rejected" and events[-1].detail == {"outcome": "rejected"}


def test_all_needs_everyone() -> None:
    spec = flow(mode="all", assignees=users("x", "y", "z"))
    state, _ = started(spec)
    state, events = act(spec, state, "approve", "x")
    assert state.status == "running" and events == []
    refused(spec, state, "approve", "x", "already_decided")
    state, _ = act(spec, state, "approve", "y")
    state, _ = act(spec, state, "approve", "z")
    assert state.status == "approved"


def test_all_one_rejection_rejects() -> None:
    spec = flow(mode="all", assignees=users("x", "y"))
    state, _ = started(spec)
    state, _ = act(spec, state, "approve", "x")
    state, _ = act(spec, state, "reject", "y")
    assert state.status == "rejected"


def test_percent_threshold() -> None:
    spec = flow(mode="percent", percent=60, assignees=users("x", "y", "z"))
    state, _ = started(spec)
    state, _ = act(spec, state, "approve", "x")
    assert state.status == "running"
    state, _ = act(spec, state, "approve", "y")  # 2/3 >= 60%
    assert state.status == "approved"
    state, _ = started(spec)
    state, _ = act(spec, state, "reject", "x")
    assert state.status == "running"  # 2/3 can still make it
    state, _ = act(spec, state, "reject", "y")
    assert state.status == "rejected"


def test_sequence_goes_one_after_another() -> None:
    spec = flow(mode="all", order="sequence", assignees=users("x", "y"))
    state, events = started(spec)
    assert pending(state) == ["x"] and [e.user for e in events] == ["x"]
    refused(spec, state, "approve", "y", "not_your_turn")
    state, events = act(spec, state, "approve", "x")
    assert pending(state) == ["y"] and [(e.kind, e.user) for e in events] == [
        ("task_created", "y")]
    state, _ = act(spec, state, "approve", "y")
    assert state.status == "approved"


def test_parallel_creates_all_tasks_at_once() -> None:
    spec = flow(mode="all", order="parallel", assignees=users("x", "y"))
    _, events = started(spec)
    assert sorted(e.user for e in events) == ["x", "y"]


# --- the demo's appeal flow ---------------------------------------------------------


@pytest.fixture(scope="module")
def appeal() -> FlowSpec:
    return load_flow(APPEAL)


def appeal_data(pct: float) -> dict:
    return {"allocated": 100.0, "requested": 100.0 + pct, "change_pct": pct,
            "reason": "new account"}


def test_appeal_over_five_percent_needs_hrbp_and_cfo(appeal: FlowSpec) -> None:
    state, _ = started(appeal, appeal_data(7.0), "head.east", "EAST")
    assert state.current == ("countersign",)
    assert pending(state) == ["cfo", "hrbp"]
    state, _ = act(appeal, state, "approve", "hrbp")
    assert state.status == "running"
    state, events = act(appeal, state, "approve", "cfo")
    assert state.status == "approved"
    assert kinds(events) == ["action", "notified", "ended"]
    assert events[0].detail["name"] == "apply_adjustment"
    assert events[0].detail["data"]["requested"] == 107.0
    assert events[1].detail["users"] == ["ceo", "hrbp"]  # parent unit head, then HRBP


def test_appeal_within_five_percent_needs_one(appeal: FlowSpec) -> None:
    state, _ = started(appeal, appeal_data(-3.0), "head.east", "EAST")
    assert state.current == ("any_one",)
    state, _ = act(appeal, state, "approve", "cfo")
    assert state.status == "approved"


def test_appeal_missing_field_refuses_submit(appeal: FlowSpec) -> None:
    state = new_instance(appeal, "head.east", "EAST", {"reason": "x"}, DIRECTORY, T0)
    with pytest.raises(FlowError) as info:
        step(appeal, state, Action("submit"), "head.east", T0)
    assert info.value.code == "condition_failed"


# --- assignees --------------------------------------------------------------------


def test_role_respects_the_unit_scope() -> None:
    spec = flow(mode="all", assignees=[{"role": "hrbp"}])
    assert pending(started(spec, unit="WEST")[0]) == ["hrbp", "hrbp.west"]
    assert pending(started(spec, unit="EAST")[0]) == ["hrbp"]


def test_field_unit_head_and_manager() -> None:
    spec = flow(mode="all", assignees=[{"field": "who"}, {"unit_head": "parent"},
                                       {"manager": 2}])
    state, _ = started(spec, {"amount": 1.0, "who": "z"})
    assert pending(state) == ["ceo", "mgr2", "z"]


def test_duplicates_collapse() -> None:
    spec = flow(mode="any", assignees=[{"user": "hrbp"}, {"role": "hrbp"}, {"user": "hrbp"}])
    state, _ = started(spec)
    assert [t.assignee for t in state.tasks] == ["hrbp"]


def test_a_countersign_needs_a_different_person_per_rule() -> None:
    # One person holding both roles must not sign for both (finding 3 of the integrity
    # issue: "the CFO countersign becomes one person's decision").
    directory = Directory(users=frozenset({"ini", "both", "cfo2"}),
                          grants=(("both", "hrbp", "/1/"), ("both", "executive", "/1/")),
                          units={"EAST": "/1/2/"}, heads={}, managers={})
    spec = flow(mode="all", assignees=[{"role": "hrbp"}, {"role": "executive"}])
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, directory, T0)
    with pytest.raises(FlowError) as info:
        step(spec, state, Action("submit"), "ini", T0)
    assert info.value.code == "countersign_not_distinct"
    # A second executive makes it two people: "both" signs as HRBP, cfo2 as executive.
    directory = Directory(users=directory.users,
                          grants=(*directory.grants, ("cfo2", "executive", "/1/")),
                          units=directory.units, heads={}, managers={})
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, directory, T0)
    state, _ = step(spec, state, Action("submit"), "ini", T0)
    assert sorted(t.assignee for t in state.pending()) == ["both", "cfo2"]
    state, _ = step(spec, state, Action("approve"), "both", T0)
    assert state.status == "running"  # one signature is not the countersign


def test_the_same_user_named_twice_is_no_countersign() -> None:
    spec = flow(mode="all", assignees=[{"user": "hrbp"}, {"role": "hrbp"}])
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, DIRECTORY, T0)
    with pytest.raises(FlowError) as info:
        step(spec, state, Action("submit"), "ini", T0)
    assert info.value.code == "countersign_not_distinct"


def test_fallback_when_nobody_resolves() -> None:
    spec = flow(assignees=[{"field": "who"}, {"manager": 5}], fallback=users("admin"))
    assert pending(started(spec)[0]) == ["admin"]


def test_no_assignee_at_all_refuses_the_submit() -> None:
    spec = flow(assignees=[{"user": "ghost"}])
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, DIRECTORY, T0)
    with pytest.raises(FlowError) as info:
        step(spec, state, Action("submit"), "ini", T0)
    assert info.value.code == "no_assignee"


def test_self_approval_allow_is_read_as_forbid() -> None:
    # A version saved before "allow" was refused still never lets the initiator approve:
    # their task goes to the fallback, and nobody else means no approver at all.
    spec = flow(assignees=users("ini"), self_approval="allow", fallback=users("ini", "y"))
    assert pending(started(spec)[0]) == ["y"]
    spec = flow(assignees=users("ini"), self_approval="allow")
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, DIRECTORY, T0)
    with pytest.raises(FlowError) as info:
        step(spec, state, Action("submit"), "ini", T0)
    assert info.value.code == "no_assignee"


def test_self_approval_allow_is_refused_when_saved() -> None:
    node = {"id": "a", "kind": "approval", "assignees": [{"user": "x"}], "next": "e",
            "self_approval": "allow"}
    doc = {"id": "t", "version": 1, "nodes": [{"id": "s", "kind": "start", "next": "a"}, node,
                                               {"id": "e", "kind": "end"}]}
    with pytest.raises(FlowSpecError) as info:
        load_flow(doc, saving=True)
    assert [(i.pointer, i.code) for i in info.value.issues] == [
        ("/nodes/1/self_approval", "self_approval_allow")]
    assert load_flow(doc).node("a").self_approval == "forbid"


def test_the_default_is_forbid() -> None:
    spec = flow(assignees=users("ini", "x"))
    assert spec.node("a").self_approval == "forbid"
    assert pending(started(spec)[0]) == ["x"]


def test_self_approval_skip_counts_as_approved() -> None:
    spec = flow(mode="all", order="sequence", assignees=users("ini", "x"),
                self_approval="skip")
    state, _ = started(spec)
    assert pending(state) == ["x"]
    assert [t.status for t in state.tasks] == ["skipped", "pending"]
    spec = flow(assignees=users("ini"), self_approval="skip")
    assert started(spec)[0].status == "approved"


def test_self_approval_forbid_uses_fallback() -> None:
    spec = flow(assignees=users("ini"), self_approval="forbid", fallback=users("ini", "y"))
    assert pending(started(spec)[0]) == ["y"]


# --- actions -----------------------------------------------------------------------


def test_only_the_initiator_submits_and_only_once() -> None:
    spec = flow()
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, DIRECTORY, T0)
    refused(spec, state, "submit", "x", "not_initiator")
    refused(spec, state, "approve", "x", "not_running")
    state, _ = act(spec, state, "submit", "ini")
    refused(spec, state, "submit", "ini", "already_submitted")
    refused(spec, state, "approve", "y", "not_assignee")


def test_submit_checks_field_types() -> None:
    spec = flow()
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0}, DIRECTORY, T0)
    refused(spec, state, "submit", "ini", "invalid_value", changes={"amount": "lots"})
    refused(spec, state, "submit", "ini", "invalid_value", changes={"amount": True})


def test_return_to_initiator_then_resubmit() -> None:
    spec = flow()
    state, _ = started(spec)
    state, _ = act(spec, state, "return", "x", comment="add evidence")
    assert state.status == "draft" and state.current == () and state.pending() == []
    state, events = act(spec, state, "submit", "ini", changes={"amount": 2.0})
    assert state.status == "running" and state.data["amount"] == 2.0
    assert [e.user for e in events] == ["x"]
    assert [e.action for e in state.history] == ["create", "submit", "return", "submit"]


def test_return_to_an_earlier_node() -> None:
    spec = load_flow({"id": "two", "version": 1, "nodes": [
        {"id": "s", "kind": "start", "next": "one"},
        {"id": "one", "kind": "approval", "assignees": users("x"), "next": "two"},
        {"id": "two", "kind": "approval", "assignees": users("y"), "next": "e"},
        {"id": "e", "kind": "end"}]})
    state, _ = started(spec)
    refused(spec, state, "return", "x", "invalid_return_target", target="two")
    state, _ = act(spec, state, "approve", "x")
    refused(spec, state, "return", "y", "invalid_return_target", target="nowhere")
    state, events = act(spec, state, "return", "y", target="one")
    assert state.current == ("one",) and pending(state) == ["x"]
    assert [e.user for e in events] == ["x"]
    state, _ = act(spec, state, "approve", "x")
    state, _ = act(spec, state, "approve", "y")
    assert state.status == "approved"


def test_withdraw_only_by_the_initiator_before_a_decision() -> None:
    spec = flow(mode="all", assignees=users("x", "y"))
    state, _ = started(spec)
    refused(spec, state, "withdraw", "x", "not_initiator")
    done, events = act(spec, state, "withdraw", "ini")
    assert done.status == "withdrawn" and done.pending() == []
    assert events[-1].detail == {"outcome": "withdrawn"}
    state, _ = act(spec, state, "approve", "x")
    refused(spec, state, "withdraw", "ini", "too_late_to_withdraw")


def test_transfer() -> None:
    spec = flow(mode="all", assignees=users("x", "y"))
    state, _ = started(spec)
    refused(spec, state, "transfer", "x", "already_assignee", target="y")
    refused(spec, state, "transfer", "x", "unknown_user", target="nobody")
    refused(spec, state, "transfer", "z", "not_assignee", target="z")
    state, events = act(spec, state, "transfer", "x", target="z")
    assert pending(state) == ["y", "z"] and [e.user for e in events] == ["z"]
    refused(spec, state, "approve", "x", "not_assignee")
    state, _ = act(spec, state, "approve", "z")
    state, _ = act(spec, state, "approve", "y")
    assert state.status == "approved"


def test_add_approver_before() -> None:
    spec = flow(mode="any", assignees=users("x"))
    state, _ = started(spec)
    state, events = act(spec, state, "add_approver", "x", target="z", position="before")
    assert pending(state) == ["z"] and [e.user for e in events] == ["z"]
    refused(spec, state, "approve", "x", "not_your_turn")
    state, _ = act(spec, state, "approve", "z")
    assert state.status == "running" and pending(state) == ["x"]
    state, _ = act(spec, state, "approve", "x")
    assert state.status == "approved"


def test_add_approver_after() -> None:
    spec = flow(mode="any", assignees=users("x"))
    state, _ = started(spec)
    refused(spec, state, "add_approver", "x", "invalid_position", target="z",
            position="beside")
    state, _ = act(spec, state, "add_approver", "x", target="z", position="after")
    assert pending(state) == ["x"]
    state, _ = act(spec, state, "approve", "x")
    assert state.status == "running" and pending(state) == ["z"]
    state, _ = act(spec, state, "reject", "z")
    assert state.status == "rejected"


def test_comment_and_urge() -> None:
    spec = flow(mode="all", assignees=users("x", "y"))
    state, _ = started(spec)
    refused(spec, state, "comment", "z", "not_participant", comment="hi")
    refused(spec, state, "comment", "x", "empty_comment", comment="  ")
    state, events = act(spec, state, "comment", "x", comment="looks fine")
    assert events == [] and state.history[-1].detail["comment"] == "looks fine"
    refused(spec, state, "urge", "x", "not_initiator")
    after, events = act(spec, state, "urge", "ini")
    assert [(e.kind, e.user) for e in events] == [("reminded", "x"), ("reminded", "y")]
    assert after.tasks == state.tasks


def test_edit_only_allowed_fields_and_recorded() -> None:
    spec = flow(editable=["amount"])
    state, _ = started(spec, {"amount": 1.0, "who": "z"})
    refused(spec, state, "edit", "x", "field_not_editable", changes={"who": "y"})
    refused(spec, state, "edit", "x", "invalid_value", changes={"amount": "two"})
    refused(spec, state, "edit", "y", "not_assignee", changes={"amount": 2.0})
    state, _ = act(spec, state, "edit", "x", changes={"amount": 2.0})
    entry = state.history[-1]
    assert state.data["amount"] == 2.0
    assert entry.data["amount"] == 1.0  # the snapshot as it was
    assert entry.detail["before"] == {"amount": 1.0} and entry.detail["after"] == {
        "amount": 2.0}


def test_history_snapshots_every_action() -> None:
    spec = flow()
    state, _ = started(spec)
    state, _ = act(spec, state, "approve", "x", comment="ok")
    assert [(e.action, e.actor) for e in state.history] == [
        ("create", "ini"), ("submit", "ini"), ("approve", "x")]
    assert all(e.data == {"amount": 1.0} for e in state.history)


# --- time -------------------------------------------------------------------------


def test_tick_reminds_when_due() -> None:
    spec = flow(due_hours=24, on_due="remind")
    state, events = started(spec)
    assert events[0].detail["due_at"] == (T0 + timedelta(hours=24)).isoformat()
    refused(spec, state, "tick", "ini", "not_system")
    same, events = step(spec, state, Action("tick"), SYSTEM, T0 + timedelta(hours=23))
    assert events == [] and same == state
    later, events = step(spec, state, Action("tick"), SYSTEM, T0 + timedelta(hours=25))
    assert [(e.kind, e.user) for e in events] == [("reminded", "x")]
    _, events = step(spec, later, Action("tick"), SYSTEM, T0 + timedelta(hours=26))
    assert events == []  # next reminder only after another 24 hours


def test_tick_escalates() -> None:
    spec = flow(due_hours=1, on_due="escalate", escalate_to=[{"role": "executive"}])
    state, _ = started(spec)
    state, events = step(spec, state, Action("tick"), SYSTEM, T0 + timedelta(hours=2))
    assert [(e.kind, e.user) for e in events] == [("task_created", "cfo"),
                                                   ("escalated", "cfo")]
    assert pending(state) == ["cfo"]
    state, _ = act(spec, state, "approve", "cfo", minutes=200)
    assert state.status == "approved"


def test_tick_auto_approves() -> None:
    spec = flow(due_hours=1, on_due="auto_approve")
    state, _ = started(spec)
    state, events = step(spec, state, Action("tick"), SYSTEM, T0 + timedelta(hours=1))
    assert state.status == "approved" and kinds(events) == ["action", "ended"]
    assert state.tasks[0].status == "auto_approved"


# --- ended and serialisation ------------------------------------------------------


def test_ended_instance_accepts_nothing() -> None:
    spec = flow()
    state, _ = started(spec)
    state, _ = act(spec, state, "approve", "x")
    for kind in ("approve", "withdraw", "comment", "tick", "submit"):
        refused(spec, state, kind, "ini" if kind != "tick" else SYSTEM, "ended",
                comment="x")


def test_unknown_action_is_refused() -> None:
    spec = flow()
    state, _ = started(spec)
    refused(spec, state, "dance", "x", "unknown_action")


def test_state_round_trips_through_json() -> None:
    spec = flow(mode="all", assignees=users("x", "y"), editable=["amount"])
    state, _ = started(spec)
    state, _ = act(spec, state, "edit", "x", changes={"amount": 3.5})
    again = FlowState.from_dict(json.loads(json.dumps(state.as_dict())))
    assert again == state
    assert step(spec, again, Action("approve"), "x", T0)[0] == step(
        spec, state, Action("approve"), "x", T0)[0]


def test_sequence_goes_on_after_a_rejection_while_the_percentage_is_reachable() -> None:
    spec = flow(mode="percent", percent=50, order="sequence", assignees=users("x", "y", "z"))
    state, _ = started(spec)
    state, _ = act(spec, state, "reject", "x")
    assert state.status == "running" and pending(state) == ["y"]
    state, _ = act(spec, state, "approve", "y")
    assert pending(state) == ["z"]
    state, _ = act(spec, state, "approve", "z")
    assert state.status == "approved"
