"""Spreadsheet twins of the Spreadsheets page (web/spreadsheets.py): the pre-filled inputs
download, its upload (all or nothing), the import templates and the org, people and
history imports. Each route calls the use case the page calls, with the page's
permission; a refused file answers the page's report (row, column, code, message in the
caller's language) as the error's details."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, jsonify, request, send_file
from flask_babel import force_locale

from quotaflow.api import api_blueprint, caller_locale
from quotaflow.http.context import request_context
from quotaflow.http.errors import ApiError, api_error
from quotaflow.http.guard import requires
from quotaflow.http.input_texts import pending_units_message
from quotaflow.http.sheet_texts import (
    FORMATS,
    IMPORT_KINDS,
    SHOWN_ISSUES,
    issue_message,
    sheet_texts,
    template_texts,
)
from quotaflow.services import commands, org_import
from quotaflow.services import periods as period_service
from quotaflow.services import spreadsheets as sheets

F = TypeVar("F", bound=Callable[..., Any])


def sheet_report(exc: sheets.SheetImportError, status: int = 422) -> Any:
    """The page's report as the error's details: every shown issue with its row, column,
    header, code, params and message, the total and how many were left off."""
    shown = exc.issues[:SHOWN_ISSUES]
    issues = [{"row": i.row, "column": i.column, "header": i.header, "code": i.code,
               "message": issue_message(i), **{k: v for k, v in i.params.items()
                                               if k not in ("row", "column", "code")}}
              for i in shown]
    return api_error(status, exc.code, exc.localized(caller_locale()),
                     {"issues": issues, "total": exc.total, "hidden": exc.total - len(shown)})


def in_caller_language(view: F) -> F:
    """Run the view with the caller's language (workbook words and report messages)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with force_locale(caller_locale()):
            return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ApiError(404, "not_found", f"unknown format {fmt!r}; use one of "
                       + ", ".join(FORMATS), {"format": fmt})


def _kind(kind: str) -> None:
    if kind not in IMPORT_KINDS:
        raise ApiError(404, "not_found", f"unknown import {kind!r}; use one of "
                       + ", ".join(IMPORT_KINDS), {"kind": kind})


def _download(made: Any) -> Any:
    return send_file(io.BytesIO(made.content), mimetype=made.mimetype, as_attachment=True,
                     download_name=made.filename, max_age=0)


def _uploaded() -> tuple[bytes, str]:
    """The multipart ``file``'s bytes and name (a missing file is refused like the page)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise sheets.refuse("file.missing")
    return upload.read(), upload.filename


def _limit() -> int | None:
    return current_app.config.get("MAX_CONTENT_LENGTH")


@api_blueprint.get("/inputs.<fmt>")
@requires("unit.write")
@in_caller_language
def download_inputs(fmt: str) -> Any:
    _format(fmt)
    ctx = request_context()
    period, _periods = period_service.chosen_period(ctx, request.args.get("period"))
    try:
        export = sheets.export_inputs(ctx, period, fmt, caller_locale(), sheet_texts())
    except sheets.SheetImportError as exc:
        return sheet_report(exc, 409)
    return _download(export)


@api_blueprint.post("/inputs")
@requires("unit.read", write="unit.write")
@in_caller_language
def upload_inputs() -> Any:
    try:
        data, filename = _uploaded()
        result = commands.import_inputs(request_context(), data, filename,
                                        request.form.get("period") or None,
                                        texts=sheet_texts(), max_bytes=_limit())
    except sheets.SheetImportError as exc:
        return sheet_report(exc)
    out = {"filename": filename, **dataclasses.asdict(result)}
    if result.units_pending:
        out["message"] = pending_units_message(result.units_pending)
    return jsonify(out)


@api_blueprint.get("/imports/templates/<kind>.<fmt>")
@requires("admin.access")
@in_caller_language
def download_template(kind: str, fmt: str) -> Any:
    _kind(kind)
    _format(fmt)
    return _download(org_import.template(kind, fmt, template_texts(kind)))


@api_blueprint.post("/imports/<kind>")
@requires("admin.access")
@in_caller_language
def upload_import(kind: str) -> Any:
    _kind(kind)
    try:
        data, filename = _uploaded()
        if kind == "history":
            result: Any = commands.import_history(request_context(), data, filename,
                                                  max_bytes=_limit())
        else:
            result = commands.import_org_units(request_context(), data, filename,
                                               people=kind == "people", max_bytes=_limit())
    except sheets.SheetImportError as exc:
        return sheet_report(exc)
    return jsonify({"kind": kind, "filename": filename, **dataclasses.asdict(result)})
