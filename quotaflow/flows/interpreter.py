"""The approval-flow state machine: ``step(spec, state, action, actor, now)``.

Pure and deterministic: the time comes in, nothing is read from the clock, the
database or the network, and a refused action raises :class:`FlowError` leaving the
given state untouched (states are frozen; every step works on copies).

Voting works on *slots*: each resolved assignee is a slot; a transfer or an added
approver stays in the slot of the task it came from, so a slot is approved once every
live task in it has approved (a chain: "before" approvers go first, "after" ones
follow) and rejected as soon as one of them rejects. The node's mode then counts slots.

Separation of duties: a task is never given to the instance's initiator (transfer, added
approver, escalation, fallback), the initiator never approves their own request, and a
countersign (mode "all" over several assignee rules) needs a different person per rule. What a person may do
next is :func:`quotaflow.flows.permitted.available_actions`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from quotaflow.flows.assignees import Directory, resolve
from quotaflow.flows.spec import FlowSpec, Node
from quotaflow.rules.expressions import ExpressionError

STATUSES = ("draft", "running", "approved", "rejected", "withdrawn")
ENDED = frozenset({"approved", "rejected", "withdrawn"})
ACTIONS = ("submit", "approve", "reject", "return", "withdraw", "transfer", "add_approver",
           "comment", "urge", "edit", "tick")
#: The actor that makes time pass (a scheduler), the only one allowed to ``tick``.
SYSTEM = "system"
APPROVED = frozenset({"approved", "skipped", "auto_approved"})
GONE = frozenset({"transferred", "escalated", "cancelled"})
OPEN = frozenset({"pending", "waiting"})


class FlowError(Exception):
    """A refused action: ``code`` is stable ("not_assignee", "ended", ...)."""

    def __init__(self, code: str, message: str = "", **params: Any) -> None:
        self.code = code
        self.params = params
        super().__init__(message or code)


@dataclass(frozen=True)
class Task:
    """One assignee's piece of work at one visit of an approval node."""

    id: int
    node: str
    visit: int
    slot: int
    assignee: str
    status: str  # waiting, pending, approved, rejected, returned, skipped, auto_approved,
    # transferred, escalated, cancelled
    created_at: str
    after: int | None = None  # waits until this task is approved
    added: str | None = None  # "before"/"after" for approvers added by someone
    due_at: str | None = None
    decided_at: str | None = None


