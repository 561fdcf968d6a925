"""Property tests: no sequence of actions by anyone reaches an undefined state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotaflow.flows import (
    ACTIONS,
    STATUSES,
    SYSTEM,
    Action,
    Directory,
    FlowError,
    FlowSpec,
    FlowState,
    load_flow,
    new_instance,
    step,
)

APPEAL = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs" / "flows" / "appeal.json"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PEOPLE = ["ini", "hrbp", "cfo", "x", "y", "z", "admin", "outsider"]
DIRECTORY = Directory(
    users=frozenset(PEOPLE) - {"outsider"},
    grants=(("hrbp", "hrbp", "/1/"), ("cfo", "executive", "/1/")),
    units={"HQ": "/1/", "EAST": "/1/2/"},
    heads={"HQ": "cfo", "EAST": "ini"},
    managers={"ini": "x", "x": "y"},
)


def _flows() -> list[FlowSpec]:
    def two(first: dict, second: dict) -> FlowSpec:
        return load_flow({
            "id": "p", "version": 1, "fields": {"amount": "number", "change_pct": "number"},
            "nodes": [
                {"id": "s", "kind": "start", "next": "one"},
                {"id": "one", "kind": "approval", "next": "two", "editable": ["amount"],
                 **first},
                {"id": "two", "kind": "approval", "next": "cc", **second},
                {"id": "cc", "kind": "notify", "to": [{"role": "hrbp"}], "next": "e"},
                {"id": "e", "kind": "end"}]})

    xs = [{"user": "x"}, {"user": "y"}, {"user": "ini"}]
    return [
        load_flow(APPEAL),
        two({"assignees": xs, "mode": "all", "order": "sequence", "self_approval": "skip"},
            {"assignees": [{"manager": 1}, {"role": "hrbp"}], "mode": "any",
             "due_hours": 2, "on_due": "escalate", "escalate_to": [{"user": "cfo"}]}),
        two({"assignees": xs, "mode": "percent", "percent": 60, "due_hours": 1,
             "on_due": "auto_approve", "self_approval": "forbid"},
            {"assignees": [{"user": "outsider"}], "fallback": [{"user": "admin"}],
             "mode": "single", "due_hours": 3, "on_due": "remind"}),
    ]


FLOWS = _flows()

actions = st.builds(
    lambda kind, actor, target, position, changes, comment, minutes: (
        Action(kind, target=target, position=position, changes=changes, comment=comment),
        actor, minutes),
    st.sampled_from(ACTIONS),
    st.sampled_from([*PEOPLE, SYSTEM]),
    st.one_of(st.none(), st.sampled_from([*PEOPLE, "initiator", "one", "two", "s"])),
    st.sampled_from(["before", "after", "beside"]),
    st.one_of(st.just({}), st.fixed_dictionaries(
        {"amount": st.one_of(st.floats(-10, 10), st.just("bad"))}),
        st.fixed_dictionaries({"change_pct": st.sampled_from([1.0, 9.0])})),
    st.sampled_from(["", "ok"]),
    st.integers(0, 240),
)


def check(spec: FlowSpec, state: FlowState) -> None:
    assert state.status in STATUSES
    assert all(n in spec.nodes and spec.node(n).kind == "approval" for n in state.current)
    assert (state.status == "running") == bool(state.current)
    open_tasks = [t for t in state.tasks if t.status in ("pending", "waiting")]
    if state.status != "running":
        assert open_tasks == []
    else:
        assert state.pending(), "a running instance always has someone to act"
    for t in open_tasks:
        assert t.assignee in DIRECTORY.users
        assert t.node in state.current and t.visit == state.visit
    assert FlowState.from_dict(json.loads(json.dumps(state.as_dict()))) == state


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=st.sampled_from(range(len(FLOWS))), pct=st.sampled_from([3.0, 7.0]),
       steps=st.lists(actions, max_size=30))
def test_random_actions_keep_the_state_defined(flow: int, pct: float, steps: list) -> None:
    spec = FLOWS[flow]
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0, "change_pct": pct},
                         DIRECTORY, T0)
    now = T0
    for action, actor, minutes in steps:
        now += timedelta(minutes=minutes)
        before = state.as_dict()
        try:
            new, events = step(spec, state, action, actor, now)
        except FlowError as exc:
            assert state.as_dict() == before, f"refused {action.kind} changed the state"
            if before["status"] in ("approved", "rejected", "withdrawn"):
                assert exc.code == "ended"
            continue
        assert state.status not in ("approved", "rejected", "withdrawn")
        check(spec, new)
        assert all(e.kind in ("task_created", "reminded", "escalated", "notified", "action",
                              "ended") for e in events)
        if new.status != state.status and new.status in ("approved", "rejected",
                                                          "withdrawn"):
            assert events[-1].kind == "ended"
        state = new
    check(spec, state)


@settings(max_examples=60, deadline=None)
@given(flow=st.sampled_from(range(len(FLOWS))), steps=st.lists(actions, max_size=20))
def test_ended_instances_refuse_every_action(flow: int, steps: list) -> None:
    spec = FLOWS[flow]
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0, "change_pct": 9.0},
                         DIRECTORY, T0)
    state, _ = step(spec, state, Action("withdraw"), "ini", T0)
    before = state.as_dict()
    for action, actor, minutes in steps:
        try:
            step(spec, state, action, actor, T0 + timedelta(minutes=minutes))
        except FlowError as exc:
            assert exc.code == "ended"
        else:
            raise AssertionError(f"{action.kind} accepted on an ended instance")
    assert state.as_dict() == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=st.sampled_from(range(len(FLOWS))), pct=st.sampled_from([3.0, 7.0]),
       data=st.data())
def test_actions_by_the_people_involved_keep_the_state_defined(flow: int, pct: float,
                                                                data: st.DataObject) -> None:
    """Mostly the initiator and current assignees act, so flows really move and end."""
    spec = FLOWS[flow]
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0, "change_pct": pct},
                         DIRECTORY, T0)
    now = T0
    ended = False
    for _ in range(data.draw(st.integers(1, 25))):
        action, actor, minutes = data.draw(actions)
        involved = ["ini", SYSTEM, *(t.assignee for t in state.pending())]
        actor = data.draw(st.sampled_from(involved)) if data.draw(st.booleans()) else actor
        now += timedelta(minutes=minutes)
        before = state.as_dict()
        try:
            state, _ = step(spec, state, action, actor, now)
        except FlowError as exc:
            assert state.as_dict() == before
            assert (exc.code == "ended") == ended
            continue
        check(spec, state)
        ended = state.status in ("approved", "rejected", "withdrawn")
