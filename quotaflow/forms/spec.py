"""Form specs: a JSON Schema of the data plus a small UI part, checked at the door.

A form spec is ``{"key", "title_en", "title_zh", "schema", "ui"}`` (see
``quotaflow/schemas/form.schema.json``). :func:`validate_form_spec` checks the document against
that schema, then its meaning: the data schema is itself a valid JSON Schema, every
field the UI part names exists, widgets fit the field types, roles are known.
:func:`form_fields` turns a valid spec into the ordered list of fields that rendering
and validation share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quotaflow.rules.specs import SpecError, SpecIssue, pointer, schema_issues

SCHEMA_NAME = "form"
WIDGETS = ("text", "textarea", "number", "select", "checkbox", "date", "file", "rows")
# The roles of quotaflow.services.access (kept here: the core does not import services).
ROLES = ("admin", "hrbp", "executive", "region_head", "team_lead", "sales")
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SCALAR_TYPES = frozenset({"string", "number", "integer", "boolean"})
# Which data types each widget can edit; select needs an enum instead.
WIDGET_TYPES: dict[str, frozenset[str]] = {
    "text": frozenset({"string"}),
    "textarea": frozenset({"string"}),
    "number": frozenset({"number", "integer"}),
    "checkbox": frozenset({"boolean"}),
    "date": frozenset({"string"}),
    "file": frozenset({"integer"}),  # the id of an Upload
    "rows": frozenset({"array"}),
}


class FormSpecError(SpecError):
    kind = "form spec"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form: ``path`` is "name" or "rows_field.sub_field"."""

    path: str
    schema: Mapping[str, Any]
    widget: str
    required: bool
    types: frozenset[str]
    children: tuple[FieldSpec, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def parent(self) -> str | None:
        return self.path.split(".", 1)[0] if "." in self.path else None


def resolve(root: Mapping[str, Any], sub: Any) -> Mapping[str, Any]:
    """Follow local ``$ref`` pointers ("#/$defs/x") so widget checks see the real type."""
    seen = 0
    while isinstance(sub, Mapping) and isinstance(sub.get("$ref"), str) and seen < 10:
        ref = sub["$ref"]
        if not ref.startswith("#/"):
            break
        target: Any = root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or part not in target:
                return sub
            target = target[part]
        merged = {k: v for k, v in sub.items() if k != "$ref"}
        sub = {**target, **merged} if isinstance(target, Mapping) else sub
        seen += 1
    return sub if isinstance(sub, Mapping) else {}


def schema_types(sub: Mapping[str, Any]) -> frozenset[str]:
    """The non-null JSON types a (sub)schema allows; inferred from ``enum`` if untyped."""
    declared = sub.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = {t for t in declared if isinstance(t, str)}
    elif isinstance(sub.get("enum"), list):
        types = {_json_type(v) for v in sub["enum"]}
    elif "const" in sub:
        types = {_json_type(sub["const"])}
    else:
        types = set()
    types.discard("null")
    return frozenset(types)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def default_widget(sub: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> str | None:
    """The widget a field gets when the UI part names none (None: cannot be edited)."""
    types = schema_types(sub)
    if isinstance(sub.get("enum"), list) and types <= SCALAR_TYPES:
        return "select"
    if types == {"boolean"}:
        return "checkbox"
    if types and types <= {"number", "integer"}:
        return "number"
    if types == {"string"}:
        return "date" if sub.get("format") == "date" else "text"
    if types == {"array"} and _row_properties(sub, root or {}) is not None:
        return "rows"
    return None


def _row_properties(sub: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    items = resolve(root, sub.get("items", {}))
    if schema_types(items) != {"object"} or not isinstance(items.get("properties"), Mapping):
        return None
    return items["properties"]


def widget_fits(widget: str, sub: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> bool:
    """Whether ``widget`` can edit values of the (sub)schema ``sub``."""
    types = schema_types(sub)
    if widget == "select":
        return isinstance(sub.get("enum"), list) and bool(sub["enum"]) and types <= SCALAR_TYPES
    if widget == "rows":
        return types == {"array"} and _row_properties(sub, root or {}) is not None
    allowed = WIDGET_TYPES.get(widget)
    return allowed is not None and bool(types) and types <= allowed


# --- validation -------------------------------------------------------------------


def validate_form_spec(doc: Any) -> list[SpecIssue]:
    """Every problem of a form spec, structural first, each with its JSON pointer."""
    issues = schema_issues(SCHEMA_NAME, doc)
    if issues:
        return issues
    data_schema = doc["schema"]
    issues += _data_schema_issues(data_schema)
    if issues:
        return issues
    props = data_schema["properties"]
    known = _known_paths(data_schema)
    ui = doc.get("ui", {})
    for name in props:
        if not FIELD_NAME.match(name):
            issues.append(SpecIssue(pointer("schema", "properties", name),
                                    f"field name {name!r} must be letters, digits and _",
                                    "bad_field_name"))
    for i, name in enumerate(ui.get("order", [])):
        if name not in props:
            issues.append(_unknown(pointer("ui", "order", i), name, props))
    widgets = ui.get("widgets", {})
    for path, widget in widgets.items():
        if path not in known:
            issues.append(_unknown(pointer("ui", "widgets", path), path, known))
        elif not widget_fits(widget, known[path], data_schema):
            issues.append(SpecIssue(
                pointer("ui", "widgets", path),
                f"widget {widget!r} cannot edit {_describe(known[path])}", "widget_mismatch"))
    for section in ("labels", "help", "options"):
        for path in ui.get(section, {}):
            if path not in known:
                issues.append(_unknown(pointer("ui", section, path), path, known))
    for path, labels in ui.get("options", {}).items():
        enum = known.get(path, {}).get("enum")
        if path in known and not isinstance(enum, list):
            issues.append(SpecIssue(pointer("ui", "options", path),
                                    f"{path!r} has no enum to label", "no_enum"))
        elif path in known:
            values = {_option_value(v) for v in enum}
            issues += [SpecIssue(pointer("ui", "options", path, value),
                                 f"{value!r} is not one of the field's values {sorted(values)}",
                                 "unknown_option")
                       for value in labels if value not in values]
    for path, roles in ui.get("editable_by", {}).items():
        if path not in props:
            issues.append(_unknown(pointer("ui", "editable_by", path), path, props))
        for i, role in enumerate(roles):
            if role not in ROLES:
                issues.append(SpecIssue(pointer("ui", "editable_by", path, i),
                                        f"unknown role {role!r}; roles are {', '.join(ROLES)}",
                                        "unknown_role"))
    for path, sub in known.items():
        if path not in widgets and default_widget(sub, data_schema) is None:
            issues.append(SpecIssue(_field_pointer(path), f"no widget can edit {_describe(sub)}; "
                                           "name one in ui.widgets", "unsupported_type"))
    return issues


def _data_schema_issues(data_schema: Mapping[str, Any]) -> list[SpecIssue]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(data_schema)
    except SchemaError as exc:
        return [SpecIssue(pointer("schema", *exc.absolute_path), exc.message,
                          f"data_schema.{exc.validator}")]
    return []


def _known_paths(data_schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Field path -> resolved subschema, row sub-fields as "field.sub"."""
    known: dict[str, Mapping[str, Any]] = {}
    for name, sub in data_schema["properties"].items():
        sub = resolve(data_schema, sub)
        known[name] = sub
        if schema_types(sub) == {"array"}:
            for child, child_sub in (_row_properties(sub, data_schema) or {}).items():
                known[f"{name}.{child}"] = resolve(data_schema, child_sub)
    return known


def _field_pointer(path: str) -> str:
    """Pointer to a field's subschema ("items.qty" -> /schema/properties/items/items/properties/qty)."""
    if "." not in path:
        return pointer("schema", "properties", path)
    parent, child = path.split(".", 1)
    return pointer("schema", "properties", parent, "items", "properties", child)


def _unknown(where: str, name: str, known: Mapping[str, Any]) -> SpecIssue:
    return SpecIssue(where, f"unknown field {name!r}; the schema has {', '.join(known)}",
                     "unknown_field")


def _describe(sub: Mapping[str, Any]) -> str:
    types = sorted(schema_types(sub))
    return ("values of type " + "/".join(types)) if types else "an untyped value"


def _option_value(value: Any) -> str:
    """How an enum value is written in a form and in ``ui.options`` keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_form_spec(doc: Any) -> dict[str, Any]:
    """Return ``doc`` if it is a valid form spec, else raise :class:`FormSpecError`."""
    issues = validate_form_spec(doc)
    if issues:
        raise FormSpecError(issues)
    return doc


# --- the shared field list ----------------------------------------------------------


def form_fields(spec: Mapping[str, Any]) -> list[FieldSpec]:
    """The fields of a valid spec in display order, row fields with their sub-fields."""
    data_schema = spec["schema"]
    props: Mapping[str, Any] = data_schema["properties"]
    ui = spec.get("ui", {})
    widgets = ui.get("widgets", {})
    required = set(data_schema.get("required", []))
    order = [n for n in ui.get("order", []) if n in props]
    order += [n for n in props if n not in order]
    fields = []
    for name in order:
        sub = resolve(data_schema, props[name])
        widget = widgets.get(name) or default_widget(sub, data_schema) or "text"
        children: tuple[FieldSpec, ...] = ()
        if widget == "rows":
            items = resolve(data_schema, sub["items"])
            child_required = set(items.get("required", []))
            children = tuple(
                FieldSpec(
                    f"{name}.{child}", resolve(data_schema, child_sub),
                    widgets.get(f"{name}.{child}")
                    or default_widget(resolve(data_schema, child_sub), data_schema) or "text",
                    child in child_required, schema_types(resolve(data_schema, child_sub)))
                for child, child_sub in items["properties"].items()
            )
        fields.append(FieldSpec(name, sub, widget, name in required, schema_types(sub), children))
    return fields


def option_value(value: Any) -> str:
    """An enum value as the text a select submits (shared by render and validate)."""
    return _option_value(value)


def may_edit(spec: Mapping[str, Any], field: str, roles: frozenset[str] | set[str]) -> bool:
    """Whether a user holding ``roles`` may change the top-level ``field``."""
    allowed = spec.get("ui", {}).get("editable_by", {}).get(field.split(".", 1)[0])
    return allowed is None or bool(set(roles) & set(allowed))
