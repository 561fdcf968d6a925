"""Data collection: the inputs form generated from the active factor model.

/collect lists the units whose inputs the user fills in (their write scope, at the
levels their role collects) with how complete each one is for the planning period;
/collect/<code> shows and saves one unit's form. Field errors come back beside each
field in the user's language; nothing is saved while any remains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from quotaflow.forms import ROW_ACTION, FieldError, apply_row_action, build_form
from quotaflow.http.context import request_context
from quotaflow.http.guard import current_principal, requires
from quotaflow.http.input_texts import pending_message
from quotaflow.services import forms as forms_service
from quotaflow.services.input_check import InputCheckError
from quotaflow.web.context import current_locale as _locale
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period
from quotaflow.web.uploads import form_items_with_files

blueprint = Blueprint("collect", __name__, url_prefix="/collect")



def field_error_message(error: FieldError) -> str:
    """The translated message for a form field error (code + params)."""
    return forms_service.field_message(error, _locale())


def translate_errors(errors: Mapping[str, FieldError]) -> dict[str, str]:
    return {where: field_error_message(e) for where, e in errors.items()}


@blueprint.route("")
@requires("unit.write")
def index() -> Any:
    """The units to fill in, with how complete their inputs are."""
    period, periods = chosen_period(request.args.get("period"))
    listed = forms_service.collect_list(request_context(), period)
    version, progress = listed.version, listed.progress
    return render_template(
        "collect/index.html", period=period, periods=periods, version=version, progress=progress,
        complete=sum(1 for p in progress if p.complete),
    )


@blueprint.route("/<code>", methods=["GET", "POST"])
@requires("unit.write")
def unit_form(code: str) -> Any:
    """One unit's inputs form: prefilled with its values; POST validates and saves.

    The form carries the version it was drawn from; a POST against an older version is
    refused (409) rather than saved under fields that changed meanwhile."""
    unit = g.unit
    principal = current_principal()
    ctx = request_context()
    version = forms_service.collected_form(ctx, unit)  # 404 at a level not collected
    # The period is in the URL (the form posts back to it): a save lands where it was read.
    period, _periods = chosen_period(request.args.get("period"))
    spec = version.content
    roles = forms_service.unit_roles(principal, unit)
    current = forms_service.current_inputs(ctx, spec, unit, period)
    data: Mapping[str, Any] = current
    errors: dict[str, str] = {}
    status = 200
    csrf = CsrfOnlyForm()
    if request.method == "POST":
        if not csrf.validate_on_submit():
            abort(400, gettext("The form expired. Reload the page and try again."))
        items, errors = form_items_with_files(spec, unit)
        pinned = request.form.get("form_version", type=int)
        try:
            checked = forms_service.check_unit_form(ctx, unit, period, pinned, items)
        except forms_service.FormRefused as refused:  # a stale version: show the current form
            flash(refused.localized(_locale()), "error")
            status = 409
        else:
            data = checked.data
            action = request.form.get(ROW_ACTION)
            if action:
                # Adding or removing a row re-shows the form; nothing is saved yet.
                data = apply_row_action(spec, data, action) or data
                errors = {}
            else:
                errors = {**translate_errors(checked.errors), **errors}
                if not errors:
                    try:
                        saved = forms_service.submit_unit_form(ctx, unit, period, pinned, items)
                    except InputCheckError as exc:  # the model's field check, as on every path
                        errors = {exc.params["field"]: exc.localized(_locale())}
                    else:
                        if saved.pending:  # published plan: the change awaits approval
                            flash(pending_message(saved.saved.pending_flow_id), "warning")
                        else:
                            flash(gettext("Saved the inputs of %(unit)s.",
                                          unit=unit.name(_locale())), "success")
                        return redirect(url_for("collect.unit_form", code=unit.code,
                                                period=period.code))
    view = build_form(spec, data, errors, roles=roles, locale=_locale())
    return render_template(
        "collect/unit.html", unit=unit, period=period, version=version, form=view, csrf=csrf,
    ), (400 if errors else status)

