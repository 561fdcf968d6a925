"""Two-way confirmation in the API: my items, accept one or many, appeal with evidence,
an appeal's detail, and uploading an evidence file. The twins of the /confirm pages,
calling the same use cases (services/confirmation.py, services/uploads.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request, send_file

from quotaflow.api import api_blueprint
from quotaflow.errors import NotFound
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import commands, confirmation_reads
from quotaflow.services import confirmation as conf
from quotaflow.services import uploads as upload_service
from quotaflow.services.auth import actor


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def item_json(item: Any, open_appeal: Any = None) -> dict[str, Any]:
    return {"id": item.id, "unit": item.unit.code, "unit_name_en": item.unit.name_en,
            "unit_name_zh": item.unit.name_zh, "period": item.group.period.code,
            "plan_id": item.plan_id, "target": item.target, "status": item.status,
            "version": item.version, "decided_at": _when(item.decided_at),
            "open_appeal": open_appeal.id if open_appeal is not None else None}


def upload_json(upload: Any) -> dict[str, Any]:
    return {"id": upload.id, "name": upload.original_name, "size": upload.size,
            "content_type": upload.content_type, "sha256": upload.sha256,
            "unit": upload.unit.code, "url": f"/api/v1/uploads/{upload.id}"}


def appeal_json(appeal: Any) -> dict[str, Any]:
    return {"id": appeal.id, "item_id": appeal.item_id, "unit": appeal.unit.code,
            "level": appeal.level, "plan_id": appeal.plan_id, "allocated": appeal.allocated,
            "requested": appeal.requested, "approved": appeal.approved,
            "reason": appeal.reason, "evidence": list(appeal.evidence or []),
            "status": appeal.status, "flow": appeal.flow_key,
            "flow_instance_id": appeal.flow_instance_id,
            "result_plan_id": appeal.result_plan_id, "decision_note": appeal.decision_note,
            "submitted_at": _when(appeal.submitted_at), "decided_at": _when(appeal.decided_at)}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "expected a JSON object", {"pointer": ""})
    return body


def _version(body: dict[str, Any], pointer: str = "/version") -> int | None:
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ApiError(422, "invalid_version", "version is the integer the item had",
                       {"pointer": pointer})
    return version


@api_blueprint.get("/confirmations")
@requires("unit.confirm")
def my_confirmations() -> Any:
    ctx = request_context()
    period = request.args.get("period") or None
    rows = [r for r in conf.my_items(ctx, actor(ctx))
            if period is None or r.period_code == period]
    return jsonify({"items": [item_json(r.item, r.open_appeal) for r in rows]})


@api_blueprint.post("/confirmations/<int:item_id>/accept")
@requires("unit.confirm")
def accept_item(item_id: int) -> Any:
    ctx = request_context()
    item = confirmation_reads.my_item(ctx, item_id)  # someone else's looks absent
    version = _version(_body())
    commands.accept(ctx, item.id, version=version)
    return jsonify(item_json(confirmation_reads.item(ctx, item_id)))


@api_blueprint.post("/confirmations/accept")
@requires("unit.confirm")
def accept_items() -> Any:
    """Accept several targets at once: all or nothing."""
    body = _body()
    raw = body.get("items")
    if not isinstance(raw, list) or not raw:
        raise ApiError(422, "invalid_items", 'items is a non-empty list of {"id": ..., '
                       '"version": ...}', {"pointer": "/items"})
    answers: list[tuple[int, int | None]] = []
    for index, entry in enumerate(raw):
        item_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            raise ApiError(422, "invalid_items", "each item has an integer id",
                           {"pointer": f"/items/{index}/id"})
        answers.append((item_id, _version(entry, f"/items/{index}/version")))
    ctx = request_context()
    for item_id, _version_seen in answers:
        confirmation_reads.my_item(ctx, item_id)  # someone else's looks absent
    accepted = commands.accept_many(ctx, answers)
    return jsonify({"items": [item_json(i) for i in accepted]})


@api_blueprint.get("/confirmations/<int:item_id>/appeal")
@requires("unit.confirm")
def appeal_bounds(item_id: int) -> Any:
    """What an appeal of the item may ask for."""
    ctx = request_context()
    item = confirmation_reads.my_item(ctx, item_id)
    b = confirmation_reads.appeal_bounds(ctx, item)
    return jsonify({"allocated": b.allocated, "minimum": b.minimum, "maximum": b.maximum,
                    "step": b.step, "range_percent": b.range_percent,
                    "min_evidence": b.min_evidence, "reason_min": b.reason_min,
                    "flow": b.flow})


@api_blueprint.post("/confirmations/<int:item_id>/appeal")
@requires("unit.confirm")
def appeal_item(item_id: int) -> Any:
    """Appeal the item's target: requested amount, reason, evidence (upload ids)."""
    body = _body()
    evidence = body.get("evidence", [])
    if not isinstance(evidence, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in evidence):
        raise ApiError(422, "invalid_evidence", "evidence is a list of upload ids "
                       "(POST /uploads)", {"pointer": "/evidence"})
    ctx = request_context()
    item = confirmation_reads.my_item(ctx, item_id)
    appeal = commands.submit_appeal(ctx, item.id, requested=body.get("requested"),
                                    reason=body.get("reason"), evidence=evidence,
                                    version=_version(body))
    response = jsonify(appeal_json(appeal))
    response.status_code = 201
    return response


@api_blueprint.get("/appeals/<int:appeal_id>")
@requires("unit.read")
def appeal_detail(appeal_id: int) -> Any:
    return jsonify(appeal_json(confirmation_reads.readable_appeal(request_context(), appeal_id)))


@api_blueprint.post("/uploads")
@requires("unit.write")
def upload_file() -> Any:
    """Store one file (multipart field ``file``) for the unit named by field ``unit``."""
    storage = request.files.get("file")
    if storage is None or not storage.filename:
        raise ApiError(400, "no_file", "send the file as multipart field \"file\"",
                       {"pointer": "/file"})
    try:
        stored = upload_service.upload_for_unit(
            request_context(), request.form.get("unit", ""), storage.filename, storage.stream,
            directory=upload_service.storage_dir(current_app.instance_path),
            limit=upload_service.max_bytes(current_app.config))
    except upload_service.UploadError as exc:
        raise ApiError(413 if exc.code == "too_large" else 422, exc.code, str(exc),
                       {"pointer": "/file", **dict(exc.params)}) from None
    response = jsonify(upload_json(stored))
    response.status_code = 201
    return response


@api_blueprint.get("/uploads/<int:upload_id>")
@requires("unit.read")
def download_upload(upload_id: int) -> Any:
    found = upload_service.visible_upload(request_context(), upload_id)
    if found is None:
        raise NotFound("not_found", "/upload_id")
    path = upload_service.upload_file_path(
        upload_service.storage_dir(current_app.instance_path), found)
    if not path.is_file():
        raise ApiError(404, "not_found", "the file is missing from storage")
    response = send_file(path, mimetype=found.content_type, as_attachment=True,
                         download_name=found.original_name, etag=found.sha256, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
