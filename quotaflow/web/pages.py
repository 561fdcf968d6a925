"""Pages: overview, the org browser (tree -> unit -> inputs and history), the audit log."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import current_principal, requires
from quotaflow.http.input_texts import pending_message
from quotaflow.services import commands
from quotaflow.services import org as org_service
from quotaflow.services import units as unit_service
from quotaflow.services.specs import field_labels
from quotaflow.web.context import current_locale
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period

blueprint = Blueprint("pages", __name__)


def input_error_message(error: org_service.InputError) -> str:
    return error.localized(request_locale())
AUDIT_PAGE_SIZE = 50


@blueprint.route("/")
@requires("unit.read")
def home() -> Any:
    principal = current_principal()
    roots = unit_service.scope_roots(request_context())
    return render_template("home.html", roots=roots, grants=principal.grants)


@blueprint.route("/org")
@requires("unit.read")
def org_tree() -> Any:
    ctx = request_context()
    roots = unit_service.scope_roots(ctx)
    counts = unit_service.child_counts(ctx, roots)
    return render_template("org/tree.html", roots=roots, counts=counts)


@blueprint.route("/org/search")
@requires("unit.read")
def org_search() -> Any:
    text = request.args.get("q", "").strip()[:unit_service.SEARCH_TEXT_MAX]
    results = unit_service.search(request_context(), text)
    return render_template("org/_search_results.html", results=results, text=text)


@blueprint.route("/org/<code>/children")
@requires("unit.read")
def org_children(code: str) -> Any:
    ctx = request_context()
    kids = unit_service.children(ctx, g.unit)
    return render_template("org/_children.html", units=kids, counts=unit_service.child_counts(ctx, kids))


@blueprint.route("/org/<code>", methods=["GET", "POST"])
@requires("unit.read", write="unit.write")
def org_unit(code: str) -> Any:
    unit = g.unit
    period, periods = chosen_period(request.values.get("period"))
    ctx = request_context()
    principal = ctx.principal
    form = CsrfOnlyForm()
    errors: dict[str, str] = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, gettext("The form expired. Reload the page and try again."))
        raw = {k.removeprefix("attr:"): v for k, v in request.form.items() if k.startswith("attr:")}
        try:
            values = org_service.parse_values(raw)
        except org_service.InputError as exc:
            errors[exc.field] = input_error_message(exc)
        else:
            try:
                saved = commands.set_attributes(ctx, unit, period, values)
            except org_service.InputCheckError as exc:
                errors[exc.params["field"]] = exc.localized(current_locale())
            else:
                if saved.pending:
                    flash(pending_message(saved.pending_flow_id), "warning")
                else:
                    flash(gettext("Saved."), "success")
                return redirect(url_for("pages.org_unit", code=unit.code, period=period.code))
    ancestors = unit_service.ancestors(ctx, unit)
    return render_template(
        "org/unit.html",
        unit=unit,
        period=period,
        periods=periods,
        attributes=unit_service.attributes(ctx, unit, period.id),
        labels=field_labels(ctx),
        history=unit_service.history(ctx, unit),
        children=unit_service.children(ctx, unit),
        ancestors=ancestors,
        can_write=principal.can("unit.write", unit.path),
        form=form,
        errors=errors,
    ), (400 if errors else 200)


@blueprint.route("/audit")
@requires("audit.read")
def audit_log() -> Any:
    page = max(0, request.args.get("page", 0, type=int))
    entries = unit_service.audit_page(request_context(), page, AUDIT_PAGE_SIZE)
    return render_template("audit.html", entries=entries, page=page,
                           has_more=len(entries) == AUDIT_PAGE_SIZE)
