"""The inputs of one org unit as a JSON Schema, and spreadsheet/text cell coercion.

A factor model's ``fields`` list (name, type, min, max, required, default, labels,
help) is the single description of what a unit's inputs are. :func:`input_schema`
turns it into a JSON Schema (draft 2020-12) that the generated data-collection form
and the spreadsheet import both validate with; :func:`coerce_cell` turns what a person
typed into a cell ("1,234.5", "是", "") into the JSON value the schema expects, and
:func:`input_issues` reports schema violations with stable codes the web layer
translates. Pure: no Flask, no SQLAlchemy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FIELD_TYPES = ("number", "integer", "boolean")

#: What a boolean cell may say, case-insensitively (English, Chinese, digits).
TRUE_WORDS = frozenset({"1", "1.0", "true", "yes", "y", "t", "是", "对", "真"})
FALSE_WORDS = frozenset({"0", "0.0", "false", "no", "n", "f", "否", "错", "假"})

# "1,234" / "-12,345,678.90": commas only where they group thousands, so "1,5" (a
# European decimal) is refused rather than read as 15.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_PLAIN = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class CellError(ValueError):
    """A cell that cannot become a value of its field's type.

    ``code`` is stable (``cell.not_a_number``, ``cell.not_an_integer``,
    ``cell.not_a_boolean``, ``cell.not_finite``, ``cell.bad_type``); ``params`` hold the
    values for the message. The English text is for logs; the web layer translates.
    """

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {dict(self.params)}"


@dataclass(frozen=True)
class InputIssue:
    """A schema violation: the field (or "" for the whole object), a code and params.

    Codes: ``required``, ``unknown_field``, ``type``, ``minimum``, ``maximum``,
    ``invalid`` (anything else the schema refuses).
    """

    field: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _property(spec: Mapping[str, Any]) -> dict[str, Any]:
    ftype = spec.get("type", "number")
    if ftype not in FIELD_TYPES:
        raise ValueError(f"field {spec.get('name')!r}: unknown type {ftype!r}")
    prop: dict[str, Any] = {"type": ftype, "title": spec.get("label_en") or spec["name"]}
    if ftype != "boolean":
        if spec.get("min") is not None:
            prop["minimum"] = spec["min"]
        if spec.get("max") is not None:
            prop["maximum"] = spec["max"]
    if "default" in spec:
        prop["default"] = spec["default"]
    if spec.get("label_zh"):
        prop["x-label-zh"] = spec["label_zh"]
    if spec.get("help"):
        prop["x-help"] = spec["help"]
    return prop


def input_schema(model_doc: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one unit's inputs under the factor model ``model_doc``.

    Properties keep the model's field order; a field is required unless it says
    ``"required": false``; no other property is allowed.
    """
    fields = list(model_doc.get("fields", ()))
    properties = {f["name"]: _property(f) for f in fields}
    required = [f["name"] for f in fields if f.get("required", True)]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": model_doc.get("name_en") or "Unit inputs",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if model_doc.get("name_zh"):
        schema["x-title-zh"] = model_doc["name_zh"]
    return schema


def _is_blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _number(raw: object) -> float:
    if isinstance(raw, bool):
        raise CellError("cell.not_a_number", {"value": raw})
    if isinstance(raw, int | float):
        number = float(raw)
    elif isinstance(raw, str):
        text = raw.strip().replace("\u00a0", "").replace(" ", "")
        if _GROUPED.match(text):
            text = text.replace(",", "")
        if not _PLAIN.match(text):
            raise CellError("cell.not_a_number", {"value": raw.strip()})
        number = float(text)
    else:
        raise CellError("cell.bad_type", {"value": str(raw)})
    if not math.isfinite(number):
        raise CellError("cell.not_finite", {"value": str(raw)})
    return number


def coerce_cell(field_type: str, raw: object) -> int | float | bool | None:
    """The value a cell holds for a field of ``field_type``; ``None`` for an empty cell.

    Numbers accept thousands separators ("1,234.5"); integers accept whole floats
    ("12", 12.0); booleans accept 1/0, true/false, yes/no and 是/否. Raises
    :class:`CellError` (a ``ValueError``) with a stable code otherwise.
    """
    if _is_blank(raw):
        return None
    if field_type == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            if raw in (0, 1):
                return bool(raw)
            raise CellError("cell.not_a_boolean", {"value": raw})
        word = str(raw).strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise CellError("cell.not_a_boolean", {"value": str(raw).strip()})
    if field_type == "integer":
        number = _number(raw)
        if not number.is_integer():
            raise CellError("cell.not_an_integer", {"value": raw if not isinstance(raw, str)
                                                    else raw.strip()})
        return int(number)
    if field_type == "number":
        return _number(raw)
    raise ValueError(f"unknown field type {field_type!r}")


