"""Plan pages: the list, the target simulator, a plan, one unit's explanation, the
.xlsx export and a draft model's impact preview."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import format_decimal, format_percent, get_locale, gettext
from flask_babel import lazy_gettext as _l

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import current_principal, requires
from quotaflow.http.plan_workbook import (
    SEVERITY_LABELS,
    STATUS_LABELS,
    factor_labels,
    plan_workbook,
)
from quotaflow.services import commands, plan_reads, simulator
from quotaflow.services import periods as period_service
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service
from quotaflow.services.plan_data import PlanError
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("plans", __name__)

SPEC_STATUS_LABELS = {"draft": _l("Draft"), "active": _l("Active"), "retired": _l("Retired")}
INFEASIBLE_LABELS = {
    "total_short": _l("The units' upper bounds cannot take the company total"),
    "total_excess": _l("The units' lower bounds add up to more than the company total"),
    "above_upper": _l("Its children were pushed above their upper bounds"),
    "below_lower": _l("Its children were pushed below their lower bounds"),
    "children_short": _l("Its children cannot reach its own lower bound"),
    "children_excess": _l("Its children must take more than its own upper bound"),
    "bounds_conflict": _l("Its lower bound is above its upper bound"),
}


def plan_error_message(error: PlanError) -> str:
    return error.localized(request_locale())


def _zh() -> bool:
    return str(get_locale() or "zh").startswith("zh")


@blueprint.app_template_filter("bilingual")
def bilingual(obj: Any, name: str) -> str:
    """``obj.<name>_zh`` or ``obj.<name>_en`` (dicts too) in the user's language."""
    first, second = ("zh", "en") if _zh() else ("en", "zh")

    def get(lang: str) -> Any:
        key = f"{name}_{lang}"
        return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)

    return str(get(first) or get(second) or "")


@blueprint.app_template_filter("plan_percent")
def plan_percent(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return format_percent(value, format="#,##0." + "0" * digits + "%" if digits else "#,##0%")


@blueprint.app_template_filter("signed")
def signed(value: float | None) -> str:
    if value is None:
        return "—"
    text = format_decimal(value, format="#,##0")
    return f"+{text}" if value > 0 else text


@blueprint.app_context_processor
def _labels() -> dict[str, Any]:
    return {"severity_labels": SEVERITY_LABELS, "status_labels": STATUS_LABELS,
            "infeasible_labels": INFEASIBLE_LABELS, "spec_status_labels": SPEC_STATUS_LABELS}


def _paths() -> tuple[str, ...]:
    return current_principal().scope_paths("unit.read")


def _plan(plan_id: int) -> Any:
    return plan_reads.plan(request_context(), plan_id)


def _readable(path: str) -> bool:
    return current_principal().can("unit.read", path)


# -- the list ------------------------------------------------------------------------

@blueprint.route("/plans")
@requires("unit.read")
def plan_list() -> Any:
    ctx = request_context()
    periods = period_service.periods(ctx)
    code = request.args.get("period")
    period = next((p for p in periods if p.code == code), None) if code else None
    if code and period is None:
        abort(404)
    return render_template("plans/list.html", plans=plan_reads.plans(ctx, period.id if period else None),
                           periods=periods, period=period,
                           can_create=current_principal().has("plan.create"))


# -- the simulator -------------------------------------------------------------------

def _last_year_hint(period: Any) -> float | None:
    """The company's result in the same quarter last year, as a hint for the total."""
    return plan_reads.last_year_company_result(request_context(), period)


@blueprint.route("/plans/simulate", methods=["GET", "POST"])
@requires("plan.create")
def simulate() -> Any:
    form = CsrfOnlyForm()
    source = request.form if request.method == "POST" else request.args
    period, periods = chosen_period(source.get("period"))
    total = source.get("total", "").strip()
    if not total and request.method == "GET" and "total" not in request.args:
        latest = plan_reads.latest_plan(request_context(), period.id)
        total = str(latest.company_total) if latest else ""
    error = None
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, gettext("The form expired. Reload the page and try again."))
        try:
            plan = commands.create_plan(request_context(), period, source.get("scenario", ""),
                                        total, source.get("note"))
        except PlanError as exc:
            error, status = plan_error_message(exc), 422
        else:
            flash(gettext("Plan %(number)s for %(period)s saved.", number=plan.number,
                          period=period.code), "success")
            return redirect(url_for("plans.plan_detail", plan_id=plan.id))
    cards, metrics = [], []
    if total and error is None:
        try:
            sim, cards = simulator.scenarios(request_context(), period, total)
        except PlanError as exc:
            error, status = plan_error_message(exc), 422
        else:
            # Ratios fit beside the targets in a narrow card; amounts would not.
            metrics = [m for m in plan_service.metric_columns(sim.specs.rules) if m.percent]
    context = {"period": period, "periods": periods, "total": total, "cards": cards,
               "error": error, "hint": _last_year_hint(period), "form": form,
               "metrics": metrics, "note": source.get("note", "")}
    partial = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request")
    if partial:
        # htmx swaps 2xx responses only: an error is content here, not a failure.
        return render_template("plans/_scenarios.html", **context)
    return render_template("plans/simulate.html", **context), status


