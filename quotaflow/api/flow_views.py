"""Approval-flow routes of the API: my tasks, one instance, and acting on it.

Anyone signed in may list their own tasks (``flow.participate``); an instance is
visible to its initiator, its approvers, those its notify nodes name and overseers
(``flow.oversee``) of its unit, and looks absent (404) to everyone else.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.flows import Action, FlowState, available_actions
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import flow_reads, flows

ACTIONS = ("approve", "reject", "return", "transfer", "add_approver", "comment", "urge",
           "withdraw", "edit", "submit")
MAX_COMMENT = 2000


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def instance_json(instance: Any, *, full: bool = True,
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


def task_json(task: Any) -> dict[str, Any]:
    return {"instance_id": task.instance_id, "task_id": task.task_id, "node": task.node,
            "status": task.status, "due_at": _when(task.due_at),
            "instance": instance_json(task.instance, full=False)}


@api_blueprint.get("/tasks")
@requires("flow.participate")
def my_tasks() -> Any:
    tasks, started, _overseen = flow_reads.my_lists(request_context())
    return jsonify({
        "tasks": [task_json(t) for t in tasks],
        "started": [instance_json(i, full=False) for i in started],
    })


@api_blueprint.get("/flows/<int:instance_id>")
@requires("flow.participate")
def flow_instance(instance_id: int) -> Any:
    ctx = request_context()
    return jsonify(instance_json(flow_reads.visible_instance(ctx, instance_id), user=ctx.username))


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
    ctx = request_context()
    instance = flow_reads.visible_instance(ctx, instance_id)
    if ctx.username not in flows.participants(instance):
        raise ApiError(403, "forbidden", "only the initiator and the approvers act on this "
                       "instance")
    action, revision = _action(request.get_json(silent=True))
    flow_reads.act(ctx, instance_id, action, revision=revision)
    return jsonify(instance_json(flow_reads.visible_instance(ctx, instance_id, fresh=True),
                                 user=ctx.username))
