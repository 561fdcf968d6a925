"""The factor builder: HRBPs add and weigh factors in pages, never in JSON."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import requires
from quotaflow.services import commands, plan_reads, specs
from quotaflow.services import factor_builder as fb
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service
from quotaflow.web.config_pages import ISSUE_SUMMARIES, problem_views, spec_error_message
from quotaflow.web.periods import planning_period

blueprint = Blueprint("builder", __name__, url_prefix="/builder")

NORMALISATIONS = {
    "share": _l("Share of the sum (measure ÷ siblings' total)"),
    "score": _l("0–100 score turned into a share"),
    "rank": _l("Rank among siblings"),
}
FIELD_TYPES = {"number": _l("Number"), "integer": _l("Whole number"), "boolean": _l("Yes / no")}
NEW_FIELD_ROWS = 2
EDIT_ERRORS = {
    "missing_key": _l("Give the factor a key."),
    "weight_range": _l("A weight lies between 0 and 100."),
    "weights_total": _l("The weights must total 100%."),
    "unknown_factor": _l("This names a factor the model does not have."),
    "missing_weight": _l("Every factor needs a weight."),
    "bad_number": _l("“%(value)s” is not a number."),
    "bad_field_name": _l("Field names are lower-case letters, digits and _, starting with a letter."),
    "duplicate_key": _l("A factor with this key exists already."),
}


class FormProblem(ValueError):
    def __init__(self, field: str, code: str, **params: Any) -> None:
        super().__init__(code)
        self.field, self.code, self.params = field, code, params

    @property
    def message(self) -> str:
        return str(EDIT_ERRORS[self.code]) % self.params


def _model_or_404() -> Any:
    version = fb.latest_model(request_context().session)
    if version is None:
        abort(404)
    return version


def _number(form: Any, name: str, *, required: bool = False) -> float | None:
    raw = (form.get(name) or "").strip().replace(",", "")
    if not raw:
        if required:
            raise FormProblem(name, "bad_number", value="")
        return None
    try:
        return float(raw)
    except ValueError:
        raise FormProblem(name, "bad_number", value=raw) from None


def _new_fields(form: Any) -> list[dict[str, Any]]:
    """The new input fields typed on the factor page (blank rows are ignored)."""
    fields = []
    for i in range(NEW_FIELD_ROWS):
        name = (form.get(f"field-{i}-name") or "").strip()
        if not name:
            continue
        if not fb.valid_field_name(name):
            raise FormProblem(f"field-{i}-name", "bad_field_name")
        field: dict[str, Any] = {"name": name, "type": form.get(f"field-{i}-type", "number"),
                                 "required": form.get(f"field-{i}-required") == "on"}
        for key in ("label_zh", "label_en", "help"):
            text = (form.get(f"field-{i}-{key}") or "").strip()
            if text:
                field[key] = text
        for key in ("min", "max", "default"):
            value = _number(form, f"field-{i}-{key}")
            if value is not None:
                field[key] = value
        if field["type"] == "boolean" and "default" in field:
            field["default"] = bool(field["default"])
        fields.append(field)
    return fields


def _impact(version: Any) -> tuple[Any, Any]:
    """The latest plan of the planning period recomputed under ``version``."""
    period = planning_period()
    plan = plan_reads.latest_plan(request_context(), period.id)
    if plan is None or (version.status == "active" and plan.model_version_id == version.id):
        return plan, None
    try:
        return plan, plan_service.impact_preview(request_context(), version, plan)
    except plan_service.PlanError as error:
        return plan, error


@blueprint.route("/")
@requires("spec.write")
def overview() -> Any:
    version = _model_or_404()
    active = fb.active_model(request_context().session)
    plan, impact = _impact(version) if version.status == "draft" else (None, None)
    return render_template("builder/overview.html", version=version, doc=version.content,
                           active=active, plan=plan, impact=impact,
                           impact_error=impact if isinstance(impact, plan_service.PlanError) else None,
                           normalisations=NORMALISATIONS)


@blueprint.route("/factor", methods=["GET", "POST"], defaults={"key": None})
@blueprint.route("/factor/<key>", methods=["GET", "POST"])
@requires("spec.write")
def factor(key: str | None) -> Any:
    version = _model_or_404()
    doc = version.content
    existing = next((f for f in doc["factors"] if f["key"] == key), None) if key else None
    if key and existing is None:
        abort(404)
    errors: dict[str, str] = {}
    issues: list[dict[str, Any]] = []
    values: dict[str, Any] = dict(request.form) if request.method == "POST" else {
        **(existing or {"normalisation": "share"}),
        "weight": doc["weights"].get(key, 10) if key else 10, "rebalance": "on", "level": 2,
    }
    if request.method == "POST":
        try:
            new_fields = _new_fields(request.form)
            weight = _number(request.form, "weight", required=True)
            typed = {name: request.form.get(name) for name in (*fb.FACTOR_TEXTS, "normalisation")}
            saved = fb.save_factor(
                request_context(), key, typed, weight, new_fields,
                rebalance_others=request.form.get("rebalance") == "on",
                note=request.form.get("note")
                or gettext("Factor %(key)s", key=key or (typed["key"] or "").strip()))
        except FormProblem as problem:
            errors[problem.field] = problem.message
        except fb.BuilderError as problem:
            field = "key" if problem.code == "duplicate_key" else "weight"
            errors[field] = problem.localized(request_locale())
        except specs.SpecValidationError as error:
            issues = problem_views(error.problems)
        except specs.SpecServiceError as error:
            errors["form"] = spec_error_message(error)
        else:
            flash(gettext("Draft version %(version)s saved. Check its impact, then activate it.",
                          version=saved.version), "success")
            return redirect(url_for("builder.overview"))
    return render_template("builder/factor.html", version=version, doc=doc, key=key, values=values,
                           errors=errors, issues=issues, normalisations=NORMALISATIONS,
                           field_types=FIELD_TYPES, new_field_rows=range(NEW_FIELD_ROWS),
                           levels=unit_service.levels(request_context())), (400 if errors or issues else 200)


@blueprint.route("/check", methods=["POST"])
@requires("spec.write")
def check() -> Any:
    """htmx: the expression's errors with their position, or its values on real units."""
    _model_or_404()
    text = (request.form.get("expression") or "").strip()
    if not text:
        return render_template("builder/_check.html", preview=None, text=text)
    try:
        new_fields = _new_fields(request.form)
    except FormProblem:
        new_fields = []
    depth = request.form.get("level", 2, type=int)
    preview = fb.check_expression(request_context(), text, depth, new_fields)
    summary = None
    if preview.error is not None:
        summary = ISSUE_SUMMARIES.get(f"expression.{preview.error.code}")
    return render_template("builder/_check.html", preview=preview, text=text,
                           error_summary=str(summary) if summary else None)


