"""Uploading files for a unit and fetching them back, only within scope.

GET /uploads/<id> has no ``code`` view argument, so the guard checks only that the
user reads units somewhere; the view then checks the upload's own unit and answers
404 outside the user's scope (the same answer as for an id that does not exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, request, send_file, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge

from quotaflow.forms.spec import form_fields
from quotaflow.http.context import request_context, request_locale
from quotaflow.http.guard import current_principal, requires
from quotaflow.rules.specs import pointer
from quotaflow.services import commands
from quotaflow.services import units as unit_service
from quotaflow.services import uploads as upload_service
from quotaflow.services.uploads import OrgUnit, Upload

blueprint = Blueprint("uploads", __name__, url_prefix="/uploads")



def upload_error_message(error: upload_service.UploadError) -> str:
    return error.localized(request_locale())


def storage_dir() -> Path:
    return upload_service.storage_dir(current_app.instance_path)


def max_upload_bytes() -> int:
    return upload_service.max_bytes(current_app.config)


def visible(upload: Upload | None) -> bool:
    return upload_service.can_see(request_context(), upload)


def save_file(unit: OrgUnit, storage: Any) -> Upload:
    """Store a werkzeug ``FileStorage`` for ``unit``; raises ``UploadError``."""
    return commands.store_upload(request_context(), unit, storage.filename or "", storage.stream,
                                 storage_dir=storage_dir(), max_bytes=max_upload_bytes())


def form_items_with_files(spec: Mapping[str, Any], unit: OrgUnit
                          ) -> tuple[dict[str, Any], dict[str, str]]:
    """The posted form's items with each file widget's new file stored as an upload id.

    A field keeps the id the page already showed when no new file is chosen, but only
    if the user may see that upload. A stored file stays stored if the rest of the form
    is refused, so the page can show it again without asking for it twice.
    """
    items: dict[str, Any] = request.form.to_dict()
    errors: dict[str, str] = {}
    for fs in form_fields(spec):
        if fs.widget != "file":
            continue
        storage = request.files.get(fs.path)
        if storage is not None and storage.filename:
            try:
                items[fs.path] = str(save_file(unit, storage).id)
            except upload_service.UploadError as exc:
                errors[pointer(fs.path)] = upload_error_message(exc)
        elif str(items.get(fs.path, "")).strip():
            raw = str(items[fs.path]).strip()
            upload = (upload_service.visible_upload(request_context(), int(raw))
                      if raw.isdigit() else None)
            if upload is None:
                errors[pointer(fs.path)] = upload_error_message(upload_service.UploadError("not_visible"))
                items.pop(fs.path)
    return items, errors


def _error(status: int, code: str, message: str) -> Any:
    return jsonify({"error": {"code": code, "message": message}}), status


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(_e: Exception) -> Any:
    # The request itself passed the app's MAX_CONTENT_LENGTH.
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or max_upload_bytes()
    return _error(413, "too_large", upload_error_message(
        upload_service.UploadError(
            "too_large", {"limit": upload_service.readable_size(min(limit, max_upload_bytes()))})))


@blueprint.route("", methods=["POST"])
@requires("unit.write")
def upload() -> Any:
    """Store one file (field ``file``) for the unit named by field ``unit``; JSON answer."""
    unit = unit_service.unit_by_code(request_context(), request.form.get("unit", ""))
    principal = current_principal()
    if unit is None or not principal.can("unit.read", unit.path):
        return _error(404, "not_found", str(_l("This page does not exist or is outside your scope.")))
    if not principal.can("unit.write", unit.path):
        return _error(403, "forbidden", str(_l("Your role does not allow this action.")))
    storage = request.files.get("file")
    try:
        if storage is None or not storage.filename:
            raise upload_service.UploadError("no_file")
        stored = save_file(unit, storage)
    except upload_service.UploadError as exc:
        status = 413 if exc.code == "too_large" else 400
        return _error(status, exc.code, upload_error_message(exc))
    return jsonify({
        "id": stored.id, "name": stored.original_name, "size": stored.size,
        "content_type": stored.content_type, "sha256": stored.sha256, "unit": unit.code,
        "url": url_for("uploads.download", upload_id=stored.id),
    }), 201


@blueprint.route("/<int:upload_id>")
@requires("unit.read")
def download(upload_id: int) -> Any:
    """The file, as an attachment, to users who may read its unit; 404 to anyone else."""
    found = upload_service.visible_upload(request_context(), upload_id)
    if found is None:
        abort(404)
    path = upload_service.upload_file_path(storage_dir(), found)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=found.content_type, as_attachment=True,
                         download_name=found.original_name, etag=found.sha256, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
