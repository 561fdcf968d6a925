"""Configuration pages: specs by kind and key, their versions, a JSON editor, compare,
activate / roll back, and the whole configuration as one bundle file.

Issue messages: the rules engine reports each issue with a stable code and an English
message. Codes listed in ISSUE_SUMMARIES get a translated summary, shown with the
English detail and the JSON pointer; any other code shows the English message and the
pointer.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.errors import QuotaFlowError
from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import requires
from quotaflow.rules import SpecIssue
from quotaflow.services import bundle as bundle_service
from quotaflow.services import commands, spec_kinds
from quotaflow.services import periods as period_service
from quotaflow.services import specs as spec_service
from quotaflow.services.specs import SpecProblem, SpecServiceError, SpecValidationError

blueprint = Blueprint("config", __name__, url_prefix="/config")


KIND_LABELS = {
    spec_kinds.FACTOR_MODEL: _l("Factor model"),
    spec_kinds.SCENARIO_PRESETS: _l("Scenario presets"),
    spec_kinds.RISK_RULES: _l("Risk rules"),
    spec_kinds.FORM: _l("Form"),
    "flow": _l("Approval flow"),
    "notification_routes": _l("Notification routes"),
    "confirmation_policy": _l("Confirmation policy"),
    "pacing_curve": _l("Pacing curve"),
    "alert_rules": _l("Alert rules"),
    "remedies": _l("Remedy catalogue"),
    "whatif_policy": _l("What-if policy"),
}
STATUS_LABELS = {"draft": _l("Draft"), "active": _l("Active"), "retired": _l("Retired")}
CHANGE_LABELS = {"added": _l("added"), "removed": _l("removed"), "changed": _l("changed")}
IMPORT_LABELS = {"unchanged": _l("unchanged"), "activated": _l("existing version activated"),
                 "created": _l("new version created and activated")}


_TOO_SMALL = _l("This value is too small.")
_TOO_LARGE = _l("This value is too large.")
_TOO_COMPLEX = _l("The expression is too long or too complex.")
ISSUE_SUMMARIES = {
    "schema.required": _l("A required entry is missing."),
    "schema.type": _l("This value has the wrong type."),
    "schema.enum": _l("This value is not one of the allowed choices."),
    "schema.const": _l("This value is not the expected one."),
    "schema.additionalProperties": _l("This entry is not allowed here (check the spelling)."),
    "schema.minimum": _TOO_SMALL,
    "schema.exclusiveMinimum": _TOO_SMALL,
    "schema.maximum": _TOO_LARGE,
    "schema.exclusiveMaximum": _TOO_LARGE,
    "schema.pattern": _l("This text does not have the expected form."),
    "schema.minItems": _l("This list needs more items."),
    "schema.minLength": _l("This text is too short."),
    "schema.maxLength": _l("This text is too long."),
    "duplicate": _l("This name or key is used twice."),
    "range": _l("The minimum is above the maximum."),
    "type": _l("The default does not fit the field's type."),
    "unknown_field": _l("This factor uses a field the model does not declare."),
    "unlisted_field": _l("The expression reads a field that is not in the factor's fields list."),
    "unknown_factor": _l("This names a factor the model does not have."),
    "missing_weight": _l("This factor has no weight."),
    "weights_total": _l("The weights must total 100%."),
    "weights_range": _l("A tilted weight would fall outside 0–100%."),
    "unknown_level": _l("This names an org level the model does not have."),
    "unknown_preset": _l("The default preset is not defined."),
    "message": _l("The message uses an unknown placeholder."),
    "scale": _l("A scale applies to score factors only."),
    "expression.syntax": _l("The expression cannot be read."),
    "expression.forbidden": _l("The expression uses something that is not allowed."),
    "expression.unknown_name": _l("The expression uses an unknown name."),
    "expression.unknown_function": _l("The expression calls an unknown function."),
    "expression.arity": _l("A function is called with the wrong number of arguments."),
    "expression.type": _l("The expression gives the wrong kind of value."),
    "expression.too_long": _TOO_COMPLEX,
    "expression.too_deep": _TOO_COMPLEX,
    "expression.too_many_nodes": _TOO_COMPLEX,
    "not_object": _l("A spec is a JSON object ({ … })."),
    "no_active_model": _l("There is no active factor model to check this spec against."),
    "unavailable": _l("This kind of spec cannot be checked yet."),
    "not_json": _l("This is not valid JSON."),
    "hash_mismatch": _l("The content does not match its hash."),
    "unknown_kind": _l("Unknown spec kind."),
    "bad_key": _l("Keys are lower-case letters, digits, “_”, “-” and “.”."),
    # Approval flows (quotaflow.flows.spec)
    "duplicate_id": _l("This node id is already used."),
    "start": _l("A flow needs exactly one start node."),
    "unknown_target": _l("This edge leads to a node that does not exist."),
    "dead_end": _l("This node leads nowhere: add “next”."),
    "cycle": _l("This edge closes a loop; send work back with a return action instead."),
    "unreachable": _l("This node cannot be reached from the start."),
    "unknown_action": _l("This action is not known to QuotaFlow."),
    "escalate_to": _l("Escalation needs “escalate_to”."),
    "due_hours": _l("A due action needs “due_hours”."),
    # Forms (quotaflow.forms.spec)
    "bad_field_name": _l("Field names are lower-case letters, digits and _, starting with a letter."),
    "widget_mismatch": _l("This widget cannot edit a field of this type."),
    "no_enum": _l("Option labels need a field with a list of choices."),
    "unknown_option": _l("This labels a choice the field does not have."),
    "unknown_role": _l("This names a role QuotaFlow does not have."),
    "unsupported_type": _l("No widget can edit this field's type; name one in ui.widgets."),
    "not_numeric": _l("This needs a number field."),
    # Notification routes (quotaflow.services.outbox)
    "unknown_channel": _l("No installed plugin provides this channel."),
    "unknown_topic": _l("This pattern matches no event topic QuotaFlow sends."),
}


def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


def spec_error_message(error: SpecServiceError) -> str:
    return error.localized(request_locale())


def issue_view(issue: SpecIssue, kind: str = "", key: str = "") -> dict[str, Any]:
    """An issue for a template: translated summary (when the code is known), English detail."""
    summary = ISSUE_SUMMARIES.get(issue.code)
    return {"pointer": issue.pointer or "/", "column": issue.column, "code": issue.code,
            "summary": str(summary) if summary is not None else None, "detail": issue.message,
            "kind": kind, "key": key}


def problem_views(problems: list[SpecProblem]) -> list[dict[str, Any]]:
    return [issue_view(p.issue, p.kind, p.key) for p in problems]


def json_issue(exc: json.JSONDecodeError) -> SpecIssue:
    return SpecIssue("", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                     "not_json", exc.colno)


def _kind_or_404(kind: str) -> spec_kinds.SpecKind:
    found = spec_kinds.get(kind)
    if found is None:
        abort(404)
    return found


def _versions_or_404(kind: str, key: str) -> list[Any]:
    _kind_or_404(kind)
    found = spec_service.versions(request_context().session, kind, key)
    if not found:
        abort(404)
    return found


def _pretty(content: Any) -> str:
    return json.dumps(content, ensure_ascii=False, indent=2)


@blueprint.app_template_filter("compact_json")
def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _render_index(issues: list[dict[str, Any]] | None = None, status: int = 200) -> Any:
    return render_template(
        "config/index.html", summaries=spec_service.summaries(request_context().session),
        kinds=spec_kinds.kinds(), kind_label=kind_label, issues=issues or [],
        planning=period_service.planning_choice(request_context()),
    ), status


@blueprint.get("")
@requires("spec.read")
def index() -> Any:
    return _render_index()


@blueprint.post("/planning-period")
@requires("period.plan")
def set_planning_period() -> Any:
    """Choose the period pages, the API and the CLI plan for when none is named."""
    try:
        chosen = period_service.set_planning_period(request_context(), request.form.get("period"))
    except QuotaFlowError as exc:
        flash(exc.localized(request_locale()), "error")
        return redirect(url_for("config.index"))
    flash(gettext("The planning period is now %(code)s.", code=chosen.code), "success")
    return redirect(url_for("config.index"))


@blueprint.get("/bundle.json")
@requires("spec.read")
def export_bundle() -> Any:
    text = bundle_service.dumps(bundle_service.export_bundle(request_context().session))
    name = f"quotaflow-config-{dt.date.today().isoformat()}.json"
    return Response(text, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blueprint.post("/bundle")
@requires("spec.write")
def import_bundle() -> Any:
    upload = request.files.get("bundle")
    if upload is None or not upload.filename:
        flash(gettext("Choose a bundle file to upload."), "error")
        return redirect(url_for("config.index"))
    raw = upload.stream.read(bundle_service.MAX_BUNDLE_BYTES + 1)
    if len(raw) > bundle_service.MAX_BUNDLE_BYTES:
        flash(gettext("The file is larger than %(size)s MB.", size=bundle_service.MAX_BUNDLE_BYTES // 2**20), "error")
        return redirect(url_for("config.index"))
    try:
        done = commands.import_bundle(request_context(), bundle_service.parse(raw))
    except bundle_service.BundleError as exc:
        flash(gettext("The bundle was refused; nothing was imported."), "error")
        return _render_index(problem_views(exc.problems), 422)
    for item in done:
        flash(gettext("%(kind)s %(key)s: version %(version)s, %(action)s.", kind=kind_label(item.kind),
                      key=item.key, version=item.version, action=IMPORT_LABELS[item.action]),
              "success")
    return redirect(url_for("config.index"))


@blueprint.get("/new")
@requires("spec.write")
def start() -> Any:
    """Start a spec under a new key: checks the kind and key, then opens the editor."""
    kind, key = request.args.get("kind", ""), request.args.get("key", "").strip()
    if spec_kinds.get(kind) is None:
        flash(spec_error_message(SpecServiceError("unknown_kind", kind=kind)), "error")
        return redirect(url_for("config.index"))
    if not spec_kinds.valid_key(key):
        flash(spec_error_message(SpecServiceError("bad_key", key=key)), "error")
        return redirect(url_for("config.index"))
    return redirect(url_for("config.editor", kind=kind, key=key))


def _render_spec(kind: str, key: str, all_versions: list[Any],
                 issues: list[dict[str, Any]] | None = None, status: int = 200) -> Any:
    numbers = [v.version for v in all_versions]
    active = next((v for v in all_versions if v.status == "active"), None)
    newest = all_versions[0]
    default_a = active.version if active and active is not newest else (
        numbers[1] if len(numbers) > 1 else newest.version)
    a = request.args.get("a", type=int, default=default_a)
    b = request.args.get("b", type=int, default=newest.version)
    by_number = {v.version: v for v in all_versions}
    changes = None
    if "a" in request.args or "b" in request.args:
        if a not in by_number or b not in by_number:
            abort(404)
        changes = spec_service.diff_versions(by_number[a], by_number[b])
    return render_template(
        "config/spec.html", kind=kind, key=key, kind_label=kind_label(kind),
        versions=all_versions, active=active, numbers=numbers, a=a, b=b, changes=changes,
        status_labels=STATUS_LABELS, change_labels=CHANGE_LABELS, issues=issues or [],
    ), status


@blueprint.get("/<kind>/<key>")
@requires("spec.read")
def spec(kind: str, key: str) -> Any:
    return _render_spec(kind, key, _versions_or_404(kind, key))


@blueprint.get("/<kind>/<key>/versions/<int:version>")
@requires("spec.read")
def version(kind: str, key: str, version: int) -> Any:
    all_versions = _versions_or_404(kind, key)
    found = next((v for v in all_versions if v.version == version), None)
    if found is None:
        abort(404)
    return render_template("config/version.html", kind=kind, key=key, kind_label=kind_label(kind),
                           spec=found, content=_pretty(found.content), status_labels=STATUS_LABELS)


@blueprint.post("/<kind>/<key>/versions/<int:version>/activate")
@requires("spec.write")
def activate(kind: str, key: str, version: int) -> Any:
    all_versions = _versions_or_404(kind, key)
    if version not in {v.version for v in all_versions}:
        abort(404)
    try:
        commands.activate_spec(request_context(), kind, key, version)
    except SpecValidationError as exc:
        flash(gettext("Version %(version)s was not activated: it, or a spec that depends on it, "
                      "would be invalid.", version=version), "error")
        return _render_spec(kind, key, all_versions, problem_views(exc.problems), 422)
    except SpecServiceError as exc:
        flash(spec_error_message(exc), "error")
        return redirect(url_for("config.spec", kind=kind, key=key))
    flash(gettext("Version %(version)s is now active.", version=version), "success")
    return redirect(url_for("config.spec", kind=kind, key=key))


@blueprint.route("/<kind>/<key>/new", methods=["GET", "POST"])
@requires("spec.write")
def editor(kind: str, key: str) -> Any:
    _kind_or_404(kind)
    if not spec_kinds.valid_key(key):
        abort(404)
    existing = spec_service.versions(request_context().session, kind, key)
    active = next((v for v in existing if v.status == "active"), None)
    issues: list[dict[str, Any]] = []
    error = None
    note = ""
    if request.method == "POST":
        text = request.form.get("content", "")
        note = request.form.get("note", "").strip()[:500]
        activate_now = request.form.get("action") == "activate"
        try:
            content = json.loads(text)
        except json.JSONDecodeError as exc:
            issues = [issue_view(json_issue(exc))]
        else:
            try:
                saved = commands.save_spec(request_context(), kind, key, content, note,
                                           activate=activate_now)
            except SpecValidationError as exc:
                issues = problem_views(exc.problems)
            except SpecServiceError as exc:
                error = spec_error_message(exc)
            else:
                message = (gettext("Saved and activated version %(version)s.", version=saved.version)
                           if activate_now else
                           gettext("Saved version %(version)s as a draft.", version=saved.version))
                flash(message, "success")
                return redirect(url_for("config.spec", kind=kind, key=key))
    else:
        text = _starting_text(kind, key, active)
    return render_template(
        "config/editor.html", kind=kind, key=key, kind_label=kind_label(kind), text=text,
        note=note, active=active, is_new=not existing, issues=issues, error=error,
    ), (422 if issues or error else 200)


def _starting_text(kind: str, key: str, active: Any) -> str:
    """The active content, else (a new key) the default key's active content as a start."""
    if active is not None:
        return _pretty(active.content)
    template = spec_service.active_version(request_context().session, kind, spec_kinds.DEFAULT_MODEL_KEY)
    return _pretty(template.content) if template is not None else "{}"