@blueprint.route("/weights", methods=["POST"])
@requires("spec.write")
def weights() -> Any:
    version = _model_or_404()
    doc = version.content
    try:
        new_weights = {f["key"]: _number(request.form, f"weight-{f['key']}", required=True)
                       for f in doc["factors"]}
        saved = fb.save_weights(request_context(), new_weights, gettext("Weights rebalanced"))
    except FormProblem as problem:
        flash(problem.message, "error")
    except fb.BuilderError as problem:
        flash(problem.localized(request_locale()), "error")
    except specs.SpecServiceError as error:
        flash(spec_error_message(error), "error")
    else:
        flash(gettext("Draft version %(version)s saved. Check its impact, then activate it.",
                      version=saved.version), "success")
    return redirect(url_for("builder.overview"))


@blueprint.route("/activate/<int:version>", methods=["POST"])
@requires("spec.write")
def activate(version: int) -> Any:
    try:
        commands.activate_spec(request_context(), specs.FACTOR_MODEL_KIND, fb.MODEL_KEY, version)
    except specs.SpecValidationError as error:
        for issue in problem_views(error.problems):
            flash(f"{issue['kind']}/{issue['key']} {issue['pointer']}: {issue['summary'] or issue['detail']}",
                  "error")
    except specs.SpecServiceError as error:
        flash(spec_error_message(error), "error")
    else:
        flash(gettext("Version %(version)s is now active: new plans use it.", version=version), "success")
    return redirect(url_for("builder.overview"))
