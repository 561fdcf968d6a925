"""What a person may do next on a flow instance: a pure function of spec, state and person.

:func:`available_actions` is to the interpreter what SpiffWorkflow's "ready tasks" are to
its engine: pages and the API show (and offer) exactly these actions, and
:func:`~quotaflow.flows.interpreter.step` accepts them.

"Available" means *this person may do it now*. For most actions that is all ``step``
checks; two kinds of refusal remain possible for an available action, and are documented
here rather than guessed at:

- refusals about the **arguments** (:data:`ARGUMENT_CHECKS`): a comment must not be empty,
  a return goes to one of ``return_targets``, a transfer or an added approver goes to one
  of ``assignable`` (never the initiator) and an added approver comes "before" or "after",
  an edit changes at least one of ``editable_fields`` with values of the field's type, a
  submit's changes have the fields' types;
- refusals about **the flow moving on** (:data:`FLOW_REFUSALS`): approving (or
  submitting, or a rejection that settles a percentage node) enters the next nodes, which
  may find nobody to approve ("no_assignee") or a condition it cannot evaluate
  ("condition_failed"). They are about the spec and the form data, not about the person.

An action that is not available is refused by ``step`` whatever its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from quotaflow.flows.interpreter import (
    ENDED,
    OPEN,
    SYSTEM,
    FlowState,
    Task,
    edit_fields,
    submit_fields,
)
from quotaflow.flows.spec import FlowSpec

#: Actions whose acceptance also depends on their arguments, and what is checked.
ARGUMENT_CHECKS: dict[str, str] = {
    "comment": "the comment is not empty",
    "return": "target is one of return_targets (None means the initiator)",
    "transfer": "target is one of assignable",
    "add_approver": "target is one of assignable; position is 'before' or 'after'",
    "edit": "changes is not empty, names only editable_fields, values have their types",
    "submit": "changes name only editable_fields (declared, not derived) and have their types",
}
#: Refusals an available action may still meet when the flow moves on.
FLOW_REFUSALS = frozenset({"no_assignee", "condition_failed"})


@dataclass(frozen=True)
class AvailableActions:
    """What ``user`` may do next.

    ``actions``: action kinds (``step`` names); ``editable_fields``: the fields an edit
    (an approver's, at their node) or a resubmission (the initiator's, in draft) may
    change; ``return_targets``: "initiator" and the earlier approval nodes a return may
    go to; ``assignable``: who a task may be transferred to or an approver added --
    directory users who do not already hold the task, and never the initiator (an
    initiator holding a task of their own request could approve it); ``task``: the
    person's pending task; ``waiting``: they have a task that waits for an earlier
    approver.
    """

    user: str
    actions: frozenset[str] = frozenset()
    editable_fields: tuple[str, ...] = ()
    return_targets: tuple[str, ...] = ()
    assignable: tuple[str, ...] = ()
    task: Task | None = None
    waiting: bool = False

    def __contains__(self, kind: object) -> bool:
        return kind in self.actions

    def ordered(self) -> list[str]:
        """The actions in a stable order (the order of ``ORDER``)."""
        return [k for k in ORDER if k in self.actions]


ORDER = ("approve", "reject", "return", "transfer", "add_approver", "edit", "submit",
         "withdraw", "urge", "comment", "tick")


def may_self_approve(spec: FlowSpec, task: Task, initiator: str) -> bool:
    """Separation of duties: the initiator never approves a task of their own request."""
    return task.assignee != initiator


def assignable(state: FlowState, node: str) -> tuple[str, ...]:
    """Who a task at ``node`` may go to: directory users other than the initiator who do
    not already hold an open task there (in the current visit)."""
    holding = {t.assignee for t in state.tasks if t.node == node and t.visit == state.visit
               and t.status in OPEN}
    users = state.directory.get("users", ())
    return tuple(sorted(u for u in users if u != state.initiator and u not in holding))


def available_actions(spec: FlowSpec, state: FlowState, user: str) -> AvailableActions:
    """The actions ``user`` may take on ``state`` now (see the module docstring)."""
    if state.status in ENDED:
        return AvailableActions(user)
    actions: set[str] = set()
    if user == SYSTEM:
        actions.add("tick")
    initiator = user == state.initiator
    running = state.status == "running"
    draft = state.status == "draft"
    mine = next((t for t in state.pending() if t.assignee == user), None) if running else None
    waiting = running and mine is None and any(
        t.assignee == user and t.status == "waiting" and t.visit == state.visit
        and t.node in state.current for t in state.tasks)
    editable: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    others: tuple[str, ...] = ()
    if initiator:
        if draft:
            actions.add("submit")
            editable = submit_fields(spec)
        if draft or (running and not state.decided):
            actions.add("withdraw")
        if running:
            actions.add("urge")
    if initiator or any(t.assignee == user for t in state.tasks):
        actions.add("comment")
    if mine is not None:
        actions.update(("reject", "return"))
        if may_self_approve(spec, mine, state.initiator):
            actions.add("approve")
        returns = ("initiator", *dict.fromkeys(state.path[:-1]))
        others = assignable(state, mine.node)
        if others:
            actions.update(("transfer", "add_approver"))
        editable = edit_fields(spec, spec.node(mine.node))
        if editable:
            actions.add("edit")
    return AvailableActions(user, frozenset(actions), editable, returns, others, mine,
                            waiting)
