"""Emergency recomputes in the API (plan.emergency: admins, HR, executives): the requests
of a period, a preview, a request, one request. Approving is a flow action: an executive
approves the request's flow instance (POST /flows/{flow_instance_id}/actions with
{"action": "approve"}), as on the task page; the new plan version is then published.
The twins of the /emergency pages, calling the same use cases (services/emergency.py)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import commands, emergency_reads, periods


#: HTTP status per emergency refusal (the rest: 422, the input).
def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def recompute_json(found: Any) -> dict[str, Any]:
    summary = dict(found.summary or {})
    return {"id": found.id, "period": found.period.code, "plan_id": found.plan_id,
            "cities": list(found.cities or []), "units": list(found.unit_codes or []),
            "frozen_count": len(found.frozen or []), "total": found.total,
            "reason": found.reason, "status": found.status,
            "flow_instance_id": found.flow_instance_id,
            "result_plan_id": found.result_plan_id,
            "requested_by": found.requested_by.username if found.requested_by else None,
            "requested_at": _when(found.requested_at), "decided_at": _when(found.decided_at),
            "preview": summary.get("preview"), "result": summary.get("result")}


def _choices() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected {"period": "2026Q4", "cities": [...], '
                       '"units": [...], "total": number, "reason": "..."}', {"pointer": ""})
    for name in ("cities", "units"):
        value = body.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(422, f"invalid_{name}", f"{name} is a list of texts",
                           {"pointer": f"/{name}"})
    period = body.get("period")
    if period is not None and not isinstance(period, str):
        raise ApiError(422, "invalid_period", "period is a period code such as 2026Q4",
                       {"pointer": "/period"})
    return body


@api_blueprint.get("/emergency")
@requires("plan.emergency")
def list_recomputes() -> Any:
    ctx = request_context()
    code = request.args.get("period") or None
    found = emergency_reads.requests(ctx, periods.period(ctx, code).id if code else None)
    return jsonify({"requests": [recompute_json(r) for r in found],
                    "cities": [{"en": en, "zh": zh} for en, zh in emergency_reads.cities(ctx)]})


@api_blueprint.post("/emergency/preview")
@requires("plan.emergency")
def preview_recompute() -> Any:
    """The recompute as it would be published now; nothing is saved."""
    body = _choices()
    ctx = request_context()
    found = emergency_reads.preview(
        ctx, periods.period(ctx, body.get("period")), cities=body.get("cities"),
        unit_codes=body.get("units"), total=body.get("total"))
    return jsonify(found.as_summary())


@api_blueprint.post("/emergency")
@requires("plan.emergency")
def request_recompute() -> Any:
    """Request a recompute: it waits for an executive's approval (a flow action)."""
    body = _choices()
    ctx = request_context()
    made = commands.request_emergency(
        ctx, periods.period(ctx, body.get("period")), reason=body.get("reason"),
        cities=body.get("cities"), unit_codes=body.get("units"), total=body.get("total"))
    response = jsonify(recompute_json(made))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/emergency/{made.id}"
    return response


@api_blueprint.get("/emergency/<int:request_id>")
@requires("plan.emergency")
def get_recompute(request_id: int) -> Any:
    found, _instance = emergency_reads.request_detail(request_context(), request_id)
    return jsonify(recompute_json(found))
