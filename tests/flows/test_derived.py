"""Derived fields: computed by the interpreter whenever the data changes, never set by
anyone, and what conditions route on (issue 11, finding 1: a client-chosen change_pct
re-routed an appeal around its countersign)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from quotaflow.flows import (
    Action,
    Directory,
    FlowError,
    FlowSpec,
    FlowSpecError,
    FlowState,
    available_actions,
    load_flow,
    new_instance,
    step,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DIRECTORY = Directory(users=frozenset({"ini", "x", "y"}), grants=(), units={"EAST": "/1/2/"},
                      heads={"EAST": "ini"}, managers={})


def spec(**extra: Any) -> FlowSpec:
    """Route on a derived pct: above 5 -> "big" (x then y), else "small" (x)."""
    doc = {
        "id": "d", "version": 1,
        "fields": {"allocated": "number", "requested": "number", "pct": "number",
                   "note": "string"},
        "derived": {"pct": "round((requested - allocated) / allocated * 100, 2)"},
        "nodes": [
            {"id": "s", "kind": "start", "next": "route"},
            {"id": "route", "kind": "condition", "branches": [
                {"when": "abs(pct) > 5", "to": "big"}], "default": "small"},
            {"id": "big", "kind": "approval", "assignees": [{"user": "x"}, {"user": "y"}],
             "mode": "all", "editable": ["requested", "pct"], "next": "e"},
            {"id": "small", "kind": "approval", "assignees": [{"user": "x"}],
             "editable": ["requested"], "next": "e"},
            {"id": "e", "kind": "end"}]}
    doc.update(extra)
    return load_flow(doc)


def started(flow: FlowSpec, requested: float, pct: float = 0.0) -> FlowState:
    draft = new_instance(flow, "ini", "EAST", {"allocated": 100.0, "requested": requested,
                                               "pct": pct, "note": "n"}, DIRECTORY, T0)
    return step(flow, draft, Action("submit"), "ini", T0)[0]


def act(flow: FlowSpec, state: FlowState, kind: str, actor: str, **kw: Any) -> FlowState:
    return step(flow, state, Action(kind, **kw), actor, T0 + timedelta(minutes=1))[0]


def test_the_derived_value_is_computed_at_creation_whatever_was_passed() -> None:
    state = started(spec(), 108.0, pct=1.0)
    assert state.data["pct"] == 8.0 and state.current == ("big",)


def test_a_resubmission_naming_a_derived_field_is_refused_and_routes_on_the_servers_figure(
        ) -> None:
    flow = spec()
    state = act(flow, started(flow, 103.0), "return", "x", target="initiator")
    before = state.as_dict()
    for changes, field in (({"requested": 200.0, "pct": 1.0}, "pct"),
                           ({"undeclared": 1}, "undeclared")):
        with pytest.raises(FlowError) as info:
            act(flow, state, "submit", "ini", changes=changes)
        assert (info.value.code, info.value.params["field"]) == ("field_not_editable", field)
    assert state.as_dict() == before
    state = act(flow, state, "submit", "ini", changes={"requested": 200.0})
    assert state.data["pct"] == 100.0 and state.current == ("big",)


def test_an_edit_recomputes_the_derived_field_and_never_sets_it() -> None:
    flow = spec()
    state = started(flow, 110.0)
    with pytest.raises(FlowError) as info:  # declared editable at the node, still derived
        act(flow, state, "edit", "x", changes={"pct": 1.0})
    assert info.value.code == "field_not_editable"
    state = act(flow, state, "edit", "x", changes={"requested": 107.0})
    assert state.data["pct"] == 7.0
    edit = state.history[-1]
    assert edit.detail["before"] == {"requested": 110.0, "pct": 10.0}
    assert edit.detail["after"] == {"requested": 107.0, "pct": 7.0}


def test_available_actions_never_offer_a_derived_field() -> None:
    flow = spec()
    state = started(flow, 110.0)
    assert available_actions(flow, state, "x").editable_fields == ("requested",)
    back = act(flow, state, "return", "x", target="initiator")
    assert available_actions(flow, back, "ini").editable_fields == ("allocated", "requested",
                                                                     "note")


def test_a_derived_value_that_cannot_be_computed_refuses_the_step() -> None:
    flow = spec()
    state = act(flow, started(flow, 110.0), "return", "x", target="initiator")
    with pytest.raises(FlowError) as info:
        act(flow, state, "submit", "ini", changes={"allocated": 0.0})
    assert (info.value.code, info.value.params["field"]) == ("derive_failed", "pct")


@pytest.mark.parametrize(("derived", "code"), [
    ({"note": "1"}, "unknown_field"),
    ({"missing": "1"}, "unknown_field"),
    ({"pct": "requested >"}, None),
    ({"pct": "note + 1"}, None),
])
def test_derived_fields_are_validated_with_the_spec(derived, code) -> None:
    with pytest.raises(FlowSpecError) as info:
        spec(derived=derived)
    issues = info.value.issues
    assert all(i.pointer.startswith("/derived/") for i in issues)
    if code is not None:
        assert issues[0].code == code
