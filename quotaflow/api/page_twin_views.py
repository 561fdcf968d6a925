"""API twins of the page actions that had none: the factor builder's expression check
and weights (web/builder.py), a unit's inputs form (web/collect.py, pinned to its form
version), a plan's impact preview under another factor model (web/plans.py), the unit
picker's search (web/pages.py) and the what-if page's people rows (web/whatif.py).

Each calls the same use case as its page; this module only reads JSON and writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import g, jsonify, request

from quotaflow.api import api_blueprint, caller_locale
from quotaflow.api.spec_views import version_json
from quotaflow.api.views import unit_json
from quotaflow.errors import NotFound
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.http.input_texts import pending_message
from quotaflow.services import factor_builder as fb
from quotaflow.services import forms as forms_service
from quotaflow.services import periods as period_service
from quotaflow.services import plan_reads
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service
from quotaflow.services import whatif as whatif_service

MAX_NOTE = 500
FIELD_TYPES = frozenset(fb.EXPRESSION_TYPES)


def _object_body(expected: str) -> Mapping[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", f"expected {expected}", {"pointer": ""})
    return body


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- the factor builder --------------------------------------------------------------------


def _new_fields(raw: Any) -> list[dict[str, Any]]:
    """The input fields a factor being written would add (the page's new-field rows)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError(422, "invalid_fields", "new_fields is a list of new input fields",
                       {"pointer": "/new_fields"})
    fields = []
    for i, field in enumerate(raw):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str):
            raise ApiError(422, "invalid_fields", 'a new field is {"name": "...", "type": '
                           '"number"}', {"pointer": f"/new_fields/{i}"})
        kind = field.get("type", "number")
        if kind not in FIELD_TYPES:
            raise ApiError(422, "invalid_fields", "type is one of " + ", ".join(sorted(FIELD_TYPES)),
                           {"pointer": f"/new_fields/{i}/type"})
        for key in ("min", "max", "default"):
            if key in field and not _number(field[key]) and not isinstance(field[key], bool):
                raise ApiError(422, "invalid_fields", f"{key} is a number",
                               {"pointer": f"/new_fields/{i}/{key}"})
        fields.append({**field, "type": kind})
    return fields


def _preview_json(preview: fb.ExpressionPreview) -> dict[str, Any]:
    error = preview.error
    return {
        "valid": error is None,
        "error": None if error is None else {
            "code": error.code, "message": str(error), "column": getattr(error, "column", None)},
        "level": preview.level,
        "samples": [{"code": s.code, "name_en": s.name_en, "name_zh": s.name_zh, "value": s.value}
                    for s in preview.samples],
        "summary": preview.summary,
        "defaulted": preview.defaulted,
    }


@api_blueprint.post("/builder/check")
@requires("spec.write")
def builder_check() -> Any:
    """Check a factor's measure expression and run it over one level's units."""
    body = _object_body('{"expression": "...", "level": 2, "new_fields": [...]}')
    text = body.get("expression")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "invalid_expression", "expression is the text of an expression",
                       {"pointer": "/expression"})
    level = body.get("level", 2)
    if isinstance(level, bool) or not isinstance(level, int) or level < 0:
        raise ApiError(422, "invalid_level", "level is a level depth (0 is the company)",
                       {"pointer": "/level"})
    preview = fb.check_expression(request_context(), text.strip(), level,
                                  _new_fields(body.get("new_fields")))
    return jsonify(_preview_json(preview))


@api_blueprint.post("/builder/weights")
@requires("spec.write")
def builder_weights() -> Any:
    """Set every factor's weight (totalling 100) as a new draft of the factor model."""
    body = _object_body('{"weights": {"<factor>": percent}, "note": "..."}')
    weights = body.get("weights")
    if not isinstance(weights, dict):
        raise ApiError(422, "invalid_weights", "weights maps each factor key to a percent",
                       {"pointer": "/weights"})
    for key, value in weights.items():
        if not _number(value):
            raise ApiError(422, "invalid_weights", "a weight is a number",
                           {"pointer": f"/weights/{key}"})
    note = body.get("note", "Weights rebalanced")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ApiError(422, "invalid_note", f"note is text of at most {MAX_NOTE} characters",
                       {"pointer": "/note"})
    saved = fb.save_weights(request_context(), {str(k): float(v) for k, v in weights.items()}, note)
    response = jsonify(version_json(saved, content=True))
    response.status_code = 201
    return response


