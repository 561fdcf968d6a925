"""Emergency recompute pages: choose cities and/or units to freeze, an optional new
company total and a reason; preview the recompute (htmx) before submitting it to the
fast-track approval; follow a request to its new plan version and its diff."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.errors import NotFound
from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import requires
from quotaflow.services import alerts as alert_service
from quotaflow.services import commands, emergency_reads, plan_reads
from quotaflow.services import emergency as service
from quotaflow.web.context import current_locale as _locale
from quotaflow.web.context import is_htmx as _htmx
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("emergency", __name__)

STATUS = {"pending": _l("Waiting for approval"), "published": _l("Approved and published"),
          "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn")}
FLOW_STATUS = {"draft": _l("Draft"), "running": _l("Under review"), "approved": _l("Approved"),
               "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn")}


def error_message(error: service.EmergencyError) -> str:
    return error.localized(request_locale())




def _choices() -> dict[str, Any]:
    """What the form posted (or the page was opened with)."""
    source = request.form if request.method == "POST" else request.args
    return {"cities": [c for c in source.getlist("city") if c.strip()],
            "units": source.get("units", "").strip(),
            "total": source.get("total", "").strip(),
            "reason": source.get("reason", "").strip()}


def _unit_codes(text: str) -> list[str]:
    return [c for c in text.replace("，", ",").replace(";", ",").replace("\n", ",")
            .replace(" ", ",").split(",") if c.strip()]


def _page(period: Any, periods: list[Any], chosen: dict[str, Any], *,
          preview: Any = None, error: str | None = None, status: int = 200) -> Any:
    ctx = request_context()
    plan = plan_reads.published_plan(ctx, period.id)
    return render_template(
        "emergency/index.html", period=period, periods=periods, plan=plan,
        cities=emergency_reads.cities(ctx), chosen=chosen, preview=preview, error=error,
        requests=emergency_reads.requests(ctx, period.id), status_labels=STATUS,
        form=CsrfOnlyForm()), status


def _check_form() -> None:
    if not CsrfOnlyForm().validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))


@blueprint.route("/emergency")
@requires("plan.emergency")
def index() -> Any:
    period, periods = chosen_period(request.args.get("period"))
    chosen = _choices()
    alert_id = request.args.get("alert", type=int)
    if alert_id is not None and not chosen["reason"]:
        try:
            alert = alert_service.readable_alert(request_context(), alert_id)
        except NotFound:
            pass  # an alert out of scope starts an empty reason, as an absent one
        else:
            chosen["reason"] = (alert.message_zh if _locale().startswith("zh")
                                else alert.message_en)
    return _page(period, periods, chosen)


@blueprint.route("/emergency/preview", methods=["POST"])
@requires("plan.emergency")
def preview() -> Any:
    _check_form()
    period, periods = chosen_period(request.form.get("period"))
    chosen = _choices()
    found, error = None, None
    try:
        # A preview never writes: the service undoes whatever computing it wrote.
        found = emergency_reads.preview(request_context(), period, cities=chosen["cities"],
                                        unit_codes=_unit_codes(chosen["units"]),
                                        total=chosen["total"] or None)
    except service.EmergencyError as exc:
        error = error_message(exc)
    summary = found.as_summary() if found is not None else None
    if _htmx():
        return render_template("emergency/_preview.html", s=summary, error=error)
    return _page(period, periods, chosen, preview=summary, error=error)


@blueprint.route("/emergency", methods=["POST"])
@requires("plan.emergency")
def submit() -> Any:
    _check_form()
    period, periods = chosen_period(request.form.get("period"))
    chosen = _choices()
    try:
        made = commands.request_emergency(request_context(), period, reason=chosen["reason"],
                                          cities=chosen["cities"],
                                          unit_codes=_unit_codes(chosen["units"]),
                                          total=chosen["total"] or None)
    except service.EmergencyError as exc:
        return _page(period, periods, chosen, error=error_message(exc), status=422)
    flash(gettext("Emergency recompute #%(id)s is waiting for an executive's approval.",
                  id=made.id), "success")
    return redirect(url_for("emergency.detail", request_id=made.id))


@blueprint.route("/emergency/<int:request_id>")
@requires("plan.emergency")
def detail(request_id: int) -> Any:
    found, instance = emergency_reads.request_detail(request_context(), request_id)
    summary = dict(found.summary or {})
    return render_template("emergency/detail.html", req=found, instance=instance,
                           preview=summary.get("preview") or {},
                           result=summary.get("result"), status_labels=STATUS,
                           flow_status_labels=FLOW_STATUS)
