"""What-if twins of the what-if pages (web/whatif.py): recompute a unit's subtree with
other inputs and weights (within the what-if policy; nothing saved), and keep one as
evidence (an upload of the unit, for an appeal)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, g, jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import commands, uploads
from quotaflow.services import whatif as service


def _body() -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        body = {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected {"plan": id, "period": "2026Q4", '
                       '"inputs": {"<unit>": {"<field>": number}}, "weights": '
                       '{"<factor>": percent}} (every member optional)', {"pointer": ""})
    return body


def _request(body: Mapping[str, Any]) -> tuple[Any, dict[tuple[str, str], Any], dict[str, Any]]:
    """The plan and the what-if's inputs ((unit, field) -> value) and weights."""
    plan_id = body.get("plan")
    if plan_id is not None and (isinstance(plan_id, bool) or not isinstance(plan_id, int)):
        raise ApiError(422, "invalid_plan", "plan must be a plan id", {"pointer": "/plan"})
    period = body.get("period")
    if period is not None and not isinstance(period, str):
        raise ApiError(422, "invalid_period", "period must be a period code such as 2026Q4",
                       {"pointer": "/period"})
    raw_inputs = body.get("inputs") or {}
    if not isinstance(raw_inputs, dict) or not all(isinstance(v, dict)
                                                   for v in raw_inputs.values()):
        raise ApiError(422, "invalid_inputs", 'inputs must map unit codes to '
                       '{"<field>": value}', {"pointer": "/inputs"})
    weights = body.get("weights") or {}
    if not isinstance(weights, dict):
        raise ApiError(422, "invalid_weights", 'weights must map factor keys to percents',
                       {"pointer": "/weights"})
    inputs = {(str(unit), str(name)): value for unit, fields in raw_inputs.items()
              for name, value in fields.items()}
    plan = service.chosen_plan(request_context(), plan_id, period)
    return plan, inputs, {str(k): v for k, v in weights.items()}


@api_blueprint.post("/whatif/<code>")
@requires("plan.whatif", "plan.whatif")
def run_whatif(code: str) -> Any:
    """The re-allocated subtree for the posted inputs and weights; nothing is saved."""
    plan, inputs, weights = _request(_body())
    box = service.sandbox(request_context(), g.unit, plan, inputs=inputs, weights=weights)
    snap = service.snapshot(box)
    del snap["created_at"], snap["created_by"]
    snap["kind"] = "whatif"
    snap["weights_changed"] = box.weights_changed
    snap["clipped"] = [{"unit": c.unit, "field": c.field, "asked": c.asked, "value": c.value}
                       for c in box.changes if c.clipped]
    snap["infeasible"] = list(box.infeasible)
    return jsonify(snap)


@api_blueprint.post("/whatif/<code>/snapshot")
@requires("plan.whatif", "plan.whatif")
def snapshot_whatif(code: str) -> Any:
    """Keep the posted what-if as evidence: an upload of the unit (its id goes with an appeal)."""
    plan, inputs, weights = _request(_body())
    upload = commands.whatif_snapshot(request_context(), g.unit, plan, inputs=inputs,
                                      weights=weights,
                                      storage_dir=uploads.storage_dir(current_app.instance_path))
    response = jsonify({"upload_id": upload.id, "unit": code, "plan": plan.id,
                        "filename": upload.original_name, "sha256": upload.sha256})
    response.status_code = 201
    return response