def _save_factor(key: str | None) -> Any:
    body = _object_body('{"key": "...", "label_zh": "...", "label_en": "...", "expression": '
                        '"...", "normalisation": "share", "weight": 10, "new_fields": [...]}')
    for name in (*fb.FACTOR_TEXTS, "normalisation", "note"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ApiError(422, "invalid_factor", f"{name} is text", {"pointer": f"/{name}"})
    if key is None and not str(body.get("key") or "").strip():
        raise ApiError(422, "invalid_factor", "a new factor needs a key", {"pointer": "/key"})
    weight = body.get("weight")
    if not _number(weight):
        raise ApiError(422, "invalid_factor", "weight is a percent between 0 and 100",
                       {"pointer": "/weight"})
    rebalance = body.get("rebalance", True)
    if not isinstance(rebalance, bool):
        raise ApiError(422, "invalid_factor", "rebalance is true or false",
                       {"pointer": "/rebalance"})
    note = body.get("note") or ""
    if len(note) > MAX_NOTE:
        raise ApiError(422, "invalid_note", f"note is text of at most {MAX_NOTE} characters",
                       {"pointer": "/note"})
    typed = {name: body.get(name) for name in (*fb.FACTOR_TEXTS, "normalisation")}
    saved = fb.save_factor(request_context(), key, typed, float(weight),
                           _new_fields(body.get("new_fields")), rebalance_others=rebalance, note=note)
    response = jsonify(version_json(saved, content=True))
    response.status_code = 201
    return response


@api_blueprint.post("/builder/factors")
@requires("spec.write")
def builder_add_factor() -> Any:
    """Add a factor (and any new input fields) as a new draft of the factor model."""
    return _save_factor(None)


@api_blueprint.put("/builder/factors/<key>")
@requires("spec.write")
def builder_edit_factor(key: str) -> Any:
    """Rewrite factor ``key`` and its weight as a new draft of the factor model."""
    return _save_factor(key)


# -- a unit's inputs form --------------------------------------------------------------------


def _period(code: str | None, pointer: str) -> Any:
    """The period named (else the planning period); an unknown code is a 404 at ``pointer``."""
    try:
        return period_service.chosen_period(request_context(), code)[0]
    except NotFound:
        raise NotFound("not_found", pointer) from None


def _form_json(unit: Any, period: Any, version: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    return {"unit": unit.code, "period": period.code, "form_version": version.version,
            "fields": sorted(forms_service.field_names(version.content)), "values": dict(values)}


@api_blueprint.get("/collect")
@requires("unit.write")
def collect_units() -> Any:
    """The units the caller fills in inputs for, with how complete each one is."""
    ctx = request_context()
    listed = forms_service.collect_list(ctx, _period(request.args.get("period"), "/period"))
    return jsonify({
        "period": listed.period.code,
        "form_version": listed.version.version if listed.version is not None else None,
        "units": [{"code": p.unit.code, "level": p.unit.level.key, "name_en": p.unit.name_en,
                   "name_zh": p.unit.name_zh, "filled": p.filled, "total": p.total,
                   "missing_required": p.missing_required, "complete": p.complete}
                  for p in listed.progress]})


@api_blueprint.get("/collect/<code>")
@requires("unit.write")
def collect_form(code: str) -> Any:
    """The unit's inputs form: its version (to pin a submission to) and current values."""
    ctx = request_context()
    version = forms_service.collected_form(ctx, g.unit)
    period = _period(request.args.get("period"), "/period")
    values = forms_service.current_inputs(ctx, version.content, g.unit, period)
    return jsonify(_form_json(g.unit, period, version, values))


@api_blueprint.post("/collect/<code>")
@requires("unit.write")
def submit_collect_form(code: str) -> Any:
    """Save the unit's inputs form, filled against ``form_version`` (409 when stale)."""
    body = _object_body('{"form_version": 3, "values": {"<field>": value}}')
    pinned = body.get("form_version")
    if isinstance(pinned, bool) or not isinstance(pinned, int):
        raise ApiError(422, "invalid_form_version", "form_version is the version the values "
                       "were filled in against (GET /collect/{code})", {"pointer": "/form_version"})
    values = body.get("values")
    if not isinstance(values, dict):
        raise ApiError(422, "invalid_values", 'values maps field names to values',
                       {"pointer": "/values"})
    raw_period = body.get("period")
    if raw_period is not None and not isinstance(raw_period, str):
        raise ApiError(422, "invalid_period", "period is a period code such as 2026Q4",
                       {"pointer": "/period"})
    period = _period(raw_period, "/period")
    ctx = request_context()
    version = forms_service.collected_form(ctx, g.unit)
    known = forms_service.field_names(version.content)
    for name, value in values.items():
        if name not in known:
            raise ApiError(422, "unknown_field", f"the form has no field {name!r}",
                           {"pointer": f"/values/{name}"})
        if isinstance(value, dict | list):
            raise ApiError(422, "invalid_values", "a value is a number, text, true/false or null",
                           {"pointer": f"/values/{name}"})
    items = {name: value for name, value in values.items() if value is not None}
    try:
        submission = forms_service.submit_unit_form(ctx, g.unit, period, pinned, items)
    except forms_service.FormRefused as refused:
        if not refused.field_errors:
            raise
        locale = caller_locale()
        issues = [{"pointer": "/values" + where, "code": error.code,
                   "message": forms_service.field_message(error, locale)}
                  for where, error in refused.field_errors.items()]
        raise ApiError(422, refused.code, refused.localized(locale),
                       {"pointer": issues[0]["pointer"], "issues": issues}) from None
    if submission.pending:
        # Published plan: the values are unchanged and wait in an input change request.
        flow_id = submission.saved.pending_flow_id
        response = jsonify({**_form_json(g.unit, period, version,
                                         forms_service.current_inputs(ctx, version.content,
                                                                      g.unit, period)),
                            "submission": submission.submission.id,
                            "status": "pending_approval", "flow_id": flow_id,
                            "message": pending_message(flow_id)})
        response.status_code = 202
        return response
    response = jsonify({**_form_json(g.unit, period, version, submission.submission.data),
                        "submission": submission.submission.id, "status": "applied"})
    response.status_code = 201
    return response


# -- a plan's impact preview -------------------------------------------------------------------


def _impact_json(row: plan_service.RegionImpact) -> dict[str, Any]:
    return {"code": row.code, "name_en": row.name_en, "name_zh": row.name_zh,
            "old_target": row.old_target, "new_target": row.new_target, "delta": row.delta,
            "delta_pct": row.delta_pct}


@api_blueprint.get("/plans/<int:plan_id>/impact")
@requires("spec.read")
def plan_impact(plan_id: int) -> Any:
    """The plan recomputed under another factor-model version, region by region."""
    version_id = request.args.get("model_version", type=int)
    if version_id is None:
        raise ApiError(400, "invalid_query", "model_version is a factor-model version id",
                       {"pointer": "/model_version"})
    ctx = request_context()
    plan = plan_reads.plan(ctx, plan_id)
    preview = plan_service.impact_of_model(ctx, plan, version_id)
    return jsonify({"plan": preview.plan_id, "model_version": version_id,
                    "scenario": preview.scenario, "company": _impact_json(preview.company),
                    "regions": [_impact_json(r) for r in preview.regions],
                    "old_factors": preview.old_factors, "new_factors": preview.new_factors})


# -- the unit picker's search ---------------------------------------------------------------


@api_blueprint.get("/units/search")
@requires("unit.read")
def search_units() -> Any:
    """Units in the caller's scope whose code or names hold ``q``."""
    return jsonify({"units": [unit_json(u) for u in
                              unit_service.search(request_context(), request.args.get("q", ""))]})


# -- the what-if pages ----------------------------------------------------------------------


@api_blueprint.get("/whatif")
@requires("plan.whatif")
def whatif_units() -> Any:
    """The units the caller may run a what-if on (their regions; company scope: all)."""
    return jsonify({"units": [unit_json(u) for u in unit_service.whatif_units(request_context())]})


# -- the what-if page's people rows -----------------------------------------------------------


@api_blueprint.get("/whatif/<code>/people")
@requires("plan.whatif")
def whatif_people(code: str) -> Any:
    """One team's people as what-if input rows: each field's value and its limits."""
    team = request.args.get("team", "")
    if not team:
        raise ApiError(400, "invalid_query", "team is the code of a team below the unit",
                       {"pointer": "/team"})
    raw_plan = request.args.get("plan", "")
    if raw_plan and not raw_plan.isdigit():
        raise ApiError(400, "invalid_query", "plan is a plan id", {"pointer": "/plan"})
    ctx = request_context()
    plan = whatif_service.chosen_plan(ctx, int(raw_plan) if raw_plan else None,
                                      request.args.get("period"))
    people = whatif_service.team_people(ctx, g.unit, plan, team)
    return jsonify({"unit": code, "plan": plan.id, "team": people.team,
                    "fields": [{"name": f.name, "type": f.type, "label_en": f.label_en,
                                "label_zh": f.label_zh} for f in people.fields],
                    "people": people.rows})
