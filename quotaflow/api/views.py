"""API routes. Each declares its permission; the guard enforces it (see http/guard.py)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from flask_login import current_user

from quotaflow.api import api_blueprint
from quotaflow.api.openapi import openapi_document
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import current_principal, public, requires
from quotaflow.http.input_texts import pending_message
from quotaflow.services import commands
from quotaflow.services import org as org_service
from quotaflow.services import periods as period_service
from quotaflow.services import units as unit_service

AUDIT_PAGE_SIZE = 100


def unit_json(unit: Any) -> dict[str, Any]:
    return {
        "code": unit.code,
        "parent": unit.parent.code if unit.parent else None,
        "level": unit.level.key,
        "name_en": unit.name_en,
        "name_zh": unit.name_zh,
        "city_en": unit.city_en,
        "city_zh": unit.city_zh,
        "opened": unit.opened,
    }


def _period_arg(code: str | None) -> Any:
    """The period named in the request (default: the planning period); 404 when unknown."""
    return period_service.period(request_context(), code)


@api_blueprint.get("/openapi.json")
@public
def openapi() -> Any:
    return jsonify(openapi_document())


@api_blueprint.get("/me")
@requires("unit.read")
def me() -> Any:
    principal = current_principal()
    return jsonify({
        "username": current_user.username,
        "display_name": current_user.display_name,
        "locale": current_user.locale,
        "grants": [{"role": gr.role, "unit": gr.unit_code} for gr in principal.grants],
    })


@api_blueprint.get("/periods")
@requires("unit.read")
def periods() -> Any:
    return jsonify({"periods": [
        {"code": p.code, "start": p.start_date.isoformat(), "end": p.end_date.isoformat(),
         "weeks": [{"week": w.week_no, "iso_year": w.iso_year, "iso_week": w.iso_week,
                    "start": w.start_date.isoformat(), "end": w.end_date.isoformat()} for w in p.weeks]}
        for p in period_service.periods(request_context())
    ]})


@api_blueprint.route("/planning-period", methods=["GET", "PUT"])
@requires("unit.read", write="period.plan")
def planning_period() -> Any:
    """The company's planning period (what a request without ``period`` plans for); PUT
    chooses it (admin, HRBP; audited)."""
    ctx = request_context()
    if request.method == "PUT":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("period"), str):
            raise ApiError(400, "invalid_body", 'expected {"period": "<code>"}', {"pointer": "/period"})
        period_service.set_planning_period(ctx, body["period"])
    return jsonify(period_service.planning_choice(ctx))


@api_blueprint.get("/units")
@requires("unit.read")
def units() -> Any:
    """The tops of the caller's scope."""
    return jsonify({"units": [unit_json(u) for u in unit_service.scope_roots(request_context())]})


@api_blueprint.get("/units/<code>")
@requires("unit.read")
def unit(code: str) -> Any:
    return jsonify(unit_json(g.unit))


@api_blueprint.get("/units/<code>/children")
@requires("unit.read")
def unit_children(code: str) -> Any:
    return jsonify({"units": [unit_json(u) for u in unit_service.children(request_context(), g.unit)]})


@api_blueprint.route("/units/<code>/attributes", methods=["GET", "PUT"])
@requires("unit.read", write="unit.write")
def unit_attributes(code: str) -> Any:
    if request.method == "GET":
        period = _period_arg(request.args.get("period"))
        return jsonify({"unit": code, "period": period.code,
                        "values": unit_service.attributes(request_context(), g.unit, period.id)})
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("values"), dict):
        raise ApiError(400, "invalid_body", 'expected {"period": "...", "values": {"name": number}}',
                       {"pointer": "/values"})
    period = _period_arg(body.get("period"))
    try:
        values = org_service.parse_values(body["values"])
    except org_service.InputError as exc:
        raise ApiError(422, "invalid_value", exc.message, {"pointer": exc.where}) from None
    try:
        saved = commands.set_attributes(request_context(), g.unit, period, values, source="api")
    except org_service.InputCheckError as exc:
        raise ApiError(422, "invalid_value", exc.message, exc.details()) from None
    if saved.pending:
        # The values are unchanged: the changes wait in an input change request.
        return jsonify({"unit": code, "period": period.code, "values": saved.values,
                        "status": "pending_approval", "flow_id": saved.pending_flow_id,
                        "message": pending_message(saved.pending_flow_id)}), 202
    return jsonify({"unit": code, "period": period.code, "values": saved.values,
                    "status": "applied"})


@api_blueprint.get("/units/<code>/history")
@requires("unit.read")
def unit_history(code: str) -> Any:
    return jsonify({"unit": code, "results": [
        {"period": period, "metric": metric, "value": value}
        for period, metric, value in unit_service.history(request_context(), g.unit)
    ]})


@api_blueprint.get("/audit")
@requires("audit.read")
def audit() -> Any:
    page = max(0, request.args.get("page", 0, type=int))
    entries = unit_service.audit_page(request_context(), page, AUDIT_PAGE_SIZE)
    return jsonify({"page": page, "entries": [
        {"id": e.id, "at": e.at.isoformat() + "Z", "actor": e.actor_name, "action": e.action,
         "entity_type": e.entity_type, "entity_id": e.entity_id, "before": e.before, "after": e.after}
        for e in entries
    ]})
