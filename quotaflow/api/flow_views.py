"""Approval-flow routes of the API: my tasks, one instance, and acting on it.

Anyone signed in may list their own tasks (``flow.participate``); an instance is
visible to its initiator, its approvers, those its notify nodes name and overseers
(``flow.oversee``) of its unit, and looks absent (404) to everyone else.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_login import current_user

from quotaflow.api import api_blueprint
from quotaflow.flows import Action, FlowState, available_actions
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import current_principal, requires
from quotaflow.services import flows
from quotaflow.store import db
from quotaflow.store.flow_models import FlowInstance, FlowTask

ACTIONS = ("approve", "reject", "return", "transfer", "add_approver", "comment", "urge",
           "withdraw", "edit", "submit")
MAX_COMMENT = 2000


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def instance_json(instance: FlowInstance, *, full: bool = True,
                  user: str | None = None) -> dict[str, Any]:
    """The instance; with ``user``, also what that user may do next on it."""
    state = instance.state or {}
    out: dict[str, Any] = {
        "id": instance.id, "flow": instance.flow_key,
        "flow_version": instance.flow_version.version,
        "flow_version_id": instance.flow_version_id,
        "subject_type": instance.subject_type, "subject_id": instance.subject_id,
        "unit": instance.unit.code, "initiator": state.get("initiator"),
        "status": instance.status, "revision": instance.revision,
        "current": list(state.get("current", ())), "data": instance.data,
        "created_at": _when(instance.created_at), "updated_at": _when(instance.updated_at),
        "ended_at": _when(instance.ended_at),
    }
    if full:
        out["tasks"] = list(state.get("tasks", ()))
        out["history"] = [{k: e.get(k) for k in ("seq", "action", "actor", "at", "node",
                                                 "detail")}
                          for e in state.get("history", ())]
        out["path"] = list(state.get("path", ()))
    if user is not None:
        able = available_actions(flows.spec_of(instance), FlowState.from_dict(state), user)
        out["available_actions"] = able.ordered()
        out["editable_fields"] = list(able.editable_fields)
        out["return_targets"] = list(able.return_targets)
        out["assignable"] = list(able.assignable)
    return out


def task_json(task: FlowTask) -> dict[str, Any]:
    return {"instance_id": task.instance_id, "task_id": task.task_id, "node": task.node,
            "status": task.status, "due_at": _when(task.due_at),
            "instance": instance_json(task.instance, full=False)}


def _visible(instance_id: int) -> FlowInstance:
    instance = db.session.get(FlowInstance, instance_id)
    principal = current_principal()
    if instance is None or principal is None or not flows.visible_to(
            instance, principal, current_user.username):
        raise ApiError(404, "not_found", f"no flow instance {instance_id}")
    return instance


@api_blueprint.get("/tasks")
@requires("flow.participate")
def my_tasks() -> Any:
    return jsonify({
        "tasks": [task_json(t) for t in flows.pending_tasks(db.session, current_user)],
        "started": [instance_json(i, full=False)
                    for i in flows.started_by(db.session, current_user)],
    })


@api_blueprint.get("/flows/<int:instance_id>")
@requires("flow.participate")
def flow_instance(instance_id: int) -> Any:
    return jsonify(instance_json(_visible(instance_id), user=current_user.username))


def _action(body: Any) -> tuple[Action, int | None]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected {"action": "approve", "comment": "..."}',
                       {"pointer": ""})
    kind = body.get("action")
    if kind not in ACTIONS:
        raise ApiError(422, "invalid_action", f"action must be one of {', '.join(ACTIONS)}",
                       {"pointer": "/action"})
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ApiError(422, "invalid_comment", f"comment is a text of at most {MAX_COMMENT} "
                       "characters", {"pointer": "/comment"})
    target = body.get("target")
    if target is not None and not isinstance(target, str):
        raise ApiError(422, "invalid_target", "target is a user name or a node id",
                       {"pointer": "/target"})
    position = body.get("position", "after")
    changes = body.get("changes", {})
    if not isinstance(changes, dict):
        raise ApiError(422, "invalid_changes", "changes is an object of field values",
                       {"pointer": "/changes"})
    revision = body.get("revision")
    if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
        raise ApiError(422, "invalid_revision", "revision is the integer the instance had",
                       {"pointer": "/revision"})
    return Action(kind, target=target, position=str(position), comment=comment.strip(),
                  changes=changes), revision


@api_blueprint.post("/flows/<int:instance_id>/actions")
@requires("flow.participate")
def flow_action(instance_id: int) -> Any:
    instance = _visible(instance_id)
    if current_user.username not in flows.participants(instance):
        raise ApiError(403, "forbidden", "only the initiator and the approvers act on this "
                       "instance")
    action, revision = _action(request.get_json(silent=True))
    done = flows.act(db.session, instance_id, current_user, action, revision=revision,
                     remote_addr=request.remote_addr)
    return jsonify(instance_json(db.session.get(FlowInstance, done.id, populate_existing=True),
                                 user=current_user.username))
