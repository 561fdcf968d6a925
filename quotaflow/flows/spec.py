"""Flow specs: parse and validate an approval-flow document into frozen dataclasses.

Validation runs in two stages, like every spec: the JSON Schema in
``quotaflow/schemas/flow.schema.json``, then the graph (unique ids, known targets, every node
reachable from the start, every path ending at an end node, conditions that compile).
Every problem is a :class:`~quotaflow.rules.specs.SpecIssue` with a JSON pointer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from quotaflow.rules.expressions import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules.specs import SpecError, SpecIssue, pointer, read_json, schema_issues

EXPRESSION_TYPES = ("number", "integer", "boolean")


class FlowSpecError(SpecError):
    """A flow spec failed validation."""

    kind = "flow spec"


@dataclass(frozen=True)
class Assignee:
    """One assignee rule: ``by`` is role, user, field, unit_head or manager."""

    by: str
    value: str | int


@dataclass(frozen=True)
class Branch:
    when: CompiledExpression | None  # None only while a spec with issues is checked
    to: str


@dataclass(frozen=True)
class Node:
    """One node of the graph; fields that do not apply to its kind keep their defaults."""

    id: str
    kind: str
    next: str | None = None
    name_en: str = ""
    name_zh: str = ""
    outcome: str = "approved"
    branches: tuple[Branch, ...] = ()
    default: str | None = None
    action: str = ""
    to: tuple[Assignee, ...] = ()
    assignees: tuple[Assignee, ...] = ()
    mode: str = "any"
    percent: float = 100.0
    order: str = "parallel"
    editable: frozenset[str] = frozenset()
    due_hours: float | None = None
    on_due: str = "remind"
    escalate_to: tuple[Assignee, ...] = ()
    self_approval: str = "forbid"  # or "skip"; the initiator never approves their own
    fallback: tuple[Assignee, ...] = ()

    def targets(self) -> list[tuple[str, str]]:
        """Outgoing edges as (target, JSON pointer suffix) pairs."""
        out = [(b.to, f"branches/{i}/to") for i, b in enumerate(self.branches)]
        if self.default is not None:
            out.append((self.default, "default"))
        if self.next is not None:
            out.append((self.next, "next"))
        return out


@dataclass(frozen=True)
class FlowSpec:
    id: str
    version: int
    fields: Mapping[str, str]
    nodes: Mapping[str, Node]
    start: str
    name_en: str = ""
    name_zh: str = ""
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Field -> expression: values the interpreter computes whenever the data changes;
    #: nobody may set them (see ``derived`` in the flow schema).
    derived: Mapping[str, CompiledExpression] = field(default_factory=dict, compare=False)

    def node(self, node_id: str) -> Node:
        return self.nodes[node_id]


def _assignees(items: Iterable[Mapping[str, Any]]) -> tuple[Assignee, ...]:
    return tuple(Assignee(*next(iter(item.items()))) for item in items)


def load_flow(source: str | Any, *, actions: Iterable[str] | None = None,
              saving: bool = False) -> FlowSpec:
    """Parse and validate a flow spec (a dict or a JSON file path); raises FlowSpecError.

    ``actions``: the action names its action nodes may use (the shell passes the declared
    handlers, ``quotaflow.services.registry``); None leaves the names unchecked.
    ``saving``: the spec is being saved, so what older versions may still say but a new
    one may not (``self_approval: "allow"``) is refused instead of read strictly.
    """
    doc = read_json(source)
    issues = schema_issues("flow", doc)
    if issues:
        raise FlowSpecError(issues)
    registry = None if actions is None else frozenset(actions)
    fields: dict[str, str] = dict(doc.get("fields", {}))
    readable = {k: t for k, t in fields.items() if t in EXPRESSION_TYPES}
    nodes: dict[str, Node] = {}
    where: dict[str, int] = {}
    for i, raw in enumerate(doc["nodes"]):
        node, node_issues = _node(raw, i, readable, fields, registry)
        issues.extend(node_issues)
        if saving and raw.get("self_approval") == "allow":
            issues.append(SpecIssue(
                pointer("nodes", i, "self_approval"),
                "the initiator may never approve their own request (separation of duties): "
                "use \"forbid\" (their task goes to the others or the fallback) or \"skip\"",
                "self_approval_allow"))
        if raw["id"] in nodes:
            issues.append(SpecIssue(pointer("nodes", i, "id"),
                                    f"node id {raw['id']!r} is already used", "duplicate_id"))
            continue
        nodes[raw["id"]] = node
        where[raw["id"]] = i
    derived = _derived(doc.get("derived", {}), fields, readable, issues)
    starts = [n.id for n in nodes.values() if n.kind == "start"]
    if len(starts) != 1:
        issues.append(SpecIssue("/nodes", f"a flow needs exactly one start node, not "
                                          f"{len(starts)}", "start"))
    else:
        issues.extend(_graph_issues(nodes, where, starts[0]))
    if issues:
        raise FlowSpecError(issues)
    return FlowSpec(doc["id"], doc["version"], fields, nodes, starts[0],
                    doc.get("name_en", ""), doc.get("name_zh", ""), doc, derived)


def _derived(raw: Mapping[str, str], fields: Mapping[str, str], readable: Mapping[str, str],
             issues: list[SpecIssue]) -> dict[str, CompiledExpression]:
    """Derived fields: declared number/integer fields, computed from the other fields."""
    out: dict[str, CompiledExpression] = {}
    for name, text in raw.items():
        if fields.get(name) not in ("number", "integer"):
            issues.append(SpecIssue(pointer("derived", name), f"field {name!r} must be "
                                    "declared as a number or integer field", "unknown_field"))
            continue
        inputs = {k: t for k, t in readable.items() if k not in raw}
        try:
            out[name] = compile_expression(text, inputs, expect="number")
        except ExpressionError as exc:
            issues.append(SpecIssue(pointer("derived", name), exc.message,
                                    f"expression.{exc.code}", exc.column))
    return out


def _node(raw: Mapping[str, Any], i: int, readable: Mapping[str, str],
          fields: Mapping[str, str], registry: frozenset[str] | None
          ) -> tuple[Node, list[SpecIssue]]:
    issues: list[SpecIssue] = []
    branches = []
    for j, b in enumerate(raw.get("branches", ())):
        try:
            expr = compile_expression(b["when"], readable, expect="boolean")
        except ExpressionError as exc:
            issues.append(SpecIssue(pointer("nodes", i, "branches", j, "when"), exc.message,
                                    f"expression.{exc.code}", exc.column))
            expr = None  # keep the edge so the graph checks still see it
        branches.append(Branch(expr, b["to"]))
    if raw["kind"] == "action" and registry is not None and raw["action"] not in registry:
        issues.append(SpecIssue(pointer("nodes", i, "action"),
                                f"unknown action {raw['action']!r}", "unknown_action"))
    for k, name in enumerate(raw.get("editable", ())):
        if name not in fields:
            issues.append(SpecIssue(pointer("nodes", i, "editable", k),
                                    f"unknown field {name!r}", "unknown_field"))
    for key in ("assignees", "fallback", "escalate_to", "to"):
        for k, item in enumerate(raw.get(key, ())):
            name = item.get("field")
            if name is not None and fields.get(name) != "string":
                issues.append(SpecIssue(pointer("nodes", i, key, k, "field"),
                                        f"field {name!r} must be declared as a string field",
                                        "unknown_field"))
    if raw.get("on_due") == "escalate" and "escalate_to" not in raw:
        issues.append(SpecIssue(pointer("nodes", i, "on_due"),
                                "escalation needs 'escalate_to'", "escalate_to"))
    if raw.get("on_due") not in (None, "remind") and "due_hours" not in raw:
        issues.append(SpecIssue(pointer("nodes", i, "on_due"),
                                "a due action needs 'due_hours'", "due_hours"))
    node = Node(
        id=raw["id"], kind=raw["kind"], next=raw.get("next"),
        name_en=raw.get("name_en", ""), name_zh=raw.get("name_zh", ""),
        outcome=raw.get("outcome", "approved"), branches=tuple(branches),
        default=raw.get("default"), action=raw.get("action", ""),
        to=_assignees(raw.get("to", ())), assignees=_assignees(raw.get("assignees", ())),
        mode=raw.get("mode", "any"), percent=float(raw.get("percent", 100)),
        order=raw.get("order", "parallel"), editable=frozenset(raw.get("editable", ())),
        due_hours=raw.get("due_hours"), on_due=raw.get("on_due", "remind"),
        escalate_to=_assignees(raw.get("escalate_to", ())),
        # "allow" (older versions) is read as "forbid": the initiator never approves
        # their own request, whatever a pinned version once said.
        self_approval="skip" if raw.get("self_approval") == "skip" else "forbid",
        fallback=_assignees(raw.get("fallback", ())),
    )
    return node, issues


def _graph_issues(nodes: Mapping[str, Node], where: Mapping[str, int],
                  start: str) -> list[SpecIssue]:
    issues: list[SpecIssue] = []
    for node in nodes.values():
        at = where[node.id]
        for target, suffix in node.targets():
            if target not in nodes:
                issues.append(SpecIssue(pointer("nodes", at) + "/" + suffix,
                                        f"no node with id {target!r}", "unknown_target"))
        if node.kind != "end" and not node.targets():
            issues.append(SpecIssue(pointer("nodes", at),
                                    f"node {node.id!r} leads nowhere: add 'next'", "dead_end"))
    # Depth-first walk from the start: reachability and cycles (returns are actions,
    # so the graph itself must be acyclic for every path to end).
    seen: set[str] = set()
    state: dict[str, int] = {}
    stack: list[tuple[str, Iterable[tuple[str, str]]]] = []

    def push(node_id: str) -> None:
        state[node_id] = 1
        seen.add(node_id)
        stack.append((node_id, iter(nodes[node_id].targets())))

    push(start)
    while stack:
        node_id, edges = stack[-1]
        for target, suffix in edges:
            if target not in nodes:
                continue
            if state.get(target) == 1:
                issues.append(SpecIssue(pointer("nodes", where[node_id]) + "/" + suffix,
                                        f"edge to {target!r} closes a cycle; use a return "
                                        "action instead", "cycle"))
            elif target not in seen:
                push(target)
                break
        else:
            state[node_id] = 2
            stack.pop()
    for node_id, at in where.items():
        if node_id not in seen:
            issues.append(SpecIssue(pointer("nodes", at),
                                    f"node {node_id!r} cannot be reached from the start",
                                    "unreachable"))
    return sorted(issues, key=lambda s: s.pointer)
