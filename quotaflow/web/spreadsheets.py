"""Spreadsheets: download the pre-filled inputs workbook, upload it back; org, people and
history imports for administrators. Reports show every bad row and column in the
user's language (services give stable codes; the words live here)."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import gettext
from werkzeug.exceptions import RequestEntityTooLarge

from quotaflow.http.context import request_context
from quotaflow.http.guard import current_principal, requires
from quotaflow.http.input_texts import pending_units_message
from quotaflow.http.sheet_texts import (
    FORMATS,
    IMPORT_HELP,
    IMPORT_KINDS,
    IMPORT_TITLES,
    issue_message,
    report,
    sheet_texts,
    template_texts,
)
from quotaflow.services import commands, org_import
from quotaflow.services import spreadsheets as sheets
from quotaflow.web.context import current_locale as _locale
from quotaflow.web.filters import number
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("sheets", __name__, url_prefix="/sheets")

def _page(status: int = 200, **context: Any) -> Any:
    principal = current_principal()
    period, periods = chosen_period(request.values.get("period"))
    return render_template(
        "sheets/index.html", period=period, periods=periods, form=CsrfOnlyForm(),
        can_write=principal.has("unit.write"), can_admin=principal.has("admin.access"),
        import_kinds=IMPORT_KINDS, import_titles=IMPORT_TITLES, import_help=IMPORT_HELP,
        formats=FORMATS, **context,
    ), status


def _upload() -> tuple[bytes, str] | sheets.SheetImportError:
    """The uploaded file's bytes and name, or the refusal to show."""
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return sheets.refuse("file.missing")
    return upload.read(), upload.filename


def _limit() -> int | None:
    return current_app.config.get("MAX_CONTENT_LENGTH")


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_e: Exception) -> Any:
    message = issue_message(sheets.SheetIssue("file.too_large", {"max_bytes": _limit() or 0}))
    return render_template("error.html", status=413, title=gettext("File too large"),
                           message=message), 413


@blueprint.route("/")
@requires("unit.read", write="unit.write")
def index() -> Any:
    return _page()


@blueprint.route("/inputs.<fmt>")
@requires("unit.write")
def download_inputs(fmt: str) -> Any:
    if fmt not in FORMATS:
        abort(404)
    period, _periods_list = chosen_period(request.values.get("period"))
    try:
        export = sheets.export_inputs(request_context(), period, fmt, _locale(), sheet_texts())
    except sheets.SheetImportError as exc:
        return _page(409, report=report(exc), report_for="inputs")
    return send_file(io.BytesIO(export.content), mimetype=export.mimetype, as_attachment=True,
                     download_name=export.filename, max_age=0)


@blueprint.route("/inputs", methods=["POST"])
@requires("unit.read", write="unit.write")
def upload_inputs() -> Any:
    upload = _upload()
    if isinstance(upload, sheets.SheetImportError):
        return _page(422, report=report(upload), report_for="inputs")
    data, filename = upload
    try:
        result = commands.import_inputs(
            request_context(), data, filename, request.form.get("period") or None,
            texts=sheet_texts(), max_bytes=_limit())
    except sheets.SheetImportError as exc:
        return _page(422, report=report(exc), report_for="inputs", filename=filename)
    summary = gettext("Imported %(rows)s rows of %(period)s: %(units)s units and %(values)s values changed.",
                      rows=number(result.rows), period=result.period,
                      units=number(result.units_changed), values=number(result.values_changed))
    if result.units_pending:
        summary = f"{summary} {pending_units_message(result.units_pending)}"
    return _page(summary=summary, summary_for="inputs", filename=filename)


@blueprint.route("/templates/<kind>.<fmt>")
@requires("admin.access")
def download_template(kind: str, fmt: str) -> Any:
    if kind not in IMPORT_KINDS or fmt not in FORMATS:
        abort(404)
    made = org_import.template(kind, fmt, template_texts(kind))
    return send_file(io.BytesIO(made.content), mimetype=made.mimetype, as_attachment=True,
                     download_name=made.filename, max_age=0)


@blueprint.route("/import/<kind>", methods=["POST"])
@requires("admin.access")
def upload_import(kind: str) -> Any:
    if kind not in IMPORT_KINDS:
        abort(404)
    upload = _upload()
    if isinstance(upload, sheets.SheetImportError):
        return _page(422, report=report(upload), report_for=kind)
    data, filename = upload
    try:
        if kind == "history":
            history = commands.import_history(request_context(), data, filename,
                                              max_bytes=_limit())
            summary = gettext("Imported %(rows)s rows: %(inserted)s results added, %(updated)s changed.",
                              rows=number(history.rows), inserted=number(history.inserted),
                              updated=number(history.updated))
        else:
            org = commands.import_org_units(request_context(), data, filename,
                                            people=kind == "people", max_bytes=_limit())
            summary = gettext("Imported %(rows)s rows: %(created)s units created, %(updated)s updated, %(moved)s moved.",
                              rows=number(org.rows), created=number(org.created),
                              updated=number(org.updated), moved=number(org.moved))
    except sheets.SheetImportError as exc:
        return _page(422, report=report(exc), report_for=kind, filename=filename)
    return _page(summary=summary, summary_for=kind, filename=filename)
