"""Spec API: list specs and versions, read a version, create a version, activate one."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import commands, spec_kinds
from quotaflow.services import specs as spec_service

MAX_NOTE = 500


def version_json(spec: Any, *, content: bool = False) -> dict[str, Any]:
    out = {"kind": spec.kind, "key": spec.key, "version": spec.version, "status": spec.status,
           "content_hash": spec.content_hash, "author": spec.author.username if spec.author else None,
           "created_at": spec.created_at.isoformat() + "Z", "note": spec.note}
    if content:
        out["content"] = spec.content
    return out


def _versions(kind: str, key: str) -> list[Any]:
    if spec_kinds.get(kind) is None:
        raise ApiError(404, "not_found", f"unknown spec kind {kind!r}", {"pointer": "/kind"})
    found = spec_service.versions(request_context(), kind, key)
    if not found:
        raise ApiError(404, "not_found", f"no spec {kind}/{key}")
    return found


@api_blueprint.get("/specs")
@requires("spec.read")
def specs_index() -> Any:
    return jsonify({"specs": [
        {"kind": s.kind, "key": s.key, "versions": s.count, "latest": s.latest,
         "active": version_json(s.active) if s.active else None}
        for s in spec_service.summaries(request_context())
    ], "kinds": [k.name for k in spec_kinds.kinds()]})


@api_blueprint.get("/specs/<kind>/<key>")
@requires("spec.read")
def spec_versions(kind: str, key: str) -> Any:
    return jsonify({"kind": kind, "key": key,
                    "versions": [version_json(v) for v in _versions(kind, key)]})


@api_blueprint.get("/specs/<kind>/<key>/versions/<int:version>")
@requires("spec.read")
def spec_version(kind: str, key: str, version: int) -> Any:
    found = next((v for v in _versions(kind, key) if v.version == version), None)
    if found is None:
        raise ApiError(404, "not_found", f"{kind}/{key} has no version {version}")
    return jsonify(version_json(found, content=True))


@api_blueprint.post("/specs/<kind>/<key>/versions")
@requires("spec.write")
def create_spec_version(kind: str, key: str) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "content" not in body:
        raise ApiError(400, "invalid_body", 'expected {"content": {...}, "note": "..."}',
                       {"pointer": "/content"})
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
        raise ApiError(400, "invalid_body", f"note is text of at most {MAX_NOTE} characters",
                       {"pointer": "/note"})
    activate = body.get("activate", False)
    if not isinstance(activate, bool):
        raise ApiError(400, "invalid_body", "activate is true or false", {"pointer": "/activate"})
    saved = commands.save_spec(request_context(), kind, key, body["content"], note,
                               activate=activate)
    response = jsonify(version_json(saved, content=True))
    response.status_code = 201
    return response


@api_blueprint.post("/specs/<kind>/<key>/versions/<int:version>/activate")
@requires("spec.write")
def activate_spec_version(kind: str, key: str, version: int) -> Any:
    _versions(kind, key)
    spec = commands.activate_spec(request_context(), kind, key, version)
    return jsonify(version_json(spec))

