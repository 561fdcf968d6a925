"""What-if pages: a region head tries other inputs and weights for their teams and people.

``/whatif`` lists the units the user may try things on; ``/whatif/<code>`` is the
sandbox (a form of weights and inputs); every change posts the form to
``/whatif/<code>/results`` (htmx), which answers the targets table only. Nothing is
saved, except the evidence snapshot ``/whatif/<code>/snapshot`` stores for an appeal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from werkzeug.routing import BuildError

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import requires
from quotaflow.services import commands, confirmation_reads, plan_reads
from quotaflow.services import units as unit_service
from quotaflow.services import whatif as service
from quotaflow.services.plan_data import PlanError
from quotaflow.services.plans import OrgUnit, Plan
from quotaflow.services.uploads import UploadError, get_upload
from quotaflow.web.periods import chosen_period
from quotaflow.web.uploads import storage_dir, upload_error_message

blueprint = Blueprint("whatif", __name__)

#: The appeal form of a confirmation item; it takes ``evidence=<upload id>``.
APPEAL_ENDPOINT = "confirm.appeal"
INPUT_PREFIX = "in:"
WEIGHT_PREFIX = "w:"

BOUND_LABELS = {"upper": _l("at its upper bound"), "lower": _l("at its lower bound"),
                "fixed": _l("fixed")}


def _error_message(error: service.WhatIfError | PlanError) -> str:
    return error.localized(request_locale())


def _zh() -> bool:
    return str(get_locale() or "zh").startswith("zh")


# -- choosing the plan and reading the form -------------------------------------------

def _plan(source: Mapping[str, Any]) -> Plan:
    """The plan named by ``plan`` (an id), else the sandbox plan of the chosen period."""
    raw = str(source.get("plan", "")).strip()
    if raw and not raw.isdigit():
        abort(404)
    return service.chosen_plan(request_context(), int(raw) if raw else None,
                               source.get("period"))  # NotFound: 404


def _form_values(form: Mapping[str, Any]) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """``in:<unit>:<field>`` inputs and ``w:<factor>`` weights from a posted form."""
    inputs: dict[tuple[str, str], str] = {}
    weights: dict[str, str] = {}
    for key in form:
        if key.startswith(INPUT_PREFIX):
            code, sep, name = key[len(INPUT_PREFIX):].rpartition(":")
            if sep and code:
                inputs[(code, name)] = form[key]
        elif key.startswith(WEIGHT_PREFIX):
            weights[key[len(WEIGHT_PREFIX):]] = form[key]
    return inputs, weights


def _expanded(form: Mapping[str, Any], box: service.Sandbox) -> list[str]:
    """Teams whose people the page shows: those opened, and those with a changed person."""
    getlist = getattr(form, "getlist", None)
    opened = set(getlist("expand") if getlist else [])
    base = box.base
    rows = base.rows_of([c.unit for c in box.changes])
    parents = base.tree.parent[rows[rows > 0]]
    opened.update(base.tree.ids[parents[parents > 0]].tolist())
    return sorted(opened)


# -- view data ------------------------------------------------------------------------

def _field_columns(field_specs: Any) -> list[dict[str, Any]]:
    zh = _zh()
    return [{"name": f.name, "label": (f.label_zh if zh else f.label_en) or f.name,
             "step": "1" if f.type == "integer" else "any"}
            for f in field_specs]


def _input_rows(base: service.SandboxBase, rows: Any) -> list[dict[str, Any]]:
    return service.input_rows(base, rows)


def _weights(base: service.SandboxBase) -> list[dict[str, Any]]:
    lo, hi = base.band
    zh = _zh()
    return [{"key": k, "label": zh_label if zh else en_label, "plan": float(w),
             "min": float(a), "max": float(b)}
            for k, (en_label, zh_label), w, a, b in zip(base.factor_keys, base.factor_labels,
                                                         base.base_weights, lo, hi, strict=True)]


def _results_context(box: service.Sandbox, expanded: list[str]) -> dict[str, Any]:
    base = box.base
    teams = box.rows()
    people = {}
    for code in expanded:
        row = int(base.rows_of([code])[0])
        if row > 0:
            people[code] = box.rows(row)
    labels = {f.name: (f.label_zh if _zh() else f.label_en) or f.name for f in base.field_specs}
    return {"box": box, "teams": teams, "people": people, "field_labels": labels,
            "weights": [{"key": k, "value": float(w)}
                        for k, w in zip(base.factor_keys, box.weights, strict=True)],
            "bound_labels": BOUND_LABELS}


def _error_page(message: str) -> Any:
    return render_template("error.html", status=422, title=gettext("What-if"),
                           message=message), 422


def _unit() -> OrgUnit:
    unit: OrgUnit = g.unit
    return unit


# -- pages ----------------------------------------------------------------------------

@blueprint.route("/whatif")
@requires("plan.whatif")
def index() -> Any:
    """The units the user may run a what-if on: their regions (company scope: all)."""
    units = unit_service.whatif_units(request_context())
    period, periods = chosen_period(request.args.get("period"))
    if len(units) == 1:
        return redirect(url_for("whatif.sandbox", code=units[0].code, period=period.code))
    return render_template("whatif/index.html", units=units, period=period, periods=periods)


@blueprint.route("/whatif/<code>")
@requires("plan.whatif")
def sandbox(code: str) -> Any:
    unit = _unit()
    period, periods = chosen_period(request.args.get("period"))
    context: dict[str, Any] = {"unit": unit, "period": period, "periods": periods,
                               "error": None, "plan": None}
    try:
        plan = _plan(request.args)
        box = service.sandbox(request_context(), unit, plan)
    except (service.WhatIfError, PlanError) as exc:
        context["error"] = _error_message(exc)
        return render_template("whatif/sandbox.html", **context), 422
    base = box.base
    context["period"] = plan.period  # a plan named in the URL brings its own period
    context.update(_results_context(box, []))
    context.update({
        "plan": plan, "base": base, "fields": _field_columns(base.field_specs),
        "input_rows": _input_rows(base, base.children(0)), "weight_rows": _weights(base),
        "root_target": base.region_target,
    })
    return render_template("whatif/sandbox.html", **context)


@blueprint.route("/whatif/<code>/results", methods=["POST"])
@requires("plan.whatif", "plan.whatif")
def results(code: str) -> Any:
    """The targets table for the posted inputs (the htmx partial). Saves nothing."""
    unit = _unit()
    inputs, weights = _form_values(request.form)
    try:
        plan = _plan(request.form)
        box = service.sandbox(request_context(), unit, plan, inputs=inputs, weights=weights)
    except (service.WhatIfError, PlanError) as exc:
        # htmx swaps 2xx answers only: the error is the content here.
        return render_template("whatif/_results.html", error=_error_message(exc))
    return render_template("whatif/_results.html", error=None,
                           **_results_context(box, _expanded(request.form, box)))


@blueprint.route("/whatif/<code>/people")
@requires("plan.whatif")
def people(code: str) -> Any:
    """The input rows of one team's people (inserted into the form), then recompute."""
    unit = _unit()
    try:
        plan = _plan(request.args)
        people = service.team_people(request_context(), unit, plan, request.args.get("team", ""))
    except (service.WhatIfError, PlanError):
        abort(404)
    response = current_app.make_response(render_template(
        "whatif/_people.html", team=people.team, fields=_field_columns(people.fields),
        input_rows=people.rows))
    response.headers["HX-Trigger-After-Settle"] = "whatif-recompute"
    return response


