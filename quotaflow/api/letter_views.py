"""Commitment letters in the API: my card and my team's, one card, sign, countersign, the
PDF. The twins of the /letters pages, calling the same use cases (services/letters.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import letter_reads
from quotaflow.services import letters as letter_service
from quotaflow.services.letter_pdf import FontMissingError


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def letter_json(letter: Any, actions: Any = None, *, content: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": letter.id, "unit": letter.unit.code, "plan_id": letter.plan_id,
        "version": letter.version, "status": letter.status,
        "target": (letter.content or {}).get("target"),
        "content_sha256": letter.content_sha256, "issued_at": _when(letter.issued_at),
        "superseded_by": letter.superseded_by_id,
        "signatures": [{"role": s.role, "user": s.user.username,
                        "signed_at": _when(s.signed_at), "content_sha256": s.content_sha256}
                       for s in letter.signatures],
        "pdf": f"/api/v1/letters/{letter.id}/pdf",
    }
    if actions is not None:
        out["can_sign"], out["can_countersign"] = actions["can_sign"], actions["can_countersign"]
    if content:
        out["content"] = letter.content
        out["intact"] = letter_service.verify(letter)
    return out


@api_blueprint.get("/letters")
@requires("unit.read")
def list_letters() -> Any:
    """My card and its history (sales people), and the cards of the teams I lead (team
    leads) or of my scope (others)."""
    ctx = request_context()
    history = letter_reads.my_history(ctx) or []

    def row(letter: Any) -> dict[str, Any]:
        return letter_json(letter, letter_reads.actions(ctx, letter))

    return jsonify({"mine": row(history[0]) if history else None,
                    "history": [letter_json(x) for x in history],
                    "team": [row(x) for x in letter_reads.team_letters(ctx)]})


@api_blueprint.get("/letters/<int:letter_id>")
@requires("unit.read")
def get_letter(letter_id: int) -> Any:
    ctx = request_context()
    letter = letter_reads.readable_letter(ctx, letter_id)
    return jsonify(letter_json(letter, letter_reads.actions(ctx, letter), content=True))


@api_blueprint.post("/letters/<int:letter_id>/sign")
@requires("unit.read", "unit.read")  # one's own card: the service checks whose
def sign_letter(letter_id: int) -> Any:
    ctx = request_context()
    letter_reads.sign(ctx, letter_id)
    return get_letter(letter_id)


@api_blueprint.post("/letters/<int:letter_id>/countersign")
@requires("unit.read", "unit.write")
def countersign_letter(letter_id: int) -> Any:
    ctx = request_context()
    letter_reads.countersign(ctx, letter_id)
    return get_letter(letter_id)


@api_blueprint.get("/letters/<int:letter_id>/pdf")
@requires("unit.read")
def letter_pdf(letter_id: int) -> Any:
    try:
        data, name = letter_service.letter_pdf(request_context(), letter_id,
                                               font=current_app.config.get("PDF_FONT"))
    except FontMissingError as exc:
        current_app.logger.error("letter PDF: %s", exc)
        raise ApiError(503, "pdf_unavailable", str(exc)) from None
    return Response(data, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "private, no-store"})
