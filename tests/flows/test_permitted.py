"""What a person may do next (``available_actions``) agrees with what ``step`` accepts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flow_support import APPEAL, DIRECTORY, PEOPLE, T0, XS, random_actions, two_step_flow
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotaflow.flows import (
    ACTIONS,
    ENDED,
    SYSTEM,
    Action,
    FlowError,
    FlowSpec,
    FlowState,
    load_flow,
    new_instance,
    step,
)
from quotaflow.flows.permitted import (
    ARGUMENT_CHECKS,
    FLOW_REFUSALS,
    AvailableActions,
    available_actions,
)

VALUES = {"number": 2.5, "integer": 2, "boolean": True, "string": "s"}


EDITABLE, NOTE = ("amount", "note"), {"note": "string"}
FLOWS = [
    load_flow(APPEAL),
    two_step_flow(
        {"assignees": XS, "mode": "all", "order": "sequence", "self_approval": "skip"},
        {"assignees": [{"manager": 1}, {"role": "hrbp"}], "mode": "any", "due_hours": 2,
         "on_due": "escalate", "escalate_to": [{"user": "ini"}, {"user": "cfo"}]},
        editable=EDITABLE, extra_fields=NOTE),
    two_step_flow(
        {"assignees": XS, "mode": "percent", "percent": 60, "due_hours": 1,
         "on_due": "auto_approve", "self_approval": "forbid"},
        {"assignees": [{"user": "outsider"}], "fallback": [{"user": "admin"}],
         "mode": "single", "due_hours": 3, "on_due": "remind"},
        editable=EDITABLE, extra_fields=NOTE),
    # An older version saying "allow": read as "forbid", the initiator's slot drops out.
    two_step_flow({"assignees": XS, "mode": "all", "self_approval": "allow"},
                  {"assignees": [{"user": "y"}], "mode": "any"},
                  editable=EDITABLE, extra_fields=NOTE),
]

ACTIONS_DRAWN = random_actions()


def good(spec: FlowSpec, kind: str, able: AvailableActions) -> Action:
    """The action ``kind`` with arguments that pass its argument checks."""
    if kind == "comment":
        return Action(kind, comment="ok")
    if kind == "return":
        return Action(kind, target=able.return_targets[-1] if able.return_targets else None)
    if kind in ("transfer", "add_approver"):
        return Action(kind, target=able.assignable[0] if able.assignable else "x",
                      position="before")
    if kind == "edit":
        names = able.editable_fields or ("amount",)
        return Action(kind, changes={names[0]: VALUES[spec.fields.get(names[0], "number")]})
    return Action(kind)


def agree(spec: FlowSpec, state: FlowState, now: datetime, extra: Action | None = None
          ) -> None:
    """For every person: available actions are accepted, the others are refused."""
    for user in [*PEOPLE, SYSTEM]:
        able = available_actions(spec, state, user)
        for kind in ACTIONS:
            tries = [good(spec, kind, able)]
            if extra is not None and extra.kind == kind:
                tries.append(extra)
            for action in tries:
                try:
                    step(spec, state, action, user, now)
                except FlowError as exc:
                    if kind in able and action is tries[0]:
                        assert exc.code in FLOW_REFUSALS, (
                            f"{user} may {kind} but step refused: {exc.code}")
                else:
                    assert kind in able, f"{user} may not {kind} but step accepted it"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=st.sampled_from(range(len(FLOWS))), pct=st.sampled_from([3.0, 7.0]),
       data=st.data())
def test_available_actions_are_exactly_what_step_accepts(flow: int, pct: float,
                                                         data: st.DataObject) -> None:
    spec = FLOWS[flow]
    state = new_instance(spec, "ini", "EAST", {"amount": 1.0, "change_pct": pct},
                         DIRECTORY, T0)
    now = T0
    for _ in range(data.draw(st.integers(1, 15))):
        action, actor, minutes = data.draw(ACTIONS_DRAWN)
        agree(spec, state, now, action)
        able_people = [u for u in [*PEOPLE, SYSTEM] if available_actions(spec, state, u)
                       .actions]
        if able_people and data.draw(st.booleans()):  # mostly move the flow on
            actor = data.draw(st.sampled_from(able_people))
            able = available_actions(spec, state, actor)
            action = good(spec, data.draw(st.sampled_from(able.ordered())), able)
        now += timedelta(minutes=minutes)
        try:
            state, _ = step(spec, state, action, actor, now)
        except FlowError:
            continue
        if state.status in ENDED:
            break
    agree(spec, state, now)


def test_argument_dependent_actions_are_documented() -> None:
    assert set(ARGUMENT_CHECKS) <= set(ACTIONS)


# --- plain examples ------------------------------------------------------------------


def started(spec: FlowSpec, initiator: str = "ini") -> FlowState:
    state = new_instance(spec, initiator, "EAST", {"amount": 1.0, "change_pct": 3.0},
                         DIRECTORY, T0)
    return step(spec, state, Action("submit"), initiator, T0)[0]


def refused(spec: FlowSpec, state: FlowState, action: Action, actor: str) -> str:
    with pytest.raises(FlowError) as info:
        step(spec, state, action, actor, T0 + timedelta(minutes=1))
    return info.value.code


def plain(**first: Any) -> FlowSpec:
    return two_step_flow({"assignees": [{"user": "x"}], **first}, {"assignees": [{"user": "y"}]},
                         editable=EDITABLE, extra_fields=NOTE)


def test_an_approver_sees_their_task_actions() -> None:
    spec = plain()
    state = started(spec)
    able = available_actions(spec, state, "x")
    assert able.ordered() == ["approve", "reject", "return", "transfer", "add_approver",
                              "edit", "comment"]
    assert able.editable_fields == ("amount", "note")
    assert able.return_targets == ("initiator",)
    assert "ini" not in able.assignable and "x" not in able.assignable
    assert able.task is not None and able.task.node == "one"
    assert available_actions(spec, state, "ini").ordered() == ["withdraw", "urge", "comment"]
    assert available_actions(spec, state, "z").actions == frozenset()
    assert available_actions(spec, state, SYSTEM).actions == {"tick"}


def test_after_a_return_the_initiator_edits_and_resubmits() -> None:
    spec = plain()
    state = started(spec)
    state, _ = step(spec, state, Action("return"), "x", T0)
    able = available_actions(spec, state, "ini")
    assert able.ordered() == ["submit", "withdraw", "comment"]
    assert able.editable_fields == ("amount", "change_pct", "note")
    assert available_actions(spec, state, "x").ordered() == ["comment"]


def test_nothing_is_available_once_ended() -> None:
    spec = plain()
    state, _ = step(spec, started(spec), Action("withdraw"), "ini", T0)
    assert all(available_actions(spec, state, u).actions == frozenset()
               for u in [*PEOPLE, SYSTEM])


def test_transfer_to_the_initiator_is_refused() -> None:
    """The known attack: the approver hands the task to the initiator, who approves."""
    spec = plain()
    state = started(spec)
    assert refused(spec, state, Action("transfer", target="ini"), "x") == "initiator_as_approver"
    for position in ("before", "after"):
        assert refused(spec, state, Action("add_approver", target="ini", position=position),
                       "x") == "initiator_as_approver"


@pytest.mark.parametrize("mode", ["forbid", "skip"])
def test_the_initiator_cannot_approve_their_own_request(mode: str) -> None:
    """Even holding a task (a state written before transfers to the initiator were
    refused), the initiator may not approve on a node that does not allow it."""
    spec = plain(self_approval=mode)
    state = started(spec)
    doc = state.as_dict()
    doc["tasks"][0]["assignee"] = "ini"  # as if the task had been transferred to them
    state = FlowState.from_dict(doc)
    assert refused(spec, state, Action("approve"), "ini") == "self_approval"
    able = available_actions(spec, state, "ini")
    assert "approve" not in able and "reject" in able
    step(spec, state, Action("reject"), "ini", T0)  # saying no to oneself is fine


def test_a_node_saying_allow_still_refuses_self_approval() -> None:
    # "allow" is refused in new versions and read as "forbid" in old ones.
    spec = plain(assignees=[{"user": "ini"}, {"user": "x"}], self_approval="allow")
    state = started(spec)
    assert [t.assignee for t in state.pending()] == ["x"]
    assert "approve" not in available_actions(spec, state, "ini")


def test_escalation_never_reaches_the_initiator() -> None:
    for setting in ("forbid", "skip", "allow"):
        spec = plain(due_hours=1, on_due="escalate", escalate_to=[{"user": "ini"}],
                     self_approval=setting)
        state = started(spec)
        state, _ = step(spec, state, Action("tick"), SYSTEM, T0 + timedelta(hours=2))
        assert [t.assignee for t in state.pending()] == ["x"]  # reminded, not escalated
