"""API routes. Each declares its permission; the guard enforces it (see http/guard.py)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from flask_login import current_user

from quotaflow.api import api_blueprint
from quotaflow.api.openapi import openapi_document
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import current_principal, public, requires
from quotaflow.services import org as org_service
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import OrgUnit

AUDIT_PAGE_SIZE = 100


def unit_json(unit: OrgUnit) -> dict[str, Any]:
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
    periods = q.periods(db.session)
    if code is None:
        if not periods:
            raise ApiError(404, "not_found", "no periods defined")
        return periods[-1]
    period = next((p for p in periods if p.code == code), None)
    if period is None:
        raise ApiError(404, "not_found", f"unknown period {code!r}", {"pointer": "/period"})
    return period


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
        for p in q.periods(db.session)
    ]})


@api_blueprint.get("/units")
@requires("unit.read")
def units() -> Any:
    """The tops of the caller's scope."""
    roots = q.units_at(db.session, current_principal().scope_paths("unit.read"))
    return jsonify({"units": [unit_json(u) for u in roots]})


@api_blueprint.get("/units/<code>")
@requires("unit.read")
def unit(code: str) -> Any:
    return jsonify(unit_json(g.unit))


@api_blueprint.get("/units/<code>/children")
@requires("unit.read")
def unit_children(code: str) -> Any:
    return jsonify({"units": [unit_json(u) for u in q.children(db.session, g.unit)]})


@api_blueprint.route("/units/<code>/attributes", methods=["GET", "PUT"])
@requires("unit.read", write="unit.write")
def unit_attributes(code: str) -> Any:
    if request.method == "GET":
        period = _period_arg(request.args.get("period"))
        return jsonify({"unit": code, "period": period.code,
                        "values": q.unit_attributes(db.session, g.unit.id, period.id)})
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
        stored = org_service.set_attributes(db.session, current_user._get_current_object(), g.unit,
                                            period, values, request.remote_addr)
    except org_service.InputCheckError as exc:
        raise ApiError(422, "invalid_value", exc.message, exc.details()) from None
    return jsonify({"unit": code, "period": period.code, "values": stored})


@api_blueprint.get("/units/<code>/history")
@requires("unit.read")
def unit_history(code: str) -> Any:
    return jsonify({"unit": code, "results": [
        {"period": period, "metric": metric, "value": value}
        for period, metric, value in q.unit_history(db.session, g.unit.id)
    ]})


@api_blueprint.get("/audit")
@requires("audit.read")
def audit() -> Any:
    page = max(0, request.args.get("page", 0, type=int))
    entries = q.audit_page(db.session, page, AUDIT_PAGE_SIZE)
    return jsonify({"page": page, "entries": [
        {"id": e.id, "at": e.at.isoformat() + "Z", "actor": e.actor_name, "action": e.action,
         "entity_type": e.entity_type, "entity_id": e.entity_id, "before": e.before, "after": e.after}
        for e in entries
    ]})
