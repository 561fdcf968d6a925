"""The HR export page: the final targets per person of a period's latest published plan,
downloaded as .xlsx or CSV in the user's language (rows limited to the user's scope)."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, abort, render_template, request, send_file
from flask_babel import get_locale, gettext

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import current_principal, requires
from quotaflow.http.hr_texts import export_texts
from quotaflow.services import hr_export
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("hr", __name__, url_prefix="/hr")



def error_message(error: hr_export.HrExportError) -> str:
    return error.localized(request_locale())


def _lang() -> str:
    return "zh" if str(get_locale() or "zh").startswith("zh") else "en"


def _paths() -> tuple[str, ...]:
    principal = current_principal()
    return principal.scope_paths("unit.read") if principal else ()


@blueprint.route("/")
@requires("hr.export")
def index() -> Any:
    period, periods = chosen_period(request.args.get("period"))
    ctx = request_context()
    plan = hr_export.latest_published_plan(ctx, period)
    summary = None if plan is None else hr_export.summary(ctx, plan, _paths())
    return render_template("hr/index.html", period=period, periods=periods, summary=summary,
                           columns=hr_export.export_header(ctx, lang=_lang(),
                                                           texts=export_texts()))


@blueprint.route("/export")
@requires("hr.export")
def download() -> Any:
    fmt = request.args.get("format", "xlsx")
    if fmt not in hr_export.FORMATS:
        abort(400, description=error_message(hr_export.HrExportError(
            "bad_format", format=fmt, known=", ".join(hr_export.FORMATS))))
    period, _periods = chosen_period(request.args.get("period"))
    try:
        export = hr_export.build_export(request_context(), period.code, lang=_lang(),
                                        texts=export_texts(), paths=_paths())
    except hr_export.HrExportError as exc:
        return render_template("error.html", status=404, title=gettext("Nothing to export"),
                               message=error_message(exc)), 404
    data = hr_export.render(export, fmt)
    return send_file(io.BytesIO(data), as_attachment=True, download_name=export.filename(fmt),
                     mimetype=hr_export.MIMETYPES[fmt], max_age=0)
