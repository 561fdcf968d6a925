"""Commitment letter pages: "My commitment" (the current card, "I commit", the history),
the team's cards for a team lead (countersign with htmx), one printable card and its PDF.

A card is visible to whoever may read its unit (out of scope looks absent: 404); only
the person signs it and only the team lead over the person's team countersigns it
(anyone else: 403). The service decides; these views only map its answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import requires
from quotaflow.services import letter_reads
from quotaflow.services import letters as letter_service
from quotaflow.services.letter_pdf import FontMissingError
from quotaflow.services.letters import CommitmentLetter

blueprint = Blueprint("letters", __name__)

STATUS_LABELS = {
    "issued": _l("Awaiting signature"),
    "signed": _l("Signed, awaiting countersignature"),
    "countersigned": _l("Countersigned"),
    "superseded": _l("Superseded"),
}
ROLE_LABELS = {"person": _l("I commit"), "manager": _l("Manager's countersignature")}
FORBIDDEN = {"not_yours", "not_manager"}
TEAM_LIMIT = 500


def _zh() -> bool:
    return str(get_locale() or "zh").startswith("zh")


@blueprint.app_template_filter("letter_month")
def letter_month(value: str) -> str:
    """"2026-10" as 2026年10月 or Oct 2026."""
    year, month = (int(x) for x in value.split("-"))
    return f"{year}年{month}月" if _zh() else dt.date(year, month, 1).strftime("%b %Y")


@blueprint.app_template_filter("letter_time")
def letter_time(value: dt.datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.removesuffix("Z"))
    # In the app's time zone, with its offset: the PDF states the same moment in UTC.
    return format_datetime(value.replace(tzinfo=dt.UTC), "yyyy-MM-dd HH:mm 'UTC'xxx")


@blueprint.app_context_processor
def _labels() -> dict[str, Any]:
    return {"letter_status_labels": STATUS_LABELS, "letter_role_labels": ROLE_LABELS}


def _actions(letter: CommitmentLetter) -> dict[str, bool]:
    return letter_reads.actions(request_context(), letter)


def _letter(letter_id: int) -> CommitmentLetter:
    # Out of read scope looks the same as absent, so ids cannot be probed (NotFound: 404).
    return letter_reads.readable_letter(request_context(), letter_id)


# -- pages -----------------------------------------------------------------------------

@blueprint.route("/letters")
@requires("unit.read")
def index() -> Any:
    """My commitment (a sales person's current card and history) and the cards of the
    teams the user leads or can read, with countersign buttons where they may."""
    ctx = request_context()
    history = letter_reads.my_history(ctx)
    mine = history[0] if history else None
    # Team leads: their teams; region heads, HR, executives: their scope; a sales person
    # sees their own cards only.
    team = [(x, _actions(x)) for x in letter_reads.team_letters(ctx, limit=TEAM_LIMIT)]
    return render_template(
        "letters/index.html", mine=mine, history=history or [],
        mine_actions=_actions(mine) if mine else {}, team=team,
        is_lead=letter_reads.is_lead(ctx), is_person=current_user.person_unit_id is not None)


@blueprint.route("/letters/<int:letter_id>")
@requires("unit.read")
def letter_page(letter_id: int) -> Any:
    letter = _letter(letter_id)
    history = letter_reads.history(request_context(), letter.unit_id)
    return render_template("letters/letter.html", letter=letter, c=letter.content,
                           actions=_actions(letter), history=history,
                           intact=letter_service.verify(letter))


def _respond(letter: CommitmentLetter, error: str | None = None) -> Any:
    """htmx: the swapped part (a team row or the card's signatures); else a redirect."""
    if request.headers.get("HX-Request"):
        template = ("letters/_team_row.html" if request.form.get("view") == "row"
                    else "letters/_signatures.html")
        return render_template(template, letter=letter, c=letter.content,
                               actions=_actions(letter), error=error)
    if error:
        flash(error, "error")
    return redirect(url_for("letters.letter_page", letter_id=letter.id))


def _act(letter_id: int, role: str) -> Any:
    letter = _letter(letter_id)
    action = letter_reads.sign if role == "person" else letter_reads.countersign
    try:
        action(request_context(), letter.id)
    except letter_service.LetterError as exc:  # the use case rolled back
        if exc.code in FORBIDDEN:
            abort(403)
        letter = _letter(letter_id)
        return _respond(letter, exc.localized(request_locale()))
    if not request.headers.get("HX-Request"):
        flash(gettext("Signed.") if role == "person" else gettext("Countersigned."), "success")
    return _respond(letter)


@blueprint.route("/letters/<int:letter_id>/sign", methods=["POST"])
@requires("unit.read", "unit.read")  # signing one's own card: the service checks whose
def sign_letter(letter_id: int) -> Any:
    return _act(letter_id, "person")


@blueprint.route("/letters/<int:letter_id>/countersign", methods=["POST"])
@requires("unit.read", "unit.write")
def countersign_letter(letter_id: int) -> Any:
    return _act(letter_id, "manager")


@blueprint.route("/letters/<int:letter_id>.pdf")
@requires("unit.read")
def letter_pdf(letter_id: int) -> Any:
    try:
        data, name = letter_service.letter_pdf(request_context(), letter_id,
                                               font=current_app.config.get("PDF_FONT"))
    except FontMissingError as exc:
        current_app.logger.error("letter PDF: %s", exc)
        return render_template("error.html", status=503,
                               title=gettext("PDF not available"), message=str(exc)), 503
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store"})

