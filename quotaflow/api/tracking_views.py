"""During-the-quarter routes of the API: ingest actuals, list and acknowledge alerts,
read a unit's progress. The guard enforces each permission; rows are scope-checked."""

from __future__ import annotations

import io
from typing import Any

from flask import g, jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.api.views import _period_arg
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import actuals as actuals_service
from quotaflow.services import alerts as alert_service
from quotaflow.services import commands, tracking

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
    return jsonify(commands.ingest_actuals(request_context(), payload).as_dict())


@api_blueprint.get("/alerts")
@requires("unit.read")
def list_alerts() -> Any:
    period = _period_arg(request.args.get("period"))
    status = request.args.get("status") or None
    if status == "all":
        status = None
    try:
        rows = alert_service.scope_alerts(
            request_context(), period_id=period.id, status=status, week=_int_arg("week", None, 1, 60),
            limit=_int_arg("limit", ALERTS_DEFAULT_LIMIT, 1, ALERTS_MAX_LIMIT) or 1,
            offset=_int_arg("offset", 0, 0, 10**9) or 0)
    except alert_service.AlertError as exc:
        raise ApiError(400, exc.code, exc.message, {"pointer": "/status"}) from None
    return jsonify({"period": period.code, "alerts": [alert_service.alert_json(a) for a in rows]})


@api_blueprint.post("/alerts/<int:alert_id>/acknowledge")
@requires("unit.read", write="unit.write")
def acknowledge_alert(alert_id: int) -> Any:
    alert = alert_service.acknowledge_alert(request_context(), alert_id)
    return jsonify(alert_service.alert_json(alert))


@api_blueprint.get("/units/<code>/progress")
@requires("unit.read")
def unit_progress(code: str) -> Any:
    period = _period_arg(request.args.get("period"))
    week = _int_arg("week", None, 1, 60)
    try:
        p = tracking.readable_progress(request_context(), period, week)
    except tracking.TrackingError as exc:
        raise ApiError(404 if exc.code in ("no_plan", "no_published_plan") else 400, exc.code, exc.message,
                       {"pointer": "/week"} if exc.code == "bad_week" else None) from None
    unit = g.unit
    if unit.code not in p:
        raise ApiError(404, "not_found", f"{unit.code} is not an active unit")
    children = [p.unit(str(p.codes[i])) for i in p.children_rows(unit.code).tolist()]
    return jsonify({**p.summary(), "unit": p.unit(unit.code), "series": p.series(unit.code),
                    "children": children})


@api_blueprint.post("/alerts/scan")
@requires("alerts.scan")
def scan_alerts() -> Any:
    """Scan a week for alerts (admins, HR); running it again adds nothing."""
    from quotaflow.services import alert_scan

    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", 'expected {"period": "2026Q4", "week": 6}',
                       {"pointer": ""})
    period, week = body.get("period"), body.get("week")
    if period is not None and not isinstance(period, str):
        raise ApiError(422, "invalid_period", "period is a period code such as 2026Q4",
                       {"pointer": "/period"})
    if week is not None and (not isinstance(week, int) or isinstance(week, bool)):
        raise ApiError(422, "bad_week", "week is a whole number (1..)", {"pointer": "/week"})
    result = alert_scan.run_scan(request_context(), period, week, trigger="api")
    return jsonify(result.as_dict())


@api_blueprint.post("/actuals/import")
@requires("unit.write")
def import_actuals() -> Any:
    """Import a .csv or .xlsx of actuals (multipart field ``file``): all or nothing."""
    from flask import current_app

    from quotaflow.services.spreadsheets import SheetImportError

    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ApiError(400, "no_file", 'send the file as multipart field "file"',
                       {"pointer": "/file"})
    try:
        result = commands.import_actuals(request_context(), upload.read(), upload.filename,
                                         max_bytes=current_app.config.get("MAX_CONTENT_LENGTH"))
    except SheetImportError as exc:
        raise ApiError(422, "invalid_actuals", f"{exc.total} problem(s); nothing was imported",
                       {"pointer": "/file", "total": exc.total, "issues": [
                           {"row": i.row, "column": i.column, "header": i.header,
                            "code": i.code, "params": dict(i.params)}
                           for i in exc.issues]}) from None
    return jsonify(result.as_dict())


@api_blueprint.get("/actuals/template")
@requires("unit.write")
def actuals_template() -> Any:
    """The actuals upload template (?format=xlsx or csv)."""
    from flask import send_file

    fmt = request.args.get("format", "xlsx")
    if fmt not in ("xlsx", "csv"):
        raise ApiError(400, "bad_request", "format is xlsx or csv", {"pointer": "/format"})
    content, filename, mimetype = actuals_service.template(fmt)
    return send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=True,
                     download_name=filename, max_age=0)
