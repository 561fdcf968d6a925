"""Flow spec parsing and graph validation, with JSON pointers."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from quotaflow.flows import FlowSpecError, load_flow

APPEAL = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data" / "specs" / "flows" / "appeal.json"


def base() -> dict:
    return {
        "id": "t", "version": 1, "fields": {"amount": "number", "who": "string"},
        "nodes": [
            {"id": "start", "kind": "start", "next": "check"},
            {"id": "check", "kind": "condition",
             "branches": [{"when": "amount > 10", "to": "big"}], "default": "small"},
            {"id": "big", "kind": "approval", "assignees": [{"user": "a"}], "next": "end"},
            {"id": "small", "kind": "approval", "assignees": [{"field": "who"}],
             "next": "end"},
            {"id": "end", "kind": "end"},
        ],
    }


def issues_of(doc: dict) -> list[tuple[str, str]]:
    with pytest.raises(FlowSpecError) as info:
        load_flow(doc)
    return [(i.pointer, i.code) for i in info.value.issues]


def test_appeal_seed_loads() -> None:
    spec = load_flow(APPEAL)
    assert spec.id == "appeal" and spec.start == "start"
    assert spec.node("countersign").mode == "all"
    assert spec.node("any_one").mode == "any"
    assert json.loads(APPEAL.read_text())["$schema"].endswith("flow.schema.json")


def test_valid_document_parses_to_nodes() -> None:
    spec = load_flow(base())
    assert set(spec.nodes) == {"start", "check", "big", "small", "end"}
    assert spec.node("check").branches[0].to == "big"


def test_unknown_target_is_pointed() -> None:
    doc = base()
    doc["nodes"][2]["next"] = "nowhere"
    assert ("/nodes/2/next", "unknown_target") in issues_of(doc)


def test_unknown_branch_target_is_pointed() -> None:
    doc = base()
    doc["nodes"][1]["branches"][0]["to"] = "ghost"
    assert ("/nodes/1/branches/0/to", "unknown_target") in issues_of(doc)


def test_unreachable_node() -> None:
    doc = base()
    doc["nodes"].append({"id": "orphan", "kind": "approval", "assignees": [{"user": "a"}],
                         "next": "end"})
    assert issues_of(doc) == [("/nodes/5", "unreachable")]


def test_dead_end() -> None:
    doc = base()
    del doc["nodes"][3]["next"]
    assert issues_of(doc) == [("/nodes/3", "dead_end")]


def test_cycle_through_edges_is_refused() -> None:
    doc = base()
    doc["nodes"][2]["next"] = "check"
    assert ("/nodes/2/next", "cycle") in issues_of(doc)


def test_bad_expression_has_pointer_and_column() -> None:
    doc = base()
    doc["nodes"][1]["branches"][0]["when"] = "amount > 10 and bogus"
    with pytest.raises(FlowSpecError) as info:
        load_flow(doc)
    issue = info.value.issues[0]
    assert issue.pointer == "/nodes/1/branches/0/when"
    assert issue.code.startswith("expression.")
    assert issue.column == 17


def test_condition_must_be_boolean() -> None:
    doc = base()
    doc["nodes"][1]["branches"][0]["when"] = "amount * 2"
    assert issues_of(doc) == [("/nodes/1/branches/0/when", "expression.type")]


def test_string_fields_are_not_readable_by_conditions() -> None:
    doc = base()
    doc["nodes"][1]["branches"][0]["when"] = "who > 1"
    assert issues_of(doc)[0][0] == "/nodes/1/branches/0/when"


def test_duplicate_ids() -> None:
    doc = base()
    doc["nodes"].append(copy.deepcopy(doc["nodes"][2]))
    assert ("/nodes/5/id", "duplicate_id") in issues_of(doc)


def test_exactly_one_start() -> None:
    doc = base()
    doc["nodes"][0]["kind"] = "end"
    del doc["nodes"][0]["next"]
    assert ("/nodes", "start") in issues_of(doc)


def test_unknown_action_and_registry() -> None:
    doc = base()
    doc["nodes"][2]["next"] = "act"
    doc["nodes"].append({"id": "act", "kind": "action", "action": "launch", "next": "end"})
    with pytest.raises(FlowSpecError) as info:
        load_flow(doc, actions=["publish", "sync_hr"])
    assert [(i.pointer, i.code) for i in info.value.issues] == [("/nodes/5/action",
                                                                 "unknown_action")]
    assert load_flow(doc, actions=["launch"]).node("act").action == "launch"
    assert load_flow(doc).node("act").action == "launch"  # no registry: names unchecked


def test_editable_and_assignee_fields_must_be_declared() -> None:
    doc = base()
    doc["nodes"][2]["editable"] = ["amount", "missing"]
    doc["nodes"][2]["assignees"] = [{"field": "amount"}]
    assert set(issues_of(doc)) == {("/nodes/2/assignees/0/field", "unknown_field"),
                                   ("/nodes/2/editable/1", "unknown_field")}


def test_escalation_needs_target_and_due() -> None:
    doc = base()
    doc["nodes"][2]["on_due"] = "escalate"
    codes = {code for _, code in issues_of(doc)}
    assert codes == {"escalate_to", "due_hours"}


def test_schema_errors_are_pointed() -> None:
    doc = base()
    doc["nodes"][2]["mode"] = "most"
    doc["nodes"][3]["assignees"] = [{"user": "a", "role": "b"}]
    pointers = [p for p, _ in issues_of(doc)]
    assert "/nodes/2/mode" in pointers and "/nodes/3/assignees/0" in pointers


def test_percent_mode_needs_threshold() -> None:
    doc = base()
    doc["nodes"][2]["mode"] = "percent"
    assert issues_of(doc) == [("/nodes/2", "schema.required")]
