"""Read twins of pages: a period's alignment figures, the HR export, a plan's .xlsx, the
target simulator's scenarios and the appeal form's live range check. Each calls what the
page calls, with the page's permission."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from typing import Any

from flask import g, jsonify, request, send_file
from flask_babel import force_locale

from quotaflow.api import api_blueprint, caller_locale
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.http.hr_texts import export_texts
from quotaflow.http.plan_workbook import plan_workbook
from quotaflow.services import alignment as alignment_service
from quotaflow.services import appeal_check as appeal_checks
from quotaflow.services import confirmation_reads, hr_export, plan_reads, simulator
from quotaflow.services import dashboards as dashboard_service
from quotaflow.services import periods as period_service
from quotaflow.services import units as unit_service


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"


def _lang() -> str:
    return "zh" if caller_locale().startswith("zh") else "en"


@api_blueprint.get("/confirm/alignment")
@requires("alignment.read")
def alignment() -> Any:
    """How far the period's targets are agreed (the alignment page's figures)."""
    ctx = request_context()
    period, _periods = period_service.chosen_period(ctx, request.args.get("period"))
    stats = alignment_service.period_alignment(ctx, period)
    plan = plan_reads.published_plan(ctx, period.id)
    return jsonify({
        "period": period.code,
        "plan": None if plan is None else {"id": plan.id, "number": plan.number},
        "published_at": _iso(stats.published_at), "aligned_at": _iso(stats.aligned_at),
        "elapsed_seconds": None if stats.elapsed is None else stats.elapsed.total_seconds(),
        "levels": [dataclasses.asdict(level) for level in stats.levels],
        "appeals_by_status": stats.appeals_by_status, "letters": stats.letters,
        "appeals": [{"id": a.id, "unit": a.unit.code, "level": a.level,
                     "allocated": a.allocated, "requested": a.requested,
                     "approved": a.approved, "status": a.status,
                     "submitted_at": _iso(a.submitted_at), "decided_at": _iso(a.decided_at)}
                    for a in confirmation_reads.period_appeals(ctx, period.id)],
    })


@api_blueprint.get("/hr/export")
@requires("hr.export")
def hr_targets() -> Any:
    """The HR export of the period's latest published plan (rows within the caller's
    scope): JSON, or ?format=csv|xlsx for the page's file."""
    fmt = request.args.get("format", "json")
    if fmt != "json" and fmt not in hr_export.FORMATS:
        raise hr_export.HrExportError("bad_format", format=fmt,
                                      known=", ".join(("json", *hr_export.FORMATS)))
    ctx = request_context()
    period, _periods = period_service.chosen_period(ctx, request.args.get("period"))
    with force_locale(caller_locale()):
        export = hr_export.build_export(ctx, period.code, lang=_lang(),
                                        texts=export_texts(),
                                        paths=ctx.principal.scope_paths("unit.read"))
    if fmt == "json":
        return jsonify({"period": export.period.code,
                        "plan": {"id": export.plan.id, "number": export.plan.number},
                        "header": export.header, "rows": export.rows,
                        "target_column": export.target_column,
                        "target_total": export.target_total})
    return send_file(io.BytesIO(hr_export.render(export, fmt)), as_attachment=True,
                     download_name=export.filename(fmt), mimetype=hr_export.MIMETYPES[fmt],
                     max_age=0)


@api_blueprint.get("/plans/<int:plan_id>/export.xlsx")
@requires("unit.read")
def plan_export(plan_id: int) -> Any:
    """The plan page's .xlsx: a summary sheet and the units within the caller's scope."""
    plan = plan_reads.plan(request_context(), plan_id)
    with force_locale(caller_locale()):
        data, name = plan_workbook(plan)
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name, max_age=0,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@api_blueprint.post("/plans/simulate")
@requires("plan.create")
def simulate() -> Any:
    """Every scenario for a period and company total, as the simulator shows them
    (regions within the caller's scope). Nothing is saved."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected {"period": "2026Q4", "total": number}',
                       {"pointer": ""})
    period = body.get("period")
    if period is not None and not isinstance(period, str):
        raise ApiError(422, "invalid_period", "period must be a period code such as 2026Q4",
                       {"pointer": "/period"})
    if "total" not in body or isinstance(body["total"], str | bool):
        raise ApiError(422, "bad_total", "total must be a positive number of yuan",
                       {"pointer": "/total"})
    ctx = request_context()
    chosen, _periods = period_service.chosen_period(ctx, period)
    sim, cards = simulator.scenarios(ctx, chosen, body["total"])
    for card in cards:
        del card["flagged"]  # the regions' risks, again
        for region in card["regions"]:
            del region["unit_id"]
    return jsonify({"period": chosen.code, "total": sim.total, "scenarios": cards})


@api_blueprint.get("/confirm/appeal-check")
@requires("unit.confirm")
def appeal_check() -> Any:
    """The appeal form's live check: the caller's item's range, and whether ``requested``
    fits it (an error names the rule, in the caller's language)."""
    raw = request.args.get("item", "")
    if not raw.isdigit():
        raise ApiError(400, "invalid_parameter", "item must be a confirmation item id",
                       {"parameter": "item"})
    check = appeal_checks.appeal_check(request_context(), int(raw),
                                       request.args.get("requested", ""))
    error = None
    if check.error is not None:
        error = {"code": check.error.code, "message": check.error.localized(caller_locale()),
                 "details": check.error.details()}
    return jsonify({"item": int(raw), "bounds": dataclasses.asdict(check.bounds),
                    "requested": check.requested, "change": check.change,
                    "ok": check.error is None and check.requested is not None,
                    "error": error})


def _week() -> int | None:
    raw = request.args.get("week", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise ApiError(400, "invalid_parameter", "week must be a whole number",
                       {"parameter": "week"})
    return int(raw)


def _unit_dashboard(unit: Any) -> Any:
    ctx = request_context()
    period, _periods = period_service.chosen_period(ctx, request.args.get("period"))
    view = dashboard_service.unit_dashboard(
        ctx, period, unit, week=_week(), curve_code=request.args.get("curve") or None,
        with_alignment=ctx.principal.has("alignment.read"))
    if view.get("status") == "bad_week":
        raise ApiError(404, "not_found", "the period has no such week", {"parameter": "week"})
    return jsonify(view)


@api_blueprint.get("/dashboard")
@requires("unit.read")
def dashboard() -> Any:
    """The caller's own dashboard (as /dashboard opens it): operations for admins and
    HRBPs, else the dashboard of the unit of their most senior grant."""
    ctx = request_context()
    home = dashboard_service.home(ctx.principal)
    if home is None:
        raise ApiError(403, "forbidden", "you hold no grant")
    kind, code = home
    if kind == "operations":
        principal = ctx.principal
        return jsonify({"kind": "operations", **dashboard_service.operations(
            ctx, principal.scope_paths("unit.read"),
            flows=principal.has("flow.oversee"), outbox=principal.has("outbox.read"))})
    return _unit_dashboard(unit_service.unit_by_code(ctx, code))


@api_blueprint.get("/dashboard/units/<code>")
@requires("unit.read")
def unit_dashboard(code: str) -> Any:
    """The dashboard of a unit within the caller's scope (executive, region, team or
    person view, by the unit's depth)."""
    return _unit_dashboard(g.unit)
