"""During-the-quarter routes of the API: ingest actuals, list and acknowledge alerts,
read a unit's progress. The guard enforces each permission; rows are scope-checked."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from quotaflow.api import api_blueprint
from quotaflow.api.views import _period_arg
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import current_principal, requires
from quotaflow.services import actuals as actuals_service
from quotaflow.services import alerts as alert_service
from quotaflow.services import tracking
from quotaflow.store import db
from quotaflow.store.tracking_models import Alert

ALERTS_DEFAULT_LIMIT = 200
ALERTS_MAX_LIMIT = 2000


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a whole number",
                       {"pointer": f"/{name}"}) from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be within {low}..{high}",
                       {"pointer": f"/{name}"})
    return value


@api_blueprint.post("/actuals")
@requires("unit.write")
def post_actuals() -> Any:
    payload = request.get_json(silent=True)
    if isinstance(payload, dict) and "actuals" in payload:
        payload = payload["actuals"]
    result = actuals_service.ingest_records(
        db.session, current_user._get_current_object(), current_principal(), payload,
        remote_addr=request.remote_addr)
    return jsonify(result.as_dict())


@api_blueprint.get("/alerts")
@requires("unit.read")
def list_alerts() -> Any:
    period = _period_arg(request.args.get("period"))
    status = request.args.get("status") or None
    if status == "all":
        status = None
    try:
        rows = alert_service.alerts_in_scope(
            db.session, current_principal().scope_paths("unit.read"), period_id=period.id,
            status=status, week=_int_arg("week", None, 1, 60),
            limit=_int_arg("limit", ALERTS_DEFAULT_LIMIT, 1, ALERTS_MAX_LIMIT) or 1,
            offset=_int_arg("offset", 0, 0, 10**9) or 0)
    except alert_service.AlertError as exc:
        raise ApiError(400, exc.code, exc.message, {"pointer": "/status"}) from None
    return jsonify({"period": period.code, "alerts": [alert_service.alert_json(a) for a in rows]})


@api_blueprint.post("/alerts/<int:alert_id>/acknowledge")
@requires("unit.read", write="unit.write")
def acknowledge_alert(alert_id: int) -> Any:
    alert = db.session.scalar(select(Alert).options(joinedload(Alert.unit))
                              .where(Alert.id == alert_id))
    principal = current_principal()
    if alert is None or not principal.can("unit.read", alert.unit.path):
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    if not principal.can("unit.write", alert.unit.path):
        raise ApiError(403, "forbidden", "you may not acknowledge this alert")
    alert = alert_service.acknowledge(db.session, alert, current_user._get_current_object(),
                                      remote_addr=request.remote_addr)
    return jsonify(alert_service.alert_json(alert))


@api_blueprint.get("/units/<code>/progress")
@requires("unit.read")
def unit_progress(code: str) -> Any:
    period = _period_arg(request.args.get("period"))
    week = _int_arg("week", None, 1, 60)
    try:
        p = tracking.progress(db.session, period, week)
    except tracking.TrackingError as exc:
        raise ApiError(404 if exc.code == "no_plan" else 400, exc.code, exc.message,
                       {"pointer": "/week"} if exc.code == "bad_week" else None) from None
    unit = g.unit
    if unit.code not in p:
        raise ApiError(404, "not_found", f"{unit.code} is not an active unit")
    children = [p.unit(str(p.codes[i])) for i in p.children_rows(unit.code).tolist()]
    return jsonify({**p.summary(), "unit": p.unit(unit.code), "series": p.series(unit.code),
                    "children": children})