def coerce_row(schema: Mapping[str, Any], raw: Mapping[str, object]
               ) -> tuple[dict[str, Any], dict[str, CellError]]:
    """Coerce every known cell of a row; empty cells are left out (absent, not null).

    Returns the values and the cells that failed, by field name. Unknown names are
    passed through unchanged so the schema reports them.
    """
    props = schema.get("properties", {})
    values: dict[str, Any] = {}
    errors: dict[str, CellError] = {}
    for name, cell in raw.items():
        if name not in props:
            values[name] = cell
            continue
        try:
            value = coerce_cell(props[name]["type"], cell)
        except CellError as exc:
            errors[name] = exc
            continue
        if value is not None:
            values[name] = value
    return values, errors


def _issue(error: Any) -> list[InputIssue]:
    where = error.path[0] if error.path else ""
    kind = error.validator
    if kind == "required":
        missing = [n for n in error.validator_value if n not in error.instance]
        return [InputIssue(n, "required") for n in missing]
    if kind == "additionalProperties":
        known = error.schema.get("properties", {})
        return [InputIssue(n, "unknown_field", {"name": n})
                for n in error.instance if n not in known]
    if kind == "type":
        return [InputIssue(str(where), "type", {"type": error.validator_value,
                                                "value": error.instance})]
    if kind in ("minimum", "maximum"):
        return [InputIssue(str(where), kind, {"limit": error.validator_value,
                                              "value": error.instance})]
    return [InputIssue(str(where), "invalid", {"message": error.message})]


def validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A reusable validator for ``schema`` (build once, validate many rows)."""
    return Draft202012Validator(schema)


#: Keywords :func:`fast_check` understands: what :func:`input_schema` writes.
_FAST_SCHEMA_KEYS = frozenset({"$schema", "title", "x-title-zh", "type", "properties",
                               "required", "additionalProperties"})
_FAST_PROPERTY_KEYS = frozenset({"type", "minimum", "maximum", "title", "default",
                                 "x-label-zh", "x-help", "description"})


def fast_check(schema: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool] | None:
    """A plain-Python validity test for a schema made by :func:`input_schema`, or None
    if the schema uses anything else.

    It never accepts what jsonschema refuses (same type rules: booleans are not numbers,
    an integer may be a whole float), so callers run jsonschema only for the rows it
    rejects, to get the issues. Imports of 200,000 rows need that speed.
    """
    if set(schema) - _FAST_SCHEMA_KEYS or schema.get("type") != "object" \
            or schema.get("additionalProperties") is not False:
        return None
    checks: list[tuple[str, str, Any, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        if set(prop) - _FAST_PROPERTY_KEYS or prop.get("type") not in FIELD_TYPES:
            return None
        checks.append((name, prop["type"], prop.get("minimum"), prop.get("maximum")))
    names = frozenset(schema.get("properties", {}))
    required = tuple(schema.get("required", ()))

    def valid(values: Mapping[str, Any]) -> bool:
        if not names.issuperset(values) or any(n not in values for n in required):
            return False
        for name, ftype, low, high in checks:
            if name not in values:
                continue
            value = values[name]
            if ftype == "boolean":
                if not isinstance(value, bool):
                    return False
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if ftype == "integer" and not (isinstance(value, int) or value.is_integer()):
                return False
            if (low is not None and value < low) or (high is not None and value > high):
                return False
        return True

    return valid


def input_issues(schema_or_validator: Mapping[str, Any] | Draft202012Validator,
                 values: Mapping[str, Any]) -> list[InputIssue]:
    """Every schema violation of ``values``, in the schema's field order."""
    check = (schema_or_validator if isinstance(schema_or_validator, Draft202012Validator)
             else Draft202012Validator(schema_or_validator))
    seen: set[tuple[str, str]] = set()
    issues: list[InputIssue] = []
    # jsonschema reports "required" once per missing name, each listing all of them.
    for error in check.iter_errors(dict(values)):
        for issue in _issue(error):
            if (issue.field, issue.code) not in seen:
                seen.add((issue.field, issue.code))
                issues.append(issue)
    order = {n: k for k, n in enumerate(check.schema.get("properties", {}))}
    return sorted(issues, key=lambda i: (order.get(i.field, len(order)), i.field, i.code))
