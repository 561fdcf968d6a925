"""Property tests: no sequence of actions by anyone reaches an undefined state."""

from __future__ import annotations

import json
from datetime import timedelta

from flow_support import APPEAL, DIRECTORY, T0, XS, random_actions, two_step_flow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotaflow.flows import (
    STATUSES,
    SYSTEM,
    Action,
    FlowError,
    FlowSpec,
    FlowState,
    load_flow,
    new_instance,
    step,
)

FLOWS = [
    load_flow(APPEAL),
    two_step_flow(
        {"assignees": XS, "mode": "all", "order": "sequence", "self_approval": "skip"},
        {"assignees": [{"manager": 1}, {"role": "hrbp"}], "mode": "any", "due_hours": 2,
         "on_due": "escalate", "escalate_to": [{"user": "cfo"}]}),
    two_step_flow(
        {"assignees": XS, "mode": "percent", "percent": 60, "due_hours": 1,
         "on_due": "auto_approve", "self_approval": "forbid"},
        {"assignees": [{"user": "outsider"}], "fallback": [{"user": "admin"}],
         "mode": "single", "due_hours": 3, "on_due": "remind"}),
]

actions = random_actions(st.one_of(st.floats(-10, 10), st.just("bad")))


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
