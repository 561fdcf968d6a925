"""Plan routes of the API: create a plan, list plans, read one (rows within the
caller's scope) and one unit's explanation. The guard enforces each permission."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.errors import NotFound
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import commands, periods, plan_reads
from quotaflow.services import plans as plan_service
from quotaflow.services.plan_data import PlanError

ROWS_DEFAULT_LIMIT = 1000
ROWS_MAX_LIMIT = 10000


def plan_json(plan: Any) -> dict[str, Any]:
    """A plan's header: no unit figures besides the company totals."""
    summary = plan.summary or {}
    return {
        "id": plan.id, "number": plan.number, "period": plan.period.code,
        "scenario": plan.scenario, "scenario_label_en": summary.get("label_en"),
        "scenario_label_zh": summary.get("label_zh"), "status": plan.status,
        "company_total": plan.company_total,
        "requested_total": summary.get("requested_total", plan.company_total),
        "planned_total": plan.planned_total, "note": plan.note,
        "created_by": plan.created_by.username if plan.created_by else None,
        "created_at": plan.created_at.isoformat() + "Z",
        "spec_versions": {"factor_model": plan.model_version_id,
                          "scenario_presets": plan.presets_version_id,
                          "risk_rules": plan.risks_version_id},
    }


def _plan(plan_id: int) -> Any:
    return plan_reads.plan(request_context(), plan_id)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number",
                       {"parameter": name}) from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}",
                       {"parameter": name})
    return value


@api_blueprint.post("/plans")
@requires("plan.create")
def create_plan() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body",
                       'expected {"period": "2026Q4", "scenario": "...", "total": number}',
                       {"pointer": ""})
    ctx = request_context()
    code = body.get("period")
    try:
        period = periods.period(ctx, code if isinstance(code, str) or code is None
                                else str(code))
    except NotFound:
        raise ApiError(422, "unknown_period", f"unknown period {code!r}",
                       {"pointer": "/period",
                        "known": [p.code for p in periods.periods(ctx)]}) from None
    scenario = body.get("scenario")
    if not isinstance(scenario, str) or not scenario:
        raise ApiError(422, "invalid_scenario", "scenario must be a scenario key such as "
                       '"balanced"', {"pointer": "/scenario"})
    if "total" not in body or isinstance(body["total"], str):
        raise ApiError(422, "bad_total", "total must be a positive number of yuan",
                       {"pointer": "/total"})
    note = body.get("note", "")
    if note is not None and not isinstance(note, str):
        raise ApiError(422, "invalid_note", "note must be a string", {"pointer": "/note"})
    plan = commands.create_plan(ctx, period, scenario, body["total"], note)
    paths = plan_service.scope_paths(ctx)
    response = jsonify({**plan_json(plan),
                        "summary": plan_service.summary_for_scope(ctx, plan, paths)})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/plans/{plan.id}"
    return response


@api_blueprint.get("/plans")
@requires("unit.read")
def list_plans() -> Any:
    ctx = request_context()
    code = request.args.get("period")
    period_id = None if code is None else periods.period(ctx, code).id
    return jsonify({"plans": [plan_json(p) for p in plan_reads.plans(ctx, period_id)]})


@api_blueprint.get("/plans/<int:plan_id>")
@requires("unit.read")
def get_plan(plan_id: int) -> Any:
    ctx = request_context()
    plan = _plan(plan_id)
    paths = plan_service.scope_paths(ctx)
    offset = _int_arg("offset", 0, 0, 10**9)
    limit = _int_arg("limit", ROWS_DEFAULT_LIMIT, 1, ROWS_MAX_LIMIT)
    total = plan_service.count_scope_rows(ctx, plan)
    units = plan_service.unit_records(ctx, plan, paths, offset=offset, limit=limit)
    return jsonify({
        **plan_json(plan),
        "summary": plan_service.summary_for_scope(ctx, plan, paths),
        "factors": [f["key"] for f in plan.model_version.content["factors"]],
        "units_total": total, "offset": offset, "limit": limit,
        "next_offset": offset + len(units) if offset + len(units) < total else None,
        "units": units,
    })


@api_blueprint.get("/plans/<int:plan_id>/units/<code>")
@requires("unit.read")
def get_plan_unit(plan_id: int, code: str) -> Any:
    plan = _plan(plan_id)
    try:
        explanation = plan_reads.explanation(request_context(), plan, g.unit)
    except PlanError as exc:
        raise ApiError(404, "not_found", exc.message, {"unit": code}) from None
    return jsonify(explanation)


@api_blueprint.post("/plans/<int:plan_id>/publish")
@requires("plan.publish")
def publish_plan(plan_id: int) -> Any:
    """Publish a draft plan: the regions are asked to confirm their targets."""
    ctx = request_context()
    plan = commands.publish_plan(ctx, plan_reads.plan(ctx, plan_id))
    return jsonify(plan_json(plan))


@api_blueprint.get("/plans/<int:plan_id>/diff")
@requires("unit.read")
def plan_diff(plan_id: int) -> Any:
    """Each unit's target in this plan and in ``against`` (default: the one it was based
    on), changed units first, within the caller's scope."""
    against = _int_arg("against", 0, 0, 2**62) or None
    limit = _int_arg("limit", ROWS_DEFAULT_LIMIT, 1, ROWS_MAX_LIMIT)
    found = plan_service.compare_plans(request_context(), plan_id, against, limit=limit)
    return jsonify({
        "plan": plan_json(found.new), "against": plan_json(found.old),
        "units_total": found.total, "units_changed": found.changed,
        "units": [{"code": r.unit.code, "name_en": r.unit.name_en, "name_zh": r.unit.name_zh,
                   "old": r.old, "new": r.new, "change": r.change,
                   "change_pct": r.change_pct} for r in found.rows],
        "versions": [{"id": p.id, "number": p.number, "status": p.status}
                     for p in found.versions],
    })
