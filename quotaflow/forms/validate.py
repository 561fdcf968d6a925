"""Submitted form text -> typed data, checked against the form's JSON Schema.

:func:`coerce_and_validate` is the whole server-side check of a form post: it turns
strings into the types the schema asks for (numbers, integers, booleans from
checkboxes, ISO dates, upload ids, enum values), keeps fields the user's roles may not
edit at their current value, validates with jsonschema, and reports every problem as
a :class:`FieldError` keyed by JSON pointer with a stable code and params, so the web
layer can show a translated message beside the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from quotaflow.forms.inputs import CellError, coerce_cell
from quotaflow.forms.spec import FieldSpec, form_fields, may_edit, option_value
from quotaflow.rules.specs import pointer

ROW_ACTION = "_rows"  # the submit button that adds or removes a row: "add:f" / "remove:f:2"
ROW_KEY = re.compile(r"^(?P<field>[A-Za-z_]\w*)\.(?P<index>\d{1,4})\.(?P<sub>[A-Za-z_]\w*)$")
MAX_ROWS = 500
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CHECKED = frozenset({"on", "true", "1", "yes"})

# English messages (logs, API); the web layer translates by code.
MESSAGES = {
    "required": "This field is required.",
    "type": "Enter a value of type {expected}.",
    "minimum": "Must be at least {limit}.",
    "maximum": "Must be at most {limit}.",
    "exclusiveMinimum": "Must be more than {limit}.",
    "exclusiveMaximum": "Must be less than {limit}.",
    "multipleOf": "Must be a multiple of {limit}.",
    "enum": "Choose one of: {options}.",
    "const": "Must be {value}.",
    "minLength": "Enter at least {limit} characters.",
    "maxLength": "Enter at most {limit} characters.",
    "pattern": "Does not have the expected form.",
    "minItems": "Add at least {limit} rows.",
    "maxItems": "Enter at most {limit} rows.",
    "uniqueItems": "Rows must not repeat.",
    "format": "Enter a valid {format}.",
    "readonly": "Your role may not change this field.",
    "unknown_field": "This form has no field {name}.",
    "invalid": "This value is not accepted.",
}
_LIMIT_KINDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                "minLength", "maxLength", "minItems", "maxItems")


@dataclass(frozen=True)
class FieldError:
    """A problem with one field: its JSON pointer, a stable code and the message params."""

    pointer: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        try:
            return MESSAGES.get(self.code, MESSAGES["invalid"]).format(**self.params)
        except (KeyError, IndexError):
            return MESSAGES["invalid"]

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "code": self.code, "params": dict(self.params),
                "message": self.message}


class _Invalid(ValueError):
    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def coerce_and_validate(
    spec: Mapping[str, Any],
    form_items: Mapping[str, Any],
    *,
    roles: frozenset[str] | set[str],
    current: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, FieldError]]:
    """Typed data and errors (pointer -> :class:`FieldError`) for a submitted form.

    ``form_items`` maps input names to submitted text ("qty", rows as "items.0.qty");
    a missing checkbox means false. Empty inputs leave the field out. Fields the
    ``roles`` may not edit keep their ``current`` value; a submitted change to one is
    reported as ``readonly``. Where text did not parse, the data holds the text as
    typed so the form can show it again.
    """
    current = current or {}
    data: dict[str, Any] = {}
    errors: dict[str, FieldError] = {}
    unparsed: set[str] = set()
    for fs in form_fields(spec):
        where = pointer(fs.path)
        submitted = _was_submitted(fs, form_items)
        try:
            value = _coerce_field(fs, form_items)
        except _Invalid as exc:
            value, failed = form_items.get(fs.path), exc
        else:
            failed = None
        if fs.widget == "rows" and isinstance(value, tuple):  # (rows, per-cell errors)
            value, cell_errors = value
            # Bad cells keep their text; the schema's verdict on them yields to these.
            for pointer_, error in cell_errors.items():
                errors.setdefault(pointer_, error)
        if not may_edit(spec, fs.path, roles):
            old = current.get(fs.path)
            if submitted and (failed is not None or _normalise(value) != _normalise(old)):
                errors.setdefault(where, FieldError(where, "readonly"))
            failed = None
            value = old
        if failed is not None:
            errors.setdefault(where, FieldError(where, failed.code, failed.params))
            unparsed.add(fs.path)
        if value is not None:
            data[fs.path] = value
    checked = {k: v for k, v in data.items() if k not in unparsed}
    for error in schema_errors(spec["schema"], checked):
        errors.setdefault(error.pointer, error)
    return data, errors


def schema_errors(schema: Mapping[str, Any], data: Any) -> list[FieldError]:
    """jsonschema's verdict on ``data`` as field errors, one per pointer, in field order."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found: dict[str, FieldError] = {}
    for error in validator.iter_errors(data):
        for field_error in _from_jsonschema(error):
            found.setdefault(field_error.pointer, field_error)
    order = {name: i for i, name in enumerate(schema.get("properties", {}))}

    def key(e: FieldError) -> tuple[int, str]:
        head = e.pointer.split("/")[1] if e.pointer.count("/") else ""
        return order.get(head, len(order)), e.pointer

    return sorted(found.values(), key=key)