@dataclass(frozen=True)
class Entry:
    """One recorded action with the form data as it was before it."""

    seq: int
    action: str
    actor: str
    at: str
    node: str | None
    detail: Mapping[str, Any]
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    kind: str  # task_created, reminded, escalated, notified, action, ended
    node: str | None = None
    task: int | None = None
    user: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Action:
    """What an actor does. ``target``: a user (transfer, add_approver) or, for return,
    "initiator" or an earlier node id; ``changes``: field values (edit, submit)."""

    kind: str
    target: str | None = None
    position: str = "after"
    comment: str = ""
    changes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlowState:
    """An instance, JSON-serialisable through :meth:`as_dict` / :meth:`from_dict`."""

    flow: str
    version: int
    initiator: str
    unit: str
    status: str
    current: tuple[str, ...]
    data: Mapping[str, Any]
    tasks: tuple[Task, ...]
    history: tuple[Entry, ...]
    directory: Mapping[str, Any]
    visit: int = 0
    decided: bool = False
    path: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self)) | {
            "current": list(self.current), "path": list(self.path),
            "tasks": [asdict(t) for t in self.tasks],
            "history": [asdict(e) for e in self.history]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FlowState:
        doc = copy.deepcopy(dict(doc))
        doc["current"] = tuple(doc["current"])
        doc["path"] = tuple(doc.get("path", ()))
        doc["tasks"] = tuple(Task(**t) for t in doc["tasks"])
        doc["history"] = tuple(Entry(**e) for e in doc["history"])
        return cls(**doc)

    def pending(self) -> list[Task]:
        """Tasks waiting for a decision now."""
        return [t for t in self.tasks if t.status == "pending" and t.visit == self.visit
                and t.node in self.current]


def new_instance(spec: FlowSpec, initiator: str, unit: str, data: Mapping[str, Any],
                 directory: Directory, now: datetime) -> FlowState:
    """A draft instance; the initiator ``submit``s it to start the flow."""
    _check_values(spec, data)
    data = _derive(spec, copy.deepcopy(dict(data)))
    entry = Entry(0, "create", initiator, now.isoformat(), None, {}, copy.deepcopy(data))
    return FlowState(spec.id, spec.version, initiator, unit, "draft", (),
                     copy.deepcopy(data), (), (entry,), directory.as_dict())


def step(spec: FlowSpec, state: FlowState, action: Action, actor: str, now: datetime
         ) -> tuple[FlowState, list[Event]]:
    """Apply ``action`` by ``actor`` at ``now``; returns the new state and its events."""
    if state.status in ENDED:
        raise FlowError("ended", "the instance has ended")
    handler = _HANDLERS.get(action.kind)
    if handler is None:
        raise FlowError("unknown_action", f"unknown action {action.kind!r}")
    run = _Run(spec, state, now)
    handler(run, action, actor)
    return run.freeze(), run.events


def _check_values(spec: FlowSpec, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        kind = spec.fields.get(name)
        ok = {
            None: True,
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value),
        }[kind]
        if not ok:
            raise FlowError("invalid_value", f"field {name!r} must be a {kind}",
                            field=name, type=kind)


def _derive(spec: FlowSpec, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the spec's derived fields computed from it (a derived field whose
    inputs are missing is dropped: no value is better than a stale one)."""
    for name, expr in spec.derived.items():
        if any(n not in data for n in expr.names):
            data.pop(name, None)
            continue
        try:
            value = expr.evaluate_row({n: data[n] for n in expr.names})
        except ExpressionError as exc:
            raise FlowError("derive_failed", exc.message, field=name) from None
        if spec.fields.get(name) == "integer":
            value = int(value)
        data[name] = float(value) if isinstance(value, float) else value
    return data


def _allowed_changes(spec: FlowSpec, changes: Mapping[str, Any], allowed: Iterable[str]
                     ) -> None:
    """Refuse changes naming a field outside ``allowed`` or a derived field (computed
    by the server, never taken from the client), then check the values' types."""
    allowed = set(allowed)
    for name in changes:
        if name not in allowed or name in spec.derived:
            raise FlowError("field_not_editable", f"{name!r} is not editable here",
                            field=name)
    _check_values(spec, changes)


def submit_fields(spec: FlowSpec) -> tuple[str, ...]:
    """The fields the initiator may set when submitting (again): every declared field
    except the derived ones."""
    return tuple(f for f in spec.fields if f not in spec.derived)


def edit_fields(spec: FlowSpec, node: Node) -> tuple[str, ...]:
    """The fields an approver may edit at ``node``: its editable fields, never derived."""
    return tuple(sorted(f for f in node.editable if f not in spec.derived))


class _Run:
    """A mutable working copy of one step."""

    def __init__(self, spec: FlowSpec, state: FlowState, now: datetime) -> None:
        self.spec = spec
        self.state = state
        self.now = now
        self.at = now.isoformat()
        self.status = state.status
        self.current = list(state.current)
        self.data = copy.deepcopy(dict(state.data))
        self.tasks = {t.id: t for t in state.tasks}
        self.history = list(state.history)
        self.directory = Directory.from_dict(state.directory)
        self.visit = state.visit
        self.decided = state.decided
        self.path = list(state.path)
        self.events: list[Event] = []

    def freeze(self) -> FlowState:
        return replace(self.state, status=self.status, current=tuple(self.current),
                       data=self.data, tasks=tuple(self.tasks.values()),
                       history=tuple(self.history), visit=self.visit, decided=self.decided,
                       path=tuple(self.path))

    def record(self, action: str, actor: str, node: str | None, snapshot: Mapping[str, Any],
               **detail: Any) -> None:
        self.history.append(Entry(len(self.history), action, actor, self.at, node, detail,
                                  copy.deepcopy(dict(snapshot))))

    # -- lookups --

    def live(self, node: str) -> list[Task]:
        return [t for t in self.tasks.values()
                if t.node == node and t.visit == self.visit and t.status not in GONE]

    def my_task(self, actor: str) -> Task:
        if self.status != "running":
            raise FlowError("not_running", "the instance is not running")
        mine = [t for n in self.current for t in self.live(n) if t.assignee == actor]
        for t in mine:
            if t.status == "pending":
                return t
        if any(t.status == "waiting" for t in mine):
            raise FlowError("not_your_turn", "an earlier approver has not decided yet")
        if mine:
            raise FlowError("already_decided", "you have already decided")
        raise FlowError("not_assignee", "you are not an approver of this step")

    def require_initiator(self, actor: str) -> None:
        if actor != self.state.initiator:
            raise FlowError("not_initiator", "only the initiator may do this")

    def require_user(self, user: str | None, node: str) -> str:
        if not user or user not in self.directory.users:
            raise FlowError("unknown_user", f"unknown user {user!r}", user=user)
        if user == self.state.initiator:  # they could then approve their own request
            raise FlowError("initiator_as_approver", "the initiator cannot take a task of "
                            "their own request", user=user)
        if any(t.assignee == user and t.status in OPEN for t in self.live(node)):
            raise FlowError("already_assignee", f"{user} already has this task", user=user)
        return user

    # -- tasks --

    def new_task(self, node: Node, user: str, slot: int, *, after: int | None = None,
                 added: str | None = None, status: str | None = None) -> Task:
        status = status or ("waiting" if after is not None else "pending")
        task = Task(max(self.tasks, default=0) + 1, node.id, self.visit, slot, user, status,
                    self.at, after, added)
        self.tasks[task.id] = task
        if status == "pending":
            self.activate(task, node)
        return task

    def activate(self, task: Task, node: Node) -> None:
        due = None
        if node.due_hours is not None:
            due = (self.now + timedelta(hours=node.due_hours)).isoformat()
        self.tasks[task.id] = replace(task, status="pending", due_at=due)
        self.events.append(Event("task_created", node.id, task.id, task.assignee,
                                 {"due_at": due}))

    def set_status(self, task: Task, status: str, node: Node) -> None:
        self.tasks[task.id] = replace(task, status=status, decided_at=self.at)
        self.unblock(node)

    def unblock(self, node: Node) -> None:
        """Wake tasks whose predecessor is done; a rejected slot drops its own queue.

        A waiting task goes on once its predecessor approved; after a rejection the
        rest of that slot is moot (cancelled), but the next slot of a sequence still
        gets its turn (a percentage may yet be reached).
        """
        changed = True
        while changed:
            changed = False
            for w in self.live(node.id):
                if w.status != "waiting" or w.after is None:
                    continue
                p = self.tasks[w.after]
                if p.status in APPROVED or (p.slot != w.slot and p.status in
                                            ("rejected", "cancelled")):
                    self.activate(w, node)
                elif p.slot == w.slot and p.status in ("rejected", "cancelled"):
                    self.tasks[w.id] = replace(w, status="cancelled")
                else:
                    continue
                changed = True

    def rewire(self, old: int, new: int) -> None:
        """Tasks that waited on ``old`` now wait on ``new``."""
        for t in list(self.tasks.values()):
            if t.after == old and t.id != new:
                self.tasks[t.id] = replace(t, after=new)

    # -- moving through the graph --

    def enter(self, node_id: str | None) -> None:
        while node_id is not None:
            node = self.spec.node(node_id)
            if node.kind == "end":
                self.finish(node.outcome)
                return
            if node.kind == "condition":
                node_id = self.branch(node)
                continue
            if node.kind == "notify":
                users = resolve(node.to, self.directory, initiator=self.state.initiator,
                                unit=self.state.unit, data=self.data)
                self.events.append(Event("notified", node.id, detail={"users": users}))
            elif node.kind == "action":
                self.events.append(Event("action", node.id, detail={
                    "name": node.action, "data": copy.deepcopy(self.data)}))
            elif node.kind == "approval":
                self.open_approval(node)
                if self.outcome(node) is None:
                    self.current = [node.id]
                    return
                self.close(node)
            node_id = node.next

    def branch(self, node: Node) -> str:
        for i, b in enumerate(node.branches):
            assert b.when is not None  # load_flow refuses specs whose conditions fail
            missing = [n for n in b.when.names if n not in self.data]
            if missing:
                raise FlowError("condition_failed", f"no value for {missing[0]!r}",
                                node=node.id, branch=i, field=missing[0])
            try:
                hit = b.when.evaluate_row({n: self.data[n] for n in b.when.names})
            except ExpressionError as exc:
                raise FlowError("condition_failed", exc.message, node=node.id,
                                branch=i) from None
            if hit:
                return b.to
        assert node.default is not None  # the schema requires it
        return node.default

    def open_approval(self, node: Node) -> None:
        who = {"initiator": self.state.initiator, "unit": self.state.unit, "data": self.data}
        users = resolve(node.assignees, self.directory, **who)
        initiator = self.state.initiator
        if node.self_approval == "forbid":
            users = [u for u in users if u != initiator]
        if not users:
            users = [u for u in resolve(node.fallback, self.directory, **who)
                     if u != initiator]
        elif node.mode == "all" and len(node.assignees) > 1:
            self.require_distinct_countersigners(node, who)
        if not users:
            raise FlowError("no_assignee", f"nobody can approve {node.id!r}", node=node.id)
        if node.mode == "single":
            users = users[:1]
        self.visit += 1
        self.path.append(node.id)
        previous: int | None = None  # the chain skips the initiator's skipped task
        for slot, user in enumerate(users):
            if user == initiator and node.self_approval == "skip":
                task = Task(max(self.tasks, default=0) + 1, node.id, self.visit, slot, user,
                            "skipped", self.at, decided_at=self.at)
                self.tasks[task.id] = task
                continue
            after = previous if node.order == "sequence" else None
            previous = self.new_task(node, user, slot, after=after).id

    def require_distinct_countersigners(self, node: Node, who: Mapping[str, Any]) -> None:
        """A countersign is one decision per assignee rule: refuse when fewer different
        people than rules stand behind them (one person holding both the HRBP and the CFO
        role would otherwise sign for both)."""
        initiator = self.state.initiator
        per_rule = [[u for u in resolve((rule,), self.directory, **who) if u != initiator]
                    for rule in node.assignees]
        # A rule that names nobody but the initiator drops out, as the initiator's own task does.
        per_rule = [users for users in per_rule if users]
        if not _distinct_representatives(per_rule):
            raise FlowError("countersign_not_distinct",
                            f"{node.id!r} needs {len(per_rule)} different people, one per "
                            f"assignee rule", node=node.id, needed=len(per_rule))

    def outcome(self, node: Node) -> str | None:
        slots: dict[int, list[Task]] = {}
        for t in self.live(node.id):
            slots.setdefault(t.slot, []).append(t)
        n = len(slots)
        rejected = sum(any(t.status == "rejected" for t in ts) for ts in slots.values())
        approved = sum(all(t.status in APPROVED for t in ts) for ts in slots.values())
        if node.mode in ("single", "any"):
            return "approved" if approved else ("rejected" if rejected else None)
        if node.mode == "all":
            return "rejected" if rejected else ("approved" if approved == n else None)
        if approved * 100 >= node.percent * n:
            return "approved"
        if (n - rejected) * 100 < node.percent * n:
            return "rejected"
        return None

    def close(self, node: Node) -> None:
        for t in self.live(node.id):
            if t.status in OPEN:
                self.tasks[t.id] = replace(t, status="cancelled")
        if node.id in self.current:
            self.current.remove(node.id)

    def settle(self, node: Node) -> None:
        """After a decision in ``node``: move on, end rejected, or keep waiting."""
        result = self.outcome(node)
        if result is None:
            return
        self.close(node)
        if result == "approved":
            self.enter(node.next)
        else:
            self.finish("rejected")

    def finish(self, outcome: str) -> None:
        self.status = outcome
        self.current = []
        self.events.append(Event("ended", detail={"outcome": outcome}))


# --- handlers ------------------------------------------------------------------------


def _submit(run: _Run, action: Action, actor: str) -> None:
    run.require_initiator(actor)
    if run.status != "draft":
        raise FlowError("already_submitted", "the instance is already running")
    _allowed_changes(run.spec, action.changes, submit_fields(run.spec))
    before = copy.deepcopy(run.data)
    run.data.update(copy.deepcopy(dict(action.changes)))
    run.data = _derive(run.spec, run.data)
    run.status, run.decided, run.path = "running", False, []
    run.record("submit", actor, None, before, changes=dict(action.changes),
               comment=action.comment)
    run.enter(run.spec.node(run.spec.start).next)


def _decide(name: str, verdict: str) -> Any:
    def handler(run: _Run, action: Action, actor: str) -> None:
        task = run.my_task(actor)
        node = run.spec.node(task.node)
        if verdict == "approved" and actor == run.state.initiator:
            raise FlowError("self_approval", "the initiator cannot approve their own "
                            "request at this step")
        run.record(name, actor, node.id, run.data, task=task.id, comment=action.comment)
        run.decided = True
        run.set_status(task, verdict, node)
        run.settle(node)
    return handler


def _return(run: _Run, action: Action, actor: str) -> None:
    task = run.my_task(actor)
    node = run.spec.node(task.node)
    target = action.target or "initiator"
    earlier = run.path[:-1]
    if target != "initiator" and target not in earlier:
        raise FlowError("invalid_return_target", f"cannot return to {target!r}",
                        target=target)
    run.record("return", actor, node.id, run.data, task=task.id, to=target,
               comment=action.comment)
    run.decided = True
    run.set_status(task, "returned", node)
    run.close(node)
    if target == "initiator":
        run.status = "draft"
        run.current = []
    else:
        run.path = earlier[:earlier.index(target)]
        run.enter(target)


def _withdraw(run: _Run, action: Action, actor: str) -> None:
    run.require_initiator(actor)
    if run.status == "running" and run.decided:
        raise FlowError("too_late_to_withdraw", "an approver has already decided")
    run.record("withdraw", actor, None, run.data, comment=action.comment)
    for node_id in list(run.current):
        run.close(run.spec.node(node_id))
    run.finish("withdrawn")


def _transfer(run: _Run, action: Action, actor: str) -> None:
    task = run.my_task(actor)
    node = run.spec.node(task.node)
    user = run.require_user(action.target, node.id)
    run.record("transfer", actor, node.id, run.data, task=task.id, to=user,
               comment=action.comment)
    run.set_status(task, "transferred", node)
    new = run.new_task(node, user, task.slot, added=task.added)
    run.rewire(task.id, new.id)


def _add_approver(run: _Run, action: Action, actor: str) -> None:
    task = run.my_task(actor)
    node = run.spec.node(task.node)
    if action.position not in ("before", "after"):
        raise FlowError("invalid_position", "position must be 'before' or 'after'")
    user = run.require_user(action.target, node.id)
    run.record("add_approver", actor, node.id, run.data, task=task.id, user=user,
               position=action.position, comment=action.comment)
    if action.position == "before":
        new = run.new_task(node, user, task.slot, added="before")
        run.tasks[task.id] = replace(task, status="waiting", after=new.id, due_at=None)
    else:
        new = run.new_task(node, user, task.slot, after=task.id, added="after")
        run.rewire(task.id, new.id)


def _comment(run: _Run, action: Action, actor: str) -> None:
    people = {run.state.initiator} | {t.assignee for t in run.tasks.values()}
    if actor not in people:
        raise FlowError("not_participant", "only the initiator and approvers may comment")
    if not action.comment.strip():
        raise FlowError("empty_comment", "the comment is empty")
    run.record("comment", actor, None, run.data, comment=action.comment)


def _urge(run: _Run, action: Action, actor: str) -> None:
    run.require_initiator(actor)
    if run.status != "running":
        raise FlowError("not_running", "the instance is not running")
    run.record("urge", actor, None, run.data, comment=action.comment)
    for t in sorted(_pending(run), key=lambda t: t.id):
        run.events.append(Event("reminded", t.node, t.id, t.assignee, {"by": actor}))


def _edit(run: _Run, action: Action, actor: str) -> None:
    task = run.my_task(actor)
    node = run.spec.node(task.node)
    if not action.changes:
        raise FlowError("no_changes", "nothing to change")
    _allowed_changes(run.spec, action.changes, edit_fields(run.spec, node))
    before = copy.deepcopy(run.data)
    run.data.update(copy.deepcopy(dict(action.changes)))
    run.data = _derive(run.spec, run.data)
    changed = [k for k in run.data if k in action.changes or before.get(k) != run.data[k]]
    run.record("edit", actor, node.id, before, task=task.id,
               before={k: before.get(k) for k in changed},
               after={k: copy.deepcopy(run.data[k]) for k in changed}, comment=action.comment)


def _pending(run: _Run) -> list[Task]:
    return [t for n in run.current for t in run.live(n) if t.status == "pending"]


def _tick(run: _Run, action: Action, actor: str) -> None:
    if actor != SYSTEM:
        raise FlowError("not_system", "only the scheduler makes time pass")
    before = copy.deepcopy(run.data)
    done: list[dict[str, Any]] = []
    for task_id in sorted(t.id for t in _pending(run)):
        task = run.tasks[task_id]
        if task.status != "pending" or task.node not in run.current or not task.due_at:
            continue
        if datetime.fromisoformat(task.due_at) > run.now:
            continue
        node = run.spec.node(task.node)
        hours = timedelta(hours=node.due_hours or 0)
        targets: list[str] = []
        if node.on_due == "escalate":
            live = {t.assignee for t in run.live(node.id) if t.status in OPEN}
            targets = [u for u in resolve(node.escalate_to, run.directory,
                                          initiator=run.state.initiator,
                                          unit=run.state.unit, data=run.data)
                       if u not in live and u != run.state.initiator]
        if node.on_due == "auto_approve":
            done.append({"task": task.id, "did": "auto_approved"})
            run.decided = True
            run.set_status(task, "auto_approved", node)
            run.settle(node)
        elif targets:
            done.append({"task": task.id, "did": "escalated", "to": targets[0]})
            run.set_status(task, "escalated", node)
            new = run.new_task(node, targets[0], task.slot, added=task.added)
            run.rewire(task.id, new.id)
            run.events.append(Event("escalated", node.id, new.id, targets[0],
                                    {"from": task.assignee, "task": task.id}))
        else:
            done.append({"task": task.id, "did": "reminded"})
            due = datetime.fromisoformat(task.due_at) + hours
            while due <= run.now:
                due += hours
            run.tasks[task.id] = replace(task, due_at=due.isoformat())
            run.events.append(Event("reminded", node.id, task.id, task.assignee,
                                    {"by": SYSTEM}))
        if run.status != "running":
            break
    if done:
        run.record("tick", actor, None, before, handled=done)


_HANDLERS = {
    "submit": _submit, "approve": _decide("approve", "approved"),
    "reject": _decide("reject", "rejected"),
    "return": _return, "withdraw": _withdraw, "transfer": _transfer,
    "add_approver": _add_approver, "comment": _comment, "urge": _urge, "edit": _edit,
    "tick": _tick,
}


def _distinct_representatives(choices: list[list[str]]) -> bool:
    """Whether each list can be given a different person of its own (bipartite matching
    by augmenting paths; lists are a node's few assignee rules)."""
    holder: dict[str, int] = {}

    def place(i: int, seen: set[str]) -> bool:
        for user in choices[i]:
            if user in seen:
                continue
            seen.add(user)
            if user not in holder or place(holder[user], seen):
                holder[user] = i
                return True
        return False

    return all(place(i, set()) for i in range(len(choices)))
