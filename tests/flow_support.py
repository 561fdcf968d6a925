"""What the flow interpreter's property tests share: the seed's appeal flow, a directory of
people, a two-step flow builder and a strategy of random actions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from quotaflow.flows import ACTIONS, SYSTEM, Action, Directory, FlowSpec, load_flow

APPEAL = (Path(__file__).resolve().parents[1] / "quotaflow" / "seed_data" / "specs" / "flows"
          / "appeal.json")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PEOPLE = ["ini", "hrbp", "cfo", "x", "y", "z", "admin", "outsider"]
DIRECTORY = Directory(
    users=frozenset(PEOPLE) - {"outsider"},
    grants=(("hrbp", "hrbp", "/1/"), ("cfo", "executive", "/1/")),
    units={"HQ": "/1/", "EAST": "/1/2/"},
    heads={"HQ": "cfo", "EAST": "ini"},
    managers={"ini": "x", "x": "y"},
)
#: Approvers of a first step that includes the initiator.
XS = [{"user": "x"}, {"user": "y"}, {"user": "ini"}]


def two_step_flow(first: dict[str, Any], second: dict[str, Any], *,
                  editable: tuple[str, ...] = ("amount",),
                  extra_fields: dict[str, str] | None = None) -> FlowSpec:
    """start -> approval "one" (``first``) -> approval "two" (``second``) -> CC -> end."""
    return load_flow({
        "id": "p", "version": 1,
        "fields": {"amount": "number", "change_pct": "number", **(extra_fields or {})},
        "nodes": [
            {"id": "s", "kind": "start", "next": "one"},
            {"id": "one", "kind": "approval", "next": "two", "editable": list(editable),
             **first},
            {"id": "two", "kind": "approval", "next": "cc", **second},
            {"id": "cc", "kind": "notify", "to": [{"role": "hrbp"}], "next": "e"},
            {"id": "e", "kind": "end"}]})


AMOUNTS = st.floats(-10, 10)


def random_actions(amounts: st.SearchStrategy[Any] = AMOUNTS
                   ) -> st.SearchStrategy[tuple[Action, str, int]]:
    """(action, actor, minutes later) with any kind, actor, target and changes."""
    return st.builds(
        lambda kind, actor, target, position, changes, comment, minutes: (
            Action(kind, target=target, position=position, changes=changes,
                   comment=comment), actor, minutes),
        st.sampled_from(ACTIONS),
        st.sampled_from([*PEOPLE, SYSTEM]),
        st.one_of(st.none(), st.sampled_from([*PEOPLE, "initiator", "one", "two", "s"])),
        st.sampled_from(["before", "after", "beside"]),
        st.one_of(st.just({}), st.fixed_dictionaries({"amount": amounts}),
                  st.fixed_dictionaries({"change_pct": st.sampled_from([1.0, 9.0])})),
        st.sampled_from(["", "ok"]),
        st.integers(0, 240),
    )
