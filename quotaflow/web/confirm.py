"""Two-way confirmation pages: my confirmations (accept / appeal), the appeal form, an
appeal, the alignment dashboard of a period, publishing a plan and comparing versions."""

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
from flask_login import current_user

from quotaflow.forms import build_form, coerce_and_validate
from quotaflow.http.context import request_context
from quotaflow.http.guard import requires
from quotaflow.services import alignment as alignment_service
from quotaflow.services import appeal_check as appeal_checks
from quotaflow.services import commands, confirmation_reads, flow_reads, plan_reads
from quotaflow.services import confirmation as conf
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service
from quotaflow.services import uploads as upload_service
from quotaflow.services.plans import Plan
from quotaflow.web.collect import translate_errors
from quotaflow.web.context import current_locale as _locale
from quotaflow.web.context import is_htmx as _htmx
from quotaflow.web.forms import CsrfOnlyForm
from quotaflow.web.periods import chosen_period
from quotaflow.web.uploads import save_file, upload_error_message

blueprint = Blueprint("confirm", __name__)
DIFF_ROWS = 500  # rows a diff page shows (changed units come first)

ITEM_STATUS = {"pending": _l("Waiting for your answer"), "accepted": _l("Accepted"),
               "appealed": _l("Appeal under review")}
APPEAL_STATUS = {"open": _l("Under review"), "approved": _l("Approved"),
                 "rejected": _l("Rejected"), "withdrawn": _l("Withdrawn")}
GROUP_STATUS = {"open": _l("Being confirmed"), "settled": _l("Settled")}


def error_message(error: conf.ConfirmationError) -> str:
    return error.localized(_locale())


def _me() -> Any:
    return current_user._get_current_object()


@blueprint.app_template_filter("plan_note")
def plan_note(plan: Plan) -> str:
    """A plan version's note in the reader's language: a version made by an approved
    appeal or an emergency recompute is described from its structured summary (the unit
    and amounts of an appeal only to readers of that unit); else the note as written."""
    note = (plan.summary or {}).get("version_note")
    if not isinstance(note, dict):
        return plan.note or ""
    if note.get("kind") == "emergency":
        return gettext("Emergency recompute #%(id)s: %(reason)s", id=note.get("request_id"),
                       reason=note.get("reason") or "")
    if note.get("kind") == "appeal":
        code = str(note.get("unit") or "")
        unit = (unit_service.readable_units_by_codes(request_context(), [code]).get(code)
                if code else None)
        if unit is not None:
            return gettext("New version after appeal #%(id)s of %(unit)s was approved: "
                           "from %(old)s to %(new)s yuan.", id=note.get("appeal_id"),
                           unit=unit.name(_locale()), old=f"{int(note['old']):,}",
                           new=f"{int(note['new']):,}")
        return gettext("New version after appeal #%(id)s was approved.",
                       id=note.get("appeal_id"))
    return plan.note or ""




@blueprint.app_context_processor
def _labels() -> dict[str, Any]:
    return {"item_status_labels": ITEM_STATUS, "appeal_status_labels": APPEAL_STATUS,
            "group_status_labels": GROUP_STATUS}


def _my_item(item_id: int) -> Any:
    """The item, if the signed-in user answers for it; 404 otherwise (no probing)."""
    return confirmation_reads.my_item(request_context(), item_id)


# -- my confirmations ---------------------------------------------------------------------

@blueprint.route("/confirm")
@requires("unit.confirm")
def my_confirmations() -> Any:
    rows = conf.my_items(request_context(), _me())
    periods = sorted({r.period_code for r in rows}, reverse=True)
    # The notifications link here with ?period=: show that period's targets only.
    period = request.args.get("period") or None
    if period is not None:
        rows = [r for r in rows if r.period_code == period]
    return render_template("confirm/mine.html", rows=rows, form=CsrfOnlyForm(),
                           periods=periods, period=period)


