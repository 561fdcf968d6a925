"""Approval flows on the database: start an instance, act on it, let time pass.

The pure interpreter (:mod:`quotaflow.flows`) decides; this module stores its state in
:class:`~quotaflow.store.flow_models.FlowInstance` (pinned to the flow spec version it
started under), keeps ``flow_tasks`` in step with it, delivers the interpreter's events
(outbox messages, registered action handlers, ``on_end`` handlers) and audits every
action, all in the caller's transaction: nothing here commits.

Concurrency: a step is written with a compare-and-swap on ``revision`` (``UPDATE ...
WHERE id = ? AND revision = ?``), which works the same on SQLite and PostgreSQL. The
loser of a race re-reads the instance and tries again; when its decision no longer
applies (someone else decided first) it is refused with ``already_decided``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.flows import (
    SYSTEM,
    Action,
    Directory,
    Event,
    FlowError,
    FlowSpec,
    FlowSpecError,
    FlowState,
    load_flow,
    new_instance,
    resolve,
    step,
)
from quotaflow.messages import _l
from quotaflow.services import audit, registry, spec_kinds
from quotaflow.services.access import Principal
from quotaflow.services.compiled import compiled
from quotaflow.services.uow import Context, in_unit_of_work, unit_of_work, use_case
from quotaflow.store import flow_queries, queries
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import OrgUnit, SpecVersion, User, utcnow

log = logging.getLogger(__name__)

FLOW_KIND = spec_kinds.FLOW
#: Roles whose holder is the head of the unit the role is granted on.
HEAD_ROLES = ("region_head", "team_lead", "sales")
#: Actions that decide (or pass on) the actor's own task.
DECISIONS = frozenset({"approve", "reject", "return", "transfer", "add_approver", "edit"})
#: Refusals that mean "the task is no longer yours to decide" after a concurrent change.
_TOO_LATE = frozenset({"already_decided", "not_assignee", "not_running", "ended",
                       "not_your_turn"})
MAX_ATTEMPTS = 5
#: Seconds between reads again after SQLite refused a write to a stale snapshot (x attempt).
LOCKED_PAUSE = 0.05
TOPIC_NOTIFIED = "flow.notified"


class FlowRefused(QuotaFlowError):
    """A flow action that was not done; ``code`` is stable (the interpreter's codes, plus
    "not_found", "no_flow", "invalid_spec", "unknown_action", "already_decided", "busy").

    ``detail`` is the English detail (a handler's own words); a code the catalogue does
    not know (a plugin's action handler, say) still reads in the caller's language as
    "other", with the detail.
    """

    domain = "flow"
    CODE_KINDS = code_kinds(not_found="not_found", already_decided="conflict", busy="conflict",
                            not_assignee="forbidden", not_initiator="forbidden",
                            not_participant="forbidden", not_system="forbidden",
                            self_approval="forbidden")
    CODES = messages.register(domain, {
        "already_decided": _l("Already decided by someone else. The page now shows the current "
                              "state."),
        "already_decided_by_you": _l("You have already decided this task."),
        "not_assignee": _l("You are not an approver of this step."),
        "not_your_turn": _l("An earlier approver has not decided yet."),
        "not_initiator": _l("Only the initiator may do this."),
        "not_participant": _l("Only the initiator and the approvers may comment."),
        "too_late_to_withdraw": _l("An approver has already decided; the request can no longer be "
                                   "withdrawn."),
        "ended": _l("This request has ended."),
        "not_running": _l("This request is not in progress."),
        "already_submitted": _l("This request is already in progress."),
        "unknown_user": _l("Unknown user “%(user)s”."),
        "already_assignee": _l("%(user)s already has this task."),
        "initiator_as_approver": _l("The initiator cannot take a task of their own request."),
        "self_approval": _l("You cannot approve your own request."),
        "countersign_not_distinct": _l("The step “%(node)s” is a countersign and needs "
                                       "%(needed)s different people, one per role; nothing was "
                                       "changed."),
        "invalid_return_target": _l("This request cannot be returned to “%(target)s”."),
        "invalid_position": _l("Choose whether the approver comes before or after you."),
        "empty_comment": _l("Write a comment first."),
        "no_changes": _l("Nothing was changed."),
        "field_not_editable": _l("“%(field)s” cannot be changed at this step."),
        "invalid_value": _l("“%(field)s” must be a %(type)s."),
        "bad_value": _l("“%(field)s” must be a number."),
        "unknown_action": _l("This step runs an action QuotaFlow does not know (%(action)s); "
                             "nothing was changed."),
        # An appeal's requested target checked on the server (the confirmation's texts).
        "out_of_range": _l("Requested target: enter between %(minimum)s and %(maximum)s yuan "
                           "(the allocated %(allocated)s ± %(range)s%%)."),
        "not_multiple": _l("Requested target: enter a multiple of %(unit)s yuan."),
        "no_change": _l("That is the allocated target: accept it instead of appealing."),
        "not_number": _l("Enter a whole number of yuan."),
        "required": _l("This field is required."),
        "derive_failed": _l("A computed field of the flow (“%(field)s”) could not be "
                            "evaluated; nothing was changed."),
        "no_assignee": _l("Nobody can approve the step “%(node)s”; nothing was changed."),
        "condition_failed": _l("A condition of the flow could not be evaluated; nothing was "
                               "changed."),
        "busy": _l("The request is changing too often; try again."),
        "invalid_spec": _l("The flow definition of this request is not valid."),
        "bad_action": _l("Unknown action."),
        "comment_too_long": _l("The comment is too long (at most %(max)s characters)."),
        "adjustment_failed": _l("The approved target could not be applied, so nothing was "
                                "changed: %(detail)s"),
        "recompute_failed": _l("The recomputed plan could not be published, so nothing was "
                               "changed: %(detail)s"),
        "no_flow": _l("No approval flow “%(flow)s” is active."),
        "not_found": _l("This request does not exist."),
        "not_system": _l("Only the scheduler makes time pass."),
        "publish_failed": _l("The plan could not be published, so nothing was changed: "
                             "%(detail)s"),
        "other": _l("The action was refused (%(code)s), so nothing was changed: %(detail)s"),
    })

    def __init__(self, code: str, detail: str = "", /, **params: Any) -> None:
        self.detail = detail or code
        super().__init__(code, "", **params)

    def message_params(self) -> dict[str, Any]:
        return {**self.params, "detail": self.detail, "code": self.code}

    @property
    def key(self) -> str:
        if self.code == "already_decided" and self.params.get("by") == "you":
            return "flow.already_decided_by_you"
        return f"flow.{self.code}" if self.code in self.CODES else "flow.other"


# --- handlers ------------------------------------------------------------------------
# Flow action and end handlers are declared in quotaflow.services.registry.


def decider(session: Session, instance: FlowInstance) -> User | None:
    """The last user who approved, rejected or edited in the instance (its history)."""
    for entry in reversed((instance.state or {}).get("history") or []):
        if entry.get("action") in ("approve", "reject", "edit") and entry.get("actor"):
            return queries.user_by_username(session, entry["actor"])
    return None


def action_names() -> frozenset[str]:
    """The action names a flow spec may use: those declared in services/registry.py."""
    return registry.action_names()


def validate_spec(doc: Any) -> FlowSpec:
    """Parse a flow spec against the known action names (raises FlowSpecError)."""
    return load_flow(doc, actions=action_names(), saving=True)


def spec_of(instance: FlowInstance) -> FlowSpec:
    """The flow spec version the instance is pinned to (cached by content hash)."""
    version = instance.flow_version
    return _spec(version)


def _spec(version: SpecVersion) -> FlowSpec:
    # Action names were checked when the version was saved; one no longer declared is
    # refused when an instance reaches it ("unknown_action"), not by hiding the instance.
    try:
        return compiled((FLOW_KIND, version.content_hash),
                        lambda: load_flow(version.content))
    except FlowSpecError as exc:
        raise FlowRefused("invalid_spec", f"flow {version.key} v{version.version} is not "
                          f"valid: {exc}", key=version.key, version=version.version) from None


# --- the directory -------------------------------------------------------------------


def build_directory(session: Session, unit: OrgUnit | None = None) -> Directory:
    """Who is who, from the users, their grants and the org tree.

    Heads: the user holding a region_head, team_lead or sales grant exactly on a unit.
    Managers: the head of the parent of a user's unit (their person unit, else the unit
    of their head grant). Units: ``unit``, its ancestors and every unit with a head.
    """
    users = {u.id: u for u in queries.users(session, active=True)}
    grant_rows = flow_queries.grants_with_units(session)
    grants = tuple((users[r[0]].username, r[1], r[4]) for r in grant_rows if r[0] in users)
    heads: dict[str, str] = {}
    head_unit_of: dict[int, int] = {}  # user id -> unit id of their (deepest) head grant
    units: dict[str, str] = {}
    unit_info: dict[int, tuple[str, int | None]] = {}  # unit id -> (code, parent id)
    for user_id, role, unit_id, code, path, parent_id in sorted(
            grant_rows, key=lambda r: (r[4], users[r[0]].username if r[0] in users else "")):
        if user_id not in users or role not in HEAD_ROLES:
            continue
        heads.setdefault(code, users[user_id].username)
        units[code] = path
        unit_info[unit_id] = (code, parent_id)
        head_unit_of[user_id] = unit_id  # paths ascend, so the deepest grant wins
    person_ids = {u.person_unit_id for u in users.values() if u.person_unit_id is not None}
    wanted = (person_ids | set(head_unit_of.values())) - set(unit_info)
    unit_info.update(flow_queries.unit_codes_and_parents(session, wanted))
    parents = {info[1] for info in unit_info.values() if info[1] is not None}
    parent_codes = flow_queries.unit_codes(session, parents)
    managers: dict[str, str] = {}
    for user in users.values():
        base = user.person_unit_id or head_unit_of.get(user.id)
        if base is None or base not in unit_info:
            continue
        parent_id = unit_info[base][1]
        manager = heads.get(parent_codes.get(parent_id, "")) if parent_id else None
        if manager and manager != user.username:
            managers[user.username] = manager
    if unit is not None:
        ids = [int(p) for p in unit.path.strip("/").split("/") if p]
        units.update(flow_queries.unit_paths(session, ids))
    return Directory(frozenset(u.username for u in users.values()), grants, units, heads,
                     managers)


# --- starting and acting -------------------------------------------------------------


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else utcnow()


def active_flow(session: Session, flow_key: str) -> SpecVersion | None:
    """The active version of the flow spec ``flow_key``, if any."""
    return flow_queries.active_flow_version(session, FLOW_KIND, flow_key)


def start(session: Session, flow_key: str, *, unit: OrgUnit, initiator: User,
          data: dict[str, Any], subject_type: str, subject_id: int,
          now: dt.datetime | None = None) -> FlowInstance:
    """Create an instance of the active version of ``flow_key`` and submit it."""
    now = _now(now)
    version = active_flow(session, flow_key)
    if version is None:
        raise FlowRefused("no_flow", f"no active flow spec {flow_key!r}", flow=flow_key)
    spec = _spec(version)
    directory = build_directory(session, unit)
    try:
        draft = new_instance(spec, initiator.username, unit.code, data, directory, now)
        state, events = step(spec, draft, Action("submit"), initiator.username, now)
    except FlowError as exc:
        raise FlowRefused(exc.code, str(exc), **exc.params) from None
    _check_handlers(events)
    instance = FlowInstance(
        flow_version_id=version.id, flow_key=flow_key, subject_type=subject_type,
        subject_id=subject_id, unit_id=unit.id, initiator_id=initiator.id,
        status=state.status, state=state.as_dict(), revision=1, created_at=now,
        updated_at=now, ended_at=now if state.status in _ENDED else None)
    session.add(instance)
    session.flush()
    audit.record(session, initiator, "flow_start", "flow_instance", str(instance.id),
                 after={"flow": flow_key, "version": version.version,
                        "subject": f"{subject_type}:{subject_id}", "unit": unit.code,
                        "status": state.status, "current": list(state.current)})
    _deliver(session, instance, spec, state, events)
    return instance


_ENDED = frozenset({"approved", "rejected", "withdrawn"})


def act(session: Session, instance_id: int, actor: User, action: Action, *,
        revision: int | None = None, now: dt.datetime | None = None,
        remote_addr: str | None = None) -> FlowInstance:
    """Apply ``action`` by ``actor``; ``revision`` is the one the actor saw (if known).

    The action is applied to the instance as it is now; a stale ``revision`` (or losing a
    race) only matters when the action no longer applies: then the refusal is
    "already_decided". Raises :class:`FlowRefused`; the step is one unit of work, so a
    registered action handler that raises leaves nothing of it.
    """
    if action.kind == "tick":
        raise FlowRefused("not_system", "only the scheduler makes time pass")
    owner = not in_unit_of_work(session)
    conflict = False
    for attempt in range(MAX_ATTEMPTS):
        if conflict:
            time.sleep(LOCKED_PAUSE * attempt)  # let the other decision commit first
        try:
            with unit_of_work(session):
                return _apply(session, instance_id, actor, actor.username, action,
                              revision=revision, now=_now(now), remote_addr=remote_addr,
                              conflict=conflict)
        except OperationalError as exc:
            # SQLite: another decision committed after this transaction's first read, so
            # its snapshot cannot write. Owning the transaction, read again from scratch.
            if not (owner and _stale_snapshot(exc)):
                raise
            conflict = True
    raise FlowRefused("busy", "the instance is changing too often; try again")


def _stale_snapshot(exc: OperationalError) -> bool:
    return "database is locked" in str(exc.orig)


def _apply(session: Session, instance_id: int, actor: User | None, name: str, action: Action,
           *, revision: int | None, now: dt.datetime, remote_addr: str | None = None,
           conflict: bool = False) -> FlowInstance:
    for _attempt in range(MAX_ATTEMPTS):
        instance = flow_queries.instance(session, instance_id, fresh=True)
        if instance is None:
            raise FlowRefused("not_found", f"no flow instance {instance_id}", id=instance_id)
        seen = instance.revision
        stale = conflict or (revision is not None and revision != seen)
        spec = spec_of(instance)
        state = FlowState.from_dict(instance.state)
        try:
            new_state, events = step(spec, state, action, name, now)
        except FlowError as exc:
            raise _refusal(exc, state, name, action, stale) from None
        _check_handlers(events)
        if action.kind in ("submit", "edit"):
            # The subject's policy, on the server's values (e.g. an appeal's range).
            for check in registry.data_checks(instance.subject_type):
                check(session, instance, dict(new_state.data))
        doc = new_state.as_dict()
        if doc == instance.state:
            return instance  # nothing happened (e.g. a tick with nothing due)
        if flow_queries.write_step(session, instance_id, seen, state=doc,
                                   status=new_state.status, now=now,
                                   ended_at=now if new_state.status in _ENDED else None):
            break
        conflict = True  # someone else stepped first: read again and retry
    else:
        raise FlowRefused("busy", "the instance is changing too often; try again")
    session.expire(instance)
    session.refresh(instance)
    detail: dict[str, Any] = {"action": action.kind}
    if action.target:
        detail["target"] = action.target
    if action.kind == "add_approver":
        detail["position"] = action.position
    if action.comment:
        detail["comment"] = action.comment
    if action.changes:
        detail["changes"] = dict(action.changes)
    audit.record(session, actor, f"flow_{action.kind}", "flow_instance", str(instance_id),
                 before={"status": state.status, "revision": seen,
                         "current": list(state.current)},
                 after={**detail, "status": new_state.status, "revision": seen + 1,
                        "current": list(new_state.current)},
                 remote_addr=remote_addr)
    _deliver(session, instance, spec, new_state, events)
    return instance


def _refusal(exc: FlowError, state: FlowState, actor: str, action: Action,
             stale: bool) -> FlowRefused:
    """The interpreter's refusal, or "already_decided" when another decision got there first."""
    mine = [t for t in state.tasks if t.assignee == actor]
    if (action.kind in DECISIONS and exc.code in _TOO_LATE and state.status != "withdrawn"
            and mine):
        latest = max(mine, key=lambda t: t.id)
        if latest.status in ("cancelled", "escalated"):
            return FlowRefused("already_decided", "already decided by someone else",
                               refused=exc.code, by="others")
        if latest.status in _OWN_DECISIONS:
            return FlowRefused("already_decided", "you have already decided this task",
                               refused=exc.code, by="you")
        if stale:
            return FlowRefused("already_decided", "already decided by someone else",
                               refused=exc.code, by="others")
    refused = FlowRefused(exc.code, str(exc), **exc.params)
    if action.kind in ("submit", "edit") and isinstance(exc.params.get("field"), str):
        refused.pointer = f"/changes/{exc.params['field']}"  # the API's body: {"changes": ...}
    return refused


_OWN_DECISIONS = frozenset({"approved", "rejected", "returned", "transferred"})


def _check_handlers(events: Iterable[Event]) -> None:
    for event in events:
        if event.kind == "action" and registry.flow_action(
                str(event.detail.get("name"))) is None:
            name = event.detail.get("name")
            raise FlowRefused("unknown_action", f"no handler is declared for action "
                              f"{name!r} (node {event.node!r}); nothing was changed",
                              action=name, node=event.node)


# --- delivering events ---------------------------------------------------------------


def _rewrite_tasks(session: Session, instance: FlowInstance, state: FlowState,
                   ids: Mapping[str, int]) -> None:
    live = {t.id for t in state.pending()}
    rows = []
    for task in state.tasks:
        if task.assignee not in ids:
            continue
        status = task.status
        if status == "pending" and task.id not in live:
            status = "inactive"
        rows.append({"instance_id": instance.id, "task_id": task.id,
                     "user_id": ids[task.assignee], "node": task.node, "status": status,
                     "due_at": dt.datetime.fromisoformat(task.due_at) if task.due_at and
                     status == "pending" else None})
    flow_queries.replace_tasks(session, instance.id, rows)


def _names(spec: FlowSpec, node_id: str | None) -> tuple[str, str]:
    if node_id is None or node_id not in spec.nodes:
        return "", ""
    node = spec.node(node_id)
    return node.name_en or node.id, node.name_zh or node.name_en or node.id


def _payload(instance: FlowInstance, spec: FlowSpec, event: Event, title_en: str,
             title_zh: str) -> dict[str, Any]:
    flow_en = spec.name_en or spec.id
    flow_zh = spec.name_zh or flow_en
    node_en, node_zh = _names(spec, event.node)
    unit = instance.unit.code
    return {
        "title_en": f"{title_en}: {flow_en}", "title_zh": f"{title_zh}：{flow_zh}",
        "body_en": f"{flow_en} #{instance.id} for {unit}" + (f", step “{node_en}”"
                                                             if node_en else ""),
        "body_zh": f"{flow_zh} #{instance.id}（{unit}）" + (f"，环节“{node_zh}”"
                                                          if node_zh else ""),
        "url": f"/tasks/{instance.id}",
        "instance_id": instance.id, "flow": instance.flow_key, "node": event.node,
        "task": event.task, "subject_type": instance.subject_type,
        "subject_id": instance.subject_id, "status": instance.status,
        "detail": dict(event.detail),
    }


def _emit(session: Session, topic: str, payload: Mapping[str, Any], to_users: list[int],
          unit_id: int, key: str) -> None:
    from quotaflow.services import outbox  # imported late: a feature of its own

    if topic not in outbox.TOPICS:
        outbox.register_topic(topic)
    outbox.emit(session, topic, payload, to_users=to_users, unit_id=unit_id, key=key)


_TITLES = {
    "task_created": ("flow.task_created", "Approval needed", "待审批"),
    "reminded": ("flow.reminded", "Reminder", "催办提醒"),
    "notified": (TOPIC_NOTIFIED, "For your information", "知会"),
    "ended": ("flow.ended", "Finished", "流程结束"),
}
_OUTCOMES = {"approved": ("approved", "已通过"), "rejected": ("rejected", "已驳回"),
             "withdrawn": ("withdrawn", "已撤回")}


def _deliver(session: Session, instance: FlowInstance, spec: FlowSpec, state: FlowState,
             events: list[Event]) -> None:
    users = [e.user for e in events if e.user] + [
        u for e in events if e.kind == "notified" for u in e.detail.get("users", ())]
    ids = flow_queries.user_ids_by_username(session, [*users, *(t.assignee for t in state.tasks)])
    _rewrite_tasks(session, instance, state, ids)
    ended = False
    for index, event in enumerate(events):
        key = f"flow:{instance.id}:{instance.revision}:{index}"
        if event.kind in ("task_created", "reminded") and event.user in ids:
            topic, en, zh = _TITLES[event.kind]
            _emit(session, topic, _payload(instance, spec, event, en, zh), [ids[event.user]],
                  instance.unit_id, key)
        elif event.kind == "notified":
            topic, en, zh = _TITLES["notified"]
            to = [ids[u] for u in event.detail.get("users", ()) if u in ids]
            if to:
                _emit(session, topic, _payload(instance, spec, event, en, zh), to,
                      instance.unit_id, key)
        elif event.kind == "action":
            handler = registry.flow_action(str(event.detail["name"]))
            assert handler is not None  # _check_handlers ran before the step was written
            handler(session, instance)
        elif event.kind == "ended":
            ended = True
            outcome = str(event.detail.get("outcome", instance.status))
            en, zh = _OUTCOMES.get(outcome, (outcome, outcome))
            topic = "flow.ended"
            _emit(session, topic, _payload(instance, spec, event, f"Finished, {en}",
                                           f"流程{zh}"),
                  [instance.initiator_id], instance.unit_id, key)
    if ended:
        for end_handler in registry.end_handlers(instance.subject_type):
            end_handler(session, instance)


# --- time ------------------------------------------------------------------------------


@dataclass
class TickResult:
    ticked: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def tick(session: Session, now: dt.datetime | None = None, *,
         only: Iterable[int] | None = None) -> TickResult:
    """Let time pass for running instances with due tasks (remind, escalate or
    auto-approve, as their nodes say), acting as the system; ``only``: these instances.

    An instance whose step is refused is left as it was (its own savepoint) and listed in
    ``refused``; the others' steps commit together (in the caller's unit of work, if any)."""
    now = _now(now)
    due = flow_queries.due_instance_ids(session, now, only)
    result = TickResult()
    with unit_of_work(session):
        for instance_id in due:
            # One savepoint per instance: a refusal raised after the step was written (an
            # action or end handler, e.g. an auto-approval whose adjustment cannot be
            # applied) undoes that instance's step whole, and the others still go through.
            try:
                with unit_of_work(session):
                    _apply(session, instance_id, None, SYSTEM, Action("tick"), revision=None,
                           now=now)
            except FlowRefused as exc:
                log.warning("flow instance %s: tick refused: %s", instance_id, exc.detail)
                result.refused[instance_id] = exc.detail
                continue
            result.ticked.append(instance_id)
    return result


# --- who may see an instance ----------------------------------------------------------


def observers(instance: FlowInstance) -> set[str]:
    """Usernames the flow's notify nodes name (they are told about it, so may look)."""
    state = instance.state or {}
    directory = Directory.from_dict(state.get("directory", {}))
    spec = spec_of(instance)
    found: set[str] = set()
    for node in spec.nodes.values():
        if node.kind == "notify":
            found.update(resolve(node.to, directory, initiator=state.get("initiator", ""),
                                 unit=state.get("unit", ""), data=state.get("data", {})))
    return found


def visible_to(instance: FlowInstance, principal: Principal, username: str) -> bool:
    """Whether a user may see an instance: its initiator, anyone who held one of its
    tasks, those its notify nodes name, and overseers (flow.oversee) of its unit."""
    if username in participants(instance) or username in observers(instance):
        return True
    return principal.has("flow.oversee") and principal.can("unit.read", instance.unit.path)


def participants(instance: FlowInstance) -> set[str]:
    """Usernames of the initiator and everyone who ever held a task of the instance."""
    state = instance.state or {}
    return {state.get("initiator", "")} | {t["assignee"] for t in state.get("tasks", ())}


@use_case
def run_tick(ctx: Context) -> TickResult:
    """Remind, escalate or auto-approve overdue tasks as of ``ctx.now`` (the scheduler)."""
    return tick(ctx.session, ctx.now.replace(tzinfo=None) if ctx.now.tzinfo else ctx.now)