def _from_jsonschema(error: Any) -> list[FieldError]:
    path = list(error.absolute_path)
    kind = error.validator
    if kind == "required":
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        return [FieldError(pointer(*path, name), "required")
                for name in error.validator_value if name not in instance]
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = error.schema.get("properties", {})
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        return [FieldError(pointer(*path, name), "unknown_field", {"name": name})
                for name in instance if name not in known]
    where = pointer(*path)
    if kind == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, str) else "/".join(
            t for t in expected if t != "null")
        return [FieldError(where, "type", {"expected": expected})]
    if kind in _LIMIT_KINDS:
        return [FieldError(where, kind, {"limit": error.validator_value})]
    if kind == "enum":
        return [FieldError(where, "enum",
                           {"options": ", ".join(option_value(v) for v in error.validator_value)})]
    if kind == "const":
        return [FieldError(where, "const", {"value": option_value(error.validator_value)})]
    if kind == "format":
        return [FieldError(where, "format", {"format": error.validator_value})]
    if kind in ("pattern", "uniqueItems"):
        return [FieldError(where, kind, {})]
    return [FieldError(where, "invalid", {"detail": error.message})]


# --- coercion ---------------------------------------------------------------------


def _was_submitted(fs: FieldSpec, items: Mapping[str, Any]) -> bool:
    if fs.widget == "rows":
        return any(ROW_KEY.match(k) and k.split(".", 1)[0] == fs.path for k in items)
    return fs.path in items


def _coerce_field(fs: FieldSpec, items: Mapping[str, Any]) -> Any:
    if fs.widget == "rows":
        return _coerce_rows(fs, items)
    return coerce_value(fs, items.get(fs.path))


def coerce_value(fs: FieldSpec, raw: Any) -> Any:
    """One submitted value as the type its field wants; None when left empty."""
    if fs.widget == "checkbox":
        if isinstance(raw, bool):
            return raw
        return raw is not None and str(raw).strip().lower() in CHECKED
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    if fs.widget == "select":
        for value in fs.schema.get("enum", []):
            if option_value(value) == str(text):
                return value
        raise _Invalid("enum", options=", ".join(option_value(v) for v in fs.schema["enum"]))
    if fs.types and fs.types <= {"number", "integer"}:
        kind = "integer" if fs.types == {"integer"} else "number"
        try:
            return coerce_cell(kind, text)
        except CellError:
            raise _Invalid("type", expected=kind) from None
    if fs.widget == "date" or fs.schema.get("format") == "date":
        if not ISO_DATE.match(str(text)):
            raise _Invalid("format", format="date")
        try:
            dt.date.fromisoformat(str(text))
        except ValueError:
            raise _Invalid("format", format="date") from None
        return str(text)
    if fs.types == {"boolean"}:
        try:
            return coerce_cell("boolean", text)
        except CellError:
            raise _Invalid("type", expected="boolean") from None
    return str(text)


def _coerce_rows(fs: FieldSpec, items: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict]:
    """Rows from "field.N.sub" inputs, in index order; rows left wholly empty are dropped."""
    by_index: dict[int, dict[str, Any]] = {}
    for key, raw in items.items():
        m = ROW_KEY.match(key)
        if m and m["field"] == fs.path:
            by_index.setdefault(int(m["index"]), {})[m["sub"]] = raw
    rows: list[dict[str, Any]] = []
    errors: dict[str, FieldError] = {}
    children = {c.name: c for c in fs.children}
    for index in sorted(by_index)[:MAX_ROWS]:
        raw_row = by_index[index]
        if all(_blank(v) for v in raw_row.values()):
            continue
        row: dict[str, Any] = {}
        position = len(rows)
        for name, child in children.items():
            try:
                value = coerce_value(child, raw_row.get(name))
            except _Invalid as exc:
                where = pointer(fs.path, position, name)
                errors[where] = FieldError(where, exc.code, exc.params)
                value = raw_row.get(name)
            if value is not None:
                row[name] = value
        rows.append(row)
    return rows, errors


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _normalise(value: Any) -> Any:
    """Compare numbers by value (3 == 3.0) and treat a missing list as empty."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value] or None
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


# --- repeated rows: add / remove without JavaScript ----------------------------------


def apply_row_action(spec: Mapping[str, Any], data: Mapping[str, Any], action: str
                     ) -> dict[str, Any] | None:
    """Data with one row added ("add:field") or removed ("remove:field:N"); None if invalid."""
    rows_fields = {fs.path for fs in form_fields(spec) if fs.widget == "rows"}
    parts = action.split(":")
    if len(parts) < 2 or parts[1] not in rows_fields:
        return None
    name = parts[1]
    rows = [dict(r) for r in data.get(name) or [] if isinstance(r, Mapping)]
    if parts[0] == "add" and len(parts) == 2 and len(rows) < MAX_ROWS:
        rows.append({})
    elif parts[0] == "remove" and len(parts) == 3 and parts[2].isdigit() and int(parts[2]) < len(rows):
        del rows[int(parts[2])]
    else:
        return None
    return {**data, name: rows}