# -- one plan ------------------------------------------------------------------------

@blueprint.route("/plans/<int:plan_id>")
@requires("unit.read")
def plan_detail(plan_id: int) -> Any:
    plan = _plan(plan_id)
    paths = _paths()
    ctx = request_context()
    root = plan_reads.root(ctx, plan)
    sees_company = root is not None and _readable(root.path)
    metrics, rows = plan_service.plan_table(ctx, plan, plan_reads.scope_rows(ctx, plan, paths))
    return render_template(
        "plans/detail.html", plan=plan, summary=plan_service.summary_for_scope(ctx, plan, paths),
        sees_company=sees_company, root=root, metrics=metrics, rows=rows,
        factors=factor_labels(plan),
        can_preview=current_principal().has("spec.read"),
        can_publish=current_principal().has("plan.publish") and plan.status == "draft",
        publish_form=CsrfOnlyForm(),
        # A superseded version points at the period's current one (links to old ids live on
        # in notifications and bookmarks).
        current=plan_reads.published_plan(ctx, plan.period_id)
        if plan.status == "superseded" else None)


@blueprint.route("/plans/<int:plan_id>/units/<code>")
@requires("unit.read")
def plan_unit(plan_id: int, code: str) -> Any:
    plan = _plan(plan_id)
    unit = g.unit
    ctx = request_context()
    try:
        explanation = plan_reads.explanation(ctx, plan, unit)
    except PlanError:
        abort(404)
    metrics, children = plan_service.plan_table(ctx, plan, plan_reads.plan_rows(ctx, plan, unit))
    ancestors = unit_service.ancestors(ctx, unit)
    return render_template("plans/unit.html", plan=plan, unit=unit, ex=explanation,
                           metrics=metrics, children=children, ancestors=ancestors)


# -- export --------------------------------------------------------------------------

@blueprint.route("/plans/<int:plan_id>/export.xlsx")
@requires("unit.read")
def plan_export(plan_id: int) -> Any:
    data, name = plan_workbook(_plan(plan_id))
    return send_file(io.BytesIO(data), as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# -- impact of a draft model ----------------------------------------------------------

@blueprint.route("/plans/<int:plan_id>/impact")
@requires("spec.read")
def plan_impact(plan_id: int) -> Any:
    plan = _plan(plan_id)
    ctx = request_context()
    versions = plan_reads.factor_model_versions(ctx)
    version_id = request.args.get("model_version", type=int)
    version = next((v for v in versions if v.id == version_id), None)
    preview, error = None, None
    if version_id is not None:
        try:
            preview = plan_service.impact_of_model(ctx, plan, version_id)  # NotFound: 404
        except PlanError as exc:
            error = plan_error_message(exc)
    return render_template("plans/impact.html", plan=plan, versions=versions, version=version,
                           preview=preview, error=error), (422 if error else 200)
