"""During the quarter: the alerts page (alerts within the viewer's scope, acknowledged
with htmx) and the actuals upload page (HRBP, admin, region heads and team leads, for
the people in their scope)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.http.sheet_texts import ISSUE_MESSAGES, issue_message
from quotaflow.services import actuals as actuals_service
from quotaflow.services import alerts as alert_queries
from quotaflow.services import commands
from quotaflow.services import spreadsheets as sheets
from quotaflow.web.filters import number
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("alerts", __name__)

SEVERITY_LABELS: Mapping[str, Any] = {
    "high": _l("High"), "medium": _l("Medium"), "low": _l("Low"),
}
STATUS_LABELS: Mapping[str, Any] = {
    "open": _l("Open"), "acknowledged": _l("Acknowledged"), "resolved": _l("Resolved"),
}
STATUS_FILTERS = ("open", "all")
#: The actuals upload's own problems, added to the spreadsheet messages.
ACTUALS_MESSAGES: Mapping[str, Any] = {
    "actuals.required": _l("The column %(column)s needs a value."),
    "actuals.bad_date": _l("“%(value)s” is not a date such as 2026-10-07."),
    "actuals.no_period": _l("%(date)s lies in no period."),
    "actuals.not_person": _l("%(code)s is not a person: actuals are recorded for sales people and added up the tree."),
    "actuals.duplicate": _l("%(code)s on %(date)s appears twice (first in row %(first)s)."),
    "actuals.too_long": _l("Enter at most %(max)s characters."),
    "unit.read_only": _l("You may not record results of %(code)s."),
    "actuals.concurrent": _l("Another upload stored some of these rows at the same moment, so nothing was saved. Upload the file again: rows already stored count as unchanged."),
}
PAGE_LIMIT = 500


def _actuals_issue(issue: sheets.SheetIssue) -> str:
    if issue.code in ACTUALS_MESSAGES:
        params = {k: (number(v) if isinstance(v, int | float) and not isinstance(v, bool)
                      else v) for k, v in issue.params.items()}
        try:
            return str(ACTUALS_MESSAGES[issue.code]) % params
        except (KeyError, TypeError, ValueError):
            return str(ACTUALS_MESSAGES[issue.code])
    return issue_message(issue) if issue.code in ISSUE_MESSAGES else issue.code


# ---------------------------------------------------------------------------- alerts


def _alerts_page(period: Any, periods: list[Any], status: str) -> Any:
    ctx = request_context()
    alerts = alert_queries.page_alerts(ctx, period.id, None if status == "all" else status,
                                       limit=PAGE_LIMIT)
    return render_template(
        "alerts/index.html", alerts=alerts, period=period, periods=periods, status=status,
        status_filters=STATUS_FILTERS, severity_labels=SEVERITY_LABELS,
        status_labels=STATUS_LABELS, can_ack=_can_ack, limit=PAGE_LIMIT,
        last_run=alert_queries.last_scan(ctx, period.id))


def _can_ack(alert: Any) -> bool:
    return alert_queries.can_acknowledge(request_context(), alert)


@blueprint.route("/alerts/")
@requires("unit.read")
def alerts_page() -> Any:
    period, periods = chosen_period(request.args.get("period"))
    status = request.args.get("status", "open")
    if status not in STATUS_FILTERS:
        abort(404)
    return _alerts_page(period, periods, status)


@blueprint.route("/alerts/<int:alert_id>/acknowledge", methods=["POST"])
@requires("unit.read", write="unit.write")
def acknowledge(alert_id: int) -> Any:
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    # Out of read scope: 404; readable but not writable: 403 (the service's refusals).
    alert = alert_queries.acknowledge_alert(request_context(), alert_id)
    if request.headers.get("HX-Request"):
        return render_template("alerts/_alert.html", alert=alert,
                               severity_labels=SEVERITY_LABELS, status_labels=STATUS_LABELS,
                               can_ack=_can_ack)
    period, periods = chosen_period(alert.period.code)
    return _alerts_page(period, periods, "open")


# ---------------------------------------------------------------------------- actuals


def _actuals_page(status: int = 200, **context: Any) -> Any:
    return render_template("alerts/actuals.html", formats=("xlsx", "csv"), **context), status


@blueprint.route("/actuals/")
@requires("unit.write")
def actuals_page() -> Any:
    return _actuals_page()


@blueprint.route("/actuals/template.<fmt>")
@requires("unit.write")
def actuals_template(fmt: str) -> Any:
    if fmt not in ("xlsx", "csv"):
        abort(404)
    content, filename, mimetype = actuals_service.template(
        fmt, sheet=gettext("Actuals"), readme_sheet=gettext("README"), readme=(
            gettext("One row per person, date and source record; keep the header row."),
            gettext("source and source_id are optional: sending the same record again changes nothing, a new value for it replaces the old one."),
            gettext("Rows whose first cell starts with # are ignored: the example row is one. Copy it without the #."),
            gettext("If any row has a problem nothing is saved, and the report lists every row and column to fix."),
        ))
    return send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=True,
                     download_name=filename, max_age=0)


@blueprint.route("/actuals/", methods=["POST"])
@requires("unit.write")
def actuals_upload() -> Any:
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        error = sheets.refuse("file.missing")
        return _actuals_page(422, report=_report(error))
    data, filename = upload.read(), upload.filename
    try:
        result = commands.import_actuals(
            request_context(), data, filename,
            max_bytes=current_app.config.get("MAX_CONTENT_LENGTH"))
    except sheets.SheetImportError as exc:
        return _actuals_page(422, report=_report(exc), filename=filename)
    summary = gettext("%(records)s records: %(inserted)s added, %(updated)s changed, %(unchanged)s unchanged.",
                      records=number(result.records), inserted=number(result.inserted),
                      updated=number(result.updated), unchanged=number(result.unchanged))
    return _actuals_page(summary=summary, filename=filename)


def _report(error: sheets.SheetImportError) -> dict[str, Any]:
    shown = error.issues[:500]
    return {"issues": [{"row": i.row, "column": i.column, "header": i.header, "code": i.code,
                        "message": _actuals_issue(i)} for i in shown],
            "total": error.total, "hidden": error.total - len(shown)}