@blueprint.route("/confirm/items/<int:item_id>/accept", methods=["POST"])
@requires("unit.confirm")
def accept(item_id: int) -> Any:
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    item = _my_item(item_id)
    error = None
    try:
        commands.accept(request_context(), item.id, version=request.form.get("version", type=int))
    except conf.ConfirmationError as exc:
        error = error_message(exc)
    item = confirmation_reads.item(request_context(), item_id)
    if _htmx():
        return render_template("confirm/_item.html", row=conf.MyItem(
            item, item.group.period.code, None), form=form, error=error)
    if error:
        flash(error, "error")
    else:
        flash(gettext("You accepted the target of %(unit)s.", unit=item.unit.name(_locale())),
              "success")
    return redirect(url_for("confirm.my_confirmations", period=item.group.period.code))


@blueprint.route("/confirm/accept-all", methods=["POST"])
@requires("unit.confirm")
def accept_all() -> Any:
    """Accept every target the page listed as waiting (ids with the versions shown), once
    the head ticked that they reviewed them; all or nothing."""
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    back = redirect(url_for("confirm.my_confirmations", period=request.args.get("period")))
    answers: list[tuple[int, int | None]] = []
    for raw in request.form.getlist("item"):
        item_id, _, version = raw.partition(":")
        if item_id.isdigit():
            answers.append((int(item_id), int(version) if version.isdigit() else None))
    if not answers:
        flash(gettext("Nothing was selected to accept."), "error")
        return back
    if request.form.get("reviewed") != "yes":
        flash(gettext("Tick the box to confirm that you reviewed the %(count)s targets.",
                      count=len(answers)), "error")
        return back
    for item_id, _version in answers:
        _my_item(item_id)  # someone else's item looks absent
    try:
        accepted = commands.accept_many(request_context(), answers)
    except conf.ConfirmationError as exc:
        flash(error_message(exc) + " " + gettext("Nothing was accepted."), "error")
    else:
        flash(gettext("You accepted %(count)s targets.", count=len(accepted)), "success")
    return back


# -- the appeal form ----------------------------------------------------------------------

def _evidence_ids(unit: Any) -> tuple[list[int], list[str]]:
    """Upload ids already attached (hidden fields) and newly posted files, stored now."""
    ids: list[int] = []
    errors: list[str] = []
    for raw in request.form.getlist("evidence_id"):
        if raw.isdigit():
            upload = upload_service.visible_upload(request_context(), int(raw))
            if upload is not None and upload.unit_id == unit.id:
                ids.append(upload.id)
    for storage in request.files.getlist("evidence"):
        if storage is None or not storage.filename:
            continue
        try:
            ids.append(save_file(unit, storage).id)
        except upload_service.UploadError as exc:
            errors.append(upload_error_message(exc))
    return ids, errors


def _preattached(unit: Any, raw_ids: list[str]) -> list[int]:
    """Upload ids from ``?evidence=`` that the user may see and that belong to ``unit``
    (anything else is ignored, as a hidden ``evidence_id`` would be on post)."""
    ids: list[int] = []
    for raw in raw_ids:
        if not raw.isdigit() or int(raw) in ids:
            continue
        upload = upload_service.visible_upload(request_context(), int(raw))
        if upload is not None and upload.unit_id == unit.id:
            ids.append(upload.id)
    return ids


