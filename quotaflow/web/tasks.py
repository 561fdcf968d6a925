"""Approval tasks: "My tasks" (what waits for me, what I started) and one instance's page
(its form data, history and path, with the buttons the viewer may use; htmx posts)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape

from quotaflow.flows import Action, FlowState, available_actions
from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.services import flow_reads, flows
from quotaflow.services.auth import display_names
from quotaflow.services.flows import FlowInstance, FlowRefused
from quotaflow.web.context import current_locale as _locale

blueprint = Blueprint("tasks", __name__)

ACTION_KINDS = ("approve", "reject", "return", "transfer", "add_approver", "comment", "urge",
                "withdraw", "edit", "submit")
MAX_COMMENT = 2000

#: Where a flow's subject is shown, by subject type: (endpoint, its id argument, link text).
#: Approvers need the subject itself (an appeal's reason and evidence files), not only the
#: flow's form data.
SUBJECT_PAGES: dict[str, tuple[str, str, Any]] = {
    "appeal": ("confirm.appeal_detail", "appeal_id", _l("Open the appeal with its evidence")),
}
#: How a flow's form fields are named on the page (flow specs name fields by key only);
#: a field not listed shows its key.
FIELD_LABELS = {
    "allocated": _l("Allocated target"),
    "requested": _l("Requested target"),
    "change_pct": _l("Change (%)"),
    "reason": _l("Reason"),
}
STATUS_LABELS = {
    "draft": _l("Returned to the initiator"), "running": _l("In progress"),
    "approved": _l("Approved"), "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn"),
}
TASK_LABELS = {
    "pending": _l("Waiting for decision"), "waiting": _l("Waiting for an earlier approver"),
    "approved": _l("Approved"), "rejected": _l("Rejected"), "returned": _l("Returned"),
    "skipped": _l("Skipped"), "auto_approved": _l("Approved automatically"),
    "transferred": _l("Transferred"), "escalated": _l("Escalated"),
    "cancelled": _l("No longer needed"),
}
HISTORY_LABELS = {
    "create": _l("created"), "submit": _l("submitted"), "approve": _l("approved"),
    "reject": _l("rejected"), "return": _l("returned"), "withdraw": _l("withdrew"),
    "transfer": _l("transferred"), "add_approver": _l("added an approver"),
    "comment": _l("commented"), "urge": _l("urged"), "edit": _l("changed the form"),
    "tick": _l("time passed"),
}
KIND_LABELS = {"start": _l("Start"), "approval": _l("Approval"), "condition": _l("Condition"),
               "notify": _l("Notify"), "action": _l("Action"), "end": _l("End")}
#: Names of registered flow actions, for steps the flow spec leaves unnamed.
ACTION_LABELS = {"apply_adjustment": _l("Apply the approved target"),
                 "publish_recompute": _l("Publish the recomputed plan")}
END_LABELS = {"approved": _l("Done: approved"), "rejected": _l("Done: rejected")}
DONE_MESSAGES = {
    "approve": _l("Approved."), "reject": _l("Rejected."), "return": _l("Returned."),
    "transfer": _l("Transferred."), "add_approver": _l("Approver added."),
    "comment": _l("Comment added."), "urge": _l("The approvers were reminded."),
    "withdraw": _l("Withdrawn."), "edit": _l("Changes saved."), "submit": _l("Submitted again."),
}
#: What a tick did to a task (the history's "time passed" rows).
HANDLED_LABELS = {"auto_approved": _l("approved automatically"),
                  "escalated": _l("escalated to %(to)s"), "reminded": _l("reminder sent")}


def refusal_message(exc: FlowRefused) -> str:
    return exc.localized(_locale())


class PendingTasksLabel:
    """The "My tasks" menu label with the number of tasks waiting for the signed-in user."""

    def __str__(self) -> str:
        return str(_l("My tasks"))

    def __html__(self) -> str:
        count = 0
        if current_user and current_user.is_authenticated:
            count = flow_reads.pending_count(request_context())
        return str(escape(gettext("My tasks")) + Markup(" ") + count_badge(count))


def count_badge(count: int, *, oob: bool = False) -> Markup:
    """The number next to "My tasks" (empty at 0); ``oob``: for an htmx out-of-band swap."""
    swap = Markup(' hx-swap-oob="true"') if oob else Markup("")
    if not count:
        return Markup('<span id="task-count"{}></span>').format(swap)
    title = gettext("%(count)s waiting for you", count=count)
    # Styled inline: the menu is on every page, the tasks stylesheet is not.
    return Markup('<span id="task-count"{} class="task-count" data-testid="task-count" '
                  'title="{}" style="background: var(--accent); color: #fff; '
                  'border-radius: 999px; padding: 0 .45em; font-size: .8em;">{}</span>'
                  ).format(swap, title, count)


# --- helpers -------------------------------------------------------------------------



def _bilingual(en: str, zh: str) -> str:
    return (zh or en) if _locale().startswith("zh") else (en or zh)


def _names(usernames: set[str]) -> dict[str, str]:
    return display_names(request_context(), usernames)


def _when(value: str | dt.datetime | None) -> str:
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M")


def _visible_or_404(instance_id: int) -> FlowInstance:
    # Someone else's instance looks the same as an absent one (NotFound: 404).
    return flow_reads.visible_instance(request_context(), instance_id)


def _handled(item: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """One thing a tick did, with ``did`` in words (the interpreter's code otherwise)."""
    did = str(item.get("did", ""))
    label = HANDLED_LABELS.get(did)
    to = item.get("to")
    text = str(label) % {"to": names.get(to, to) if to else ""} if label is not None else did
    return {**item, "did": text}


def node_label(spec: Any, node_id: str | None) -> str:
    if not node_id:
        return ""
    node = spec.nodes.get(node_id)
    if node is None:
        return node_id
    named = _bilingual(node.name_en, node.name_zh)
    if named:
        return named
    # Unnamed steps (actions, notifications, the end) read as what they do, not their ids.
    if node.kind == "action" and node.action in ACTION_LABELS:
        return str(ACTION_LABELS[node.action])
    if node.kind == "end":
        return str(END_LABELS.get(node.outcome, KIND_LABELS["end"]))
    if node.kind == "notify":
        return str(KIND_LABELS["notify"])
    return node.id


def flow_label(spec: Any) -> str:
    return _bilingual(spec.name_en, spec.name_zh) or spec.id


def instance_view(instance: FlowInstance, username: str) -> dict[str, Any]:
    """Everything the instance page shows, and what this viewer may do."""
    spec = flows.spec_of(instance)
    state = FlowState.from_dict(instance.state)
    able = available_actions(spec, state, username)
    mine = able.task
    people = {state.initiator} | {t.assignee for t in state.tasks} | {
        e.actor for e in state.history}
    names = _names(people)
    editable = list(able.editable_fields)
    fields = []
    for name in dict.fromkeys([*spec.fields, *state.data]):
        fields.append({"name": name, "label": str(FIELD_LABELS.get(name, name)),
                       "type": spec.fields.get(name, "string"),
                       "value": state.data.get(name), "editable": name in editable})
    history = []
    for entry in state.history:
        detail = dict(entry.detail)
        who = detail.get("to") or detail.get("user")
        history.append({
            "seq": entry.seq, "at": _when(entry.at), "actor": entry.actor,
            "actor_name": names.get(entry.actor, entry.actor if entry.actor != "system"
                                    else gettext("System")),
            "action": entry.action,
            "action_label": str(HISTORY_LABELS.get(entry.action, entry.action)),
            "node": node_label(spec, entry.node), "comment": detail.get("comment", ""),
            "who": names.get(who, who) if who else "", "position": detail.get("position"),
            "changes": {str(FIELD_LABELS.get(k, k)): v for k, v in
                        (detail.get("after") or detail.get("changes") or {}).items()},
            "handled": [_handled(item, names) for item in detail.get("handled") or []],
        })
    path = []
    visited = set(state.path)
    for raw in spec.source.get("nodes", ()):
        node = spec.node(raw["id"])
        if node.kind == "start":
            continue
        tasks = [t for t in state.tasks if t.node == node.id]
        latest = max((t.visit for t in tasks), default=None)
        path.append({
            "id": node.id, "kind": node.kind, "kind_label": str(KIND_LABELS[node.kind]),
            "label": node_label(spec, node.id), "mode": node.mode,
            "current": node.id in state.current, "visited": node.id in visited,
            "tasks": [{"user": t.assignee, "name": names.get(t.assignee, t.assignee),
                       "status": t.status, "status_label": str(TASK_LABELS.get(t.status,
                                                                               t.status)),
                       "due": _when(t.due_at) if t.status == "pending" else "",
                       "decided": _when(t.decided_at)}
                      for t in tasks if t.visit == latest],
        })
    return_targets = [{"value": n, "label": gettext("The initiator") if n == "initiator"
                       else node_label(spec, n)}
                      for n in able.return_targets if n == "initiator" or n in spec.nodes]
    subject = SUBJECT_PAGES.get(instance.subject_type)
    subject_link = None
    if subject is not None and instance.subject_id is not None:
        endpoint, arg, text = subject
        subject_link = {"url": url_for(endpoint, **{arg: instance.subject_id}), "text": str(text)}
    return {
        "subject_link": subject_link,
        "instance": instance, "spec": spec, "state": state, "flow_label": flow_label(spec),
        "status_label": str(STATUS_LABELS.get(state.status, state.status)),
        "current_labels": [node_label(spec, n) for n in state.current],
        "initiator_name": names.get(state.initiator, state.initiator),
        "fields": fields, "editable": editable, "history": history, "path": path,
        "my_task": mine, "waiting": able.waiting,
        "my_node": node_label(spec, mine.node) if mine else "",
        "return_targets": return_targets,
        # Who a task may go to: never the initiator (flows.permitted.assignable).
        "directory_users": list(able.assignable),
        "available_actions": able.ordered(),
        "can_approve": "approve" in able,
        "can_withdraw": "withdraw" in able,
        "can_urge": "urge" in able,
        "can_resubmit": "submit" in able,
        "can_comment": "comment" in able,
    }


def _parse_changes(form: Mapping[str, str], spec: Any, allowed: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in allowed:
        key = f"field:{name}"
        kind = spec.fields.get(name, "string")
        if kind == "boolean":
            value: Any = form.get(key) in ("1", "true", "on")
        else:
            if key not in form:
                continue
            raw = form.get(key, "").strip()
            if kind in ("number", "integer"):
                try:
                    number = float(raw.replace(",", ""))
                except ValueError:
                    raise FlowRefused("bad_value", f"{name} must be a number",
                                      field=name) from None
                if not math.isfinite(number):
                    raise FlowRefused("bad_value", f"{name} must be a number", field=name)
                if kind == "integer":
                    if number != int(number):
                        raise FlowRefused("invalid_value", f"{name} must be a whole number",
                                          field=name, type=gettext("whole number"))
                    value = int(number)
                else:
                    value = number
            else:
                value = raw
        changes[name] = value
    return changes


def action_from_form(form: Mapping[str, str], instance: FlowInstance,
                     username: str) -> Action:
    kind = form.get("action", "")
    if kind not in ACTION_KINDS:
        raise FlowRefused("bad_action", f"unknown action {kind!r}")
    comment = form.get("comment", "").strip()
    if len(comment) > MAX_COMMENT:
        raise FlowRefused("comment_too_long", "the comment is too long", max=MAX_COMMENT)
    changes: dict[str, Any] = {}
    if kind in ("edit", "submit"):
        view = instance_view(instance, username)
        spec = view["spec"]
        changes = _parse_changes(form, spec, view["editable"])
        if kind == "edit":
            current = instance.data
            changes = {k: v for k, v in changes.items() if current.get(k) != v}
    return Action(kind, target=(form.get("target") or "").strip() or None,
                  position=form.get("position", "after"), comment=comment, changes=changes)


def _revision(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


# --- pages ---------------------------------------------------------------------------


@blueprint.get("/tasks")
@requires("flow.participate")
def index() -> Any:
    pending, started, overseen = flow_reads.my_lists(request_context())
    rows = []
    for task in pending:
        spec = flows.spec_of(task.instance)
        rows.append({"task": task, "instance": task.instance, "flow": flow_label(spec),
                     "node": node_label(spec, task.node), "due": _when(task.due_at),
                     "initiator": task.instance.initiator.display_name})

    def summary(instance: FlowInstance) -> dict[str, Any]:
        spec = flows.spec_of(instance)
        return {"instance": instance, "flow": flow_label(spec),
                "status": str(STATUS_LABELS.get(instance.status, instance.status)),
                "current": ", ".join(node_label(spec, n)
                                     for n in instance.state.get("current", ())),
                "initiator": instance.initiator.display_name,
                "updated": _when(instance.updated_at)}

    return render_template("tasks/index.html", rows=rows,
                           started=[summary(i) for i in started],
                           overseen=[summary(i) for i in overseen])


def _render_instance(instance: FlowInstance, *, error: str | None = None,
                     error_code: str | None = None, done: str | None = None,
                     partial: bool = False, status: int = 200) -> Any:
    view = instance_view(instance, current_user.username)
    template = "tasks/_instance.html" if partial else "tasks/instance.html"
    html = render_template(template, error=error, error_code=error_code, done=done, **view)
    if partial:  # the menu's count follows the decision
        html = Markup(html) + count_badge(flow_reads.pending_count(request_context()),
                                          oob=True)
    return html, status


@blueprint.get("/tasks/<int:instance_id>")
@requires("flow.participate")
def instance_page(instance_id: int) -> Any:
    return _render_instance(_visible_or_404(instance_id))


@blueprint.post("/tasks/<int:instance_id>/act")
@requires("flow.participate")
def act(instance_id: int) -> Any:
    instance = _visible_or_404(instance_id)
    htmx = request.headers.get("HX-Request") == "true"
    username = current_user.username
    if username not in flows.participants(instance):
        abort(403)  # overseers and observers look, they do not act
    try:
        action = action_from_form(request.form, instance, username)
        flow_reads.act(request_context(), instance_id, action,
                       revision=_revision(request.form.get("revision")))
    except FlowRefused as exc:  # the use case rolled back
        message = refusal_message(exc)
        instance = flow_reads.visible_instance(request_context(), instance_id, fresh=True)
        if htmx:  # htmx swaps 200 responses only: the error is part of the panel
            return _render_instance(instance, error=message, error_code=exc.code,
                                    partial=True)
        return _render_instance(instance, error=message, error_code=exc.code,
                                status=409 if exc.code == "already_decided" else 422)
    done = str(DONE_MESSAGES.get(action.kind, ""))
    instance = flow_reads.visible_instance(request_context(), instance_id, fresh=True)
    if htmx:
        return _render_instance(instance, done=done, partial=True)
    flash(done, "success")
    return redirect(url_for("tasks.instance_page", instance_id=instance_id))