@blueprint.route("/whatif/<code>/snapshot", methods=["POST"])
@requires("plan.whatif", "plan.whatif")
def snapshot(code: str) -> Any:
    """Freeze the posted what-if as evidence (an upload), then offer the appeal form."""
    unit = _unit()
    inputs, weights = _form_values(request.form)
    try:
        plan = _plan(request.form)
        upload = commands.whatif_snapshot(request_context(), unit, plan, inputs=inputs,
                                          weights=weights, storage_dir=storage_dir())
    except (service.WhatIfError, PlanError) as exc:
        return _error_page(_error_message(exc))
    except UploadError as exc:
        return _error_page(upload_error_message(exc))
    return redirect(url_for("whatif.evidence", code=unit.code, upload_id=upload.id,
                            plan=plan.id))


@blueprint.route("/whatif/<code>/evidence/<int:upload_id>")
@requires("plan.whatif")
def evidence(code: str, upload_id: int) -> Any:
    unit = _unit()
    ctx = request_context()
    upload = get_upload(ctx.session, upload_id)
    if upload is None or upload.unit_id != unit.id:
        abort(404)
    appeal_url = None
    raw = request.args.get("plan", "")
    plan = plan_reads.plan_or_none(ctx, int(raw)) if raw.isdigit() else None
    if plan is not None:
        # The unit's own confirmation item of the plan's period, while it may appeal.
        item = confirmation_reads.item_for_unit(ctx, plan.period_id, unit.id)
        if item is not None and item.status == "pending":
            try:
                appeal_url = url_for(APPEAL_ENDPOINT, item_id=item.id, evidence=upload.id)
            except BuildError:
                appeal_url = None
    return render_template("whatif/evidence.html", unit=unit, upload=upload,
                           appeal_url=appeal_url,
                           message=gettext("The what-if was saved as evidence."))