@blueprint.route("/confirm/items/<int:item_id>/appeal", methods=["GET", "POST"])
@requires("unit.confirm")
def appeal(item_id: int) -> Any:
    item = _my_item(item_id)
    csrf = CsrfOnlyForm()
    try:
        bounds = confirmation_reads.appeal_bounds(request_context(), item)
    except conf.ConfirmationError as exc:
        flash(error_message(exc), "error")
        return redirect(url_for("confirm.my_confirmations", period=item.group.period.code))
    spec = conf.appeal_form_spec(bounds)
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    evidence: list[int] = []
    status = 200
    if request.method == "GET":
        # Pre-attached evidence (e.g. a what-if snapshot): a visible upload of this unit.
        evidence = _preattached(item.unit, request.args.getlist("evidence"))
    if request.method == "POST":
        if not csrf.validate_on_submit():
            abort(400, gettext("The form expired. Reload the page and try again."))
        evidence, file_errors = _evidence_ids(item.unit)
        data, field_errors = coerce_and_validate(spec, request.form.to_dict(), roles=set())
        errors = translate_errors(field_errors)
        requested_error = field_errors.get("/requested")
        if requested_error is not None and requested_error.code in ("minimum", "maximum"):
            # Name both ends of the range, as the server's own check does.
            errors["/requested"] = error_message(conf.ConfirmationError(
                "out_of_range", "/requested", field="requested", minimum=bounds.minimum,
                maximum=bounds.maximum, allocated=bounds.allocated,
                range=f"{bounds.range_percent:g}"))
        if file_errors:
            errors["/evidence"] = " ".join(file_errors)
        if not errors:
            try:
                commands.submit_appeal(request_context(), item.id, requested=data.get("requested"),
                                       reason=data.get("reason"), evidence=evidence,
                                       version=request.form.get("version", type=int))
            except conf.ConfirmationError as exc:
                errors[exc.pointer or ""] = error_message(exc)
            else:
                flash(gettext("Your appeal for %(unit)s was sent for approval.",
                              unit=item.unit.name(_locale())), "success")
                # Back to the period the appeal belongs to, not every period's list.
                return redirect(url_for("confirm.my_confirmations",
                                        period=item.group.period.code))
        status = 422
    evidence_error = errors.pop("/evidence", None)
    general = errors.pop("", None)
    view = build_form(spec, data, errors, roles=set(), locale=_locale())
    files = [upload_service.get_upload(request_context().session, i) for i in evidence]
    return render_template(
        "confirm/appeal.html", item=item, bounds=bounds, form=view, csrf=csrf,
        evidence_error=evidence_error, general_error=general, files=files,
        accept=upload_service.ACCEPT), status


@blueprint.route("/confirm/items/<int:item_id>/appeal/check")
@requires("unit.confirm")
def appeal_check(item_id: int) -> Any:
    """The live line under the requested target: the change and whether it is allowed."""
    check = appeal_checks.appeal_check(request_context(), item_id,
                                       request.args.get("requested", ""))
    error = error_message(check.error) if check.error is not None else None
    return render_template("confirm/_check.html", bounds=check.bounds, change=check.change,
                           error=error)


@blueprint.route("/confirm/appeals/<int:appeal_id>")
@requires("unit.read")
def appeal_detail(appeal_id: int) -> Any:
    ctx = request_context()
    found = confirmation_reads.readable_appeal(ctx, appeal_id)
    files = [upload_service.visible_upload(ctx, i) for i in (found.evidence or [])]
    # The link to the approval only for those who may open it (else it would be a 404).
    flow_visible = flow_reads.instance_if_visible(ctx, found.flow_instance_id) is not None
    return render_template("confirm/appeal_detail.html", appeal=found,
                           files=[f for f in files if f is not None], flow_visible=flow_visible)


# -- alignment ----------------------------------------------------------------------------

@blueprint.route("/confirm/alignment")
@requires("alignment.read")
def alignment() -> Any:
    period, periods = chosen_period(request.args.get("period"))
    ctx = request_context()
    stats = alignment_service.period_alignment(ctx, period)
    plan = plan_reads.published_plan(ctx, period.id)
    return render_template("confirm/alignment.html", period=period, periods=periods,
                           stats=stats, plan=plan,
                           levels={lv.key: lv for lv in unit_service.levels(ctx)},
                           appeals=confirmation_reads.period_appeals(ctx, period.id))


# -- publishing and comparing plan versions -----------------------------------------------

def _plan(plan_id: int) -> Plan:
    return plan_reads.plan(request_context(), plan_id)


@blueprint.route("/plans/<int:plan_id>/publish", methods=["POST"])
@requires("plan.publish")
def publish(plan_id: int) -> Any:
    form = CsrfOnlyForm()
    if not form.validate_on_submit():
        abort(400, gettext("The form expired. Reload the page and try again."))
    plan = _plan(plan_id)
    try:
        commands.publish_plan(request_context(), plan)
    except conf.ConfirmationError as exc:
        flash(error_message(exc), "error")
    else:
        flash(gettext("Plan %(number)s is published; the regions are asked to confirm their "
                      "targets.", number=plan.number), "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id))


@blueprint.route("/plans/<int:plan_id>/diff")
@requires("unit.read")
def plan_diff(plan_id: int) -> Any:
    found = plan_service.compare_plans(request_context(), plan_id,
                                       request.args.get("against", type=int), limit=DIFF_ROWS)
    return render_template("confirm/diff.html", old=found.old, new=found.new, rows=found.rows,
                           total=found.total, changed=found.changed, versions=found.versions)
