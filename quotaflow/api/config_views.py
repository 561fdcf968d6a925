"""Configuration bundle twins of the configuration page (web/config_pages.py): export every
active spec as one bundle, import one (all or nothing; a refusal lists each issue with
its JSON pointer into the bundle)."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import jsonify, request

from quotaflow.api import api_blueprint
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError
from quotaflow.http.guard import requires
from quotaflow.services import bundle as bundle_service
from quotaflow.services import commands


@api_blueprint.get("/config/bundle")
@requires("spec.read")
def export_bundle() -> Any:
    return jsonify(bundle_service.export_bundle(request_context()))


def _raw_bundle() -> bytes:
    """The bundle: the JSON body, or a multipart file named ``bundle`` like the page's form."""
    upload = request.files.get("bundle")
    if upload is not None and upload.filename:
        raw = upload.stream.read(bundle_service.MAX_BUNDLE_BYTES + 1)
    else:
        raw = request.get_data(cache=False)
    if not raw:
        raise ApiError(400, "invalid_body", "send the bundle as the JSON body or as the "
                       "multipart file \"bundle\"", {"pointer": ""})
    if len(raw) > bundle_service.MAX_BUNDLE_BYTES:
        raise ApiError(413, "too_large", f"the bundle is larger than "
                       f"{bundle_service.MAX_BUNDLE_BYTES // 2**20} MB", {"max_bytes": bundle_service.MAX_BUNDLE_BYTES})
    return raw


@api_blueprint.post("/config/bundle")
@requires("spec.write")
def import_bundle() -> Any:
    # BundleError (422) lists every issue with its pointer; nothing is written then.
    done = commands.import_bundle(request_context(), bundle_service.parse(_raw_bundle()))
    return jsonify({"imported": [dataclasses.asdict(item) for item in done]})
