"""Rendering data for a form: what each input shows, in the user's language.

:func:`build_form` turns a spec, the current data and the errors into a
:class:`FormView` a Jinja macro (``web/templates/forms/macros.html``) prints as
accessible HTML. Nothing here knows HTML; it only decides names, ids, labels, values,
limits, read-only state and which message belongs beside which input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quotaflow.forms.spec import FieldSpec, form_fields, may_edit, option_value
from quotaflow.rules.specs import pointer


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class FieldView:
    """One input (or a group of row inputs) ready to print."""

    name: str  # the input's name: "qty", or "items.0.qty" inside rows
    id: str  # the input's id, unique in the page
    pointer: str  # the JSON pointer of its value (errors are keyed by it)
    widget: str
    label: str
    help: str | None
    value: Any  # text for inputs, bool for a checkbox, an upload id for a file
    required: bool
    readonly: bool
    error: str | None
    options: tuple[Option, ...] = ()
    min: str | None = None
    max: str | None = None
    step: str | None = None
    max_length: int | None = None
    columns: tuple[FieldView, ...] = ()  # rows: the sub-fields (headers)
    rows: tuple[tuple[FieldView, ...], ...] = ()

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def help_id(self) -> str:
        return f"{self.id}-help"

    @property
    def described_by(self) -> str | None:
        """The ids for ``aria-describedby``: the error first, then the help."""
        ids = ([self.error_id] if self.error else []) + ([self.help_id] if self.help else [])
        return " ".join(ids) or None

    @property
    def checked(self) -> bool:
        return self.value is True


@dataclass(frozen=True)
class FormView:
    key: str
    title: str
    fields: tuple[FieldView, ...]
    errors: tuple[str, ...]  # messages that belong to no single field
    has_errors: bool
    multipart: bool  # a file input needs multipart/form-data


def build_form(
    spec: Mapping[str, Any],
    data: Mapping[str, Any] | None,
    errors: Mapping[str, Any] | None,
    *,
    roles: frozenset[str] | set[str],
    locale: str,
) -> FormView:
    """Rendering data for ``spec`` showing ``data`` and ``errors`` (pointer -> message).

    Error values may be already translated strings or anything whose ``str`` is the
    message (e.g. :class:`quotaflow.forms.validate.FieldError`).
    """
    data = data or {}
    errors = {k: str(v) for k, v in (errors or {}).items()}
    zh = locale.lower().startswith("zh")
    placed: set[str] = set()
    views = []
    for fs in form_fields(spec):
        readonly = not may_edit(spec, fs.path, roles)
        view = _field(spec, fs, fs.path, pointer(fs.path), data.get(fs.path), errors, placed,
                      readonly, zh)
        if fs.widget == "rows":
            view = _rows(spec, fs, view, data.get(fs.path), errors, placed, readonly, zh)
        views.append(view)
    loose = tuple(msg for where, msg in errors.items() if where not in placed)
    return FormView(
        key=spec.get("key", ""),
        title=spec.get("title_zh" if zh else "title_en") or spec.get("title_en", ""),
        fields=tuple(views),
        errors=loose,
        has_errors=bool(errors),
        multipart=any(f.widget == "file" for f in form_fields(spec)),
    )


def _field(spec: Mapping[str, Any], fs: FieldSpec, name: str, where: str, value: Any,
           errors: Mapping[str, str], placed: set[str], readonly: bool, zh: bool) -> FieldView:
    sub = fs.schema
    error = errors.get(where)
    if error is not None:
        placed.add(where)
    minimum, maximum = sub.get("minimum", sub.get("exclusiveMinimum")), sub.get(
        "maximum", sub.get("exclusiveMaximum"))
    step = None
    if fs.widget == "number":
        step = _number(sub["multipleOf"]) if "multipleOf" in sub else (
            "1" if fs.types == {"integer"} else "any")
    return FieldView(
        name=name,
        id="f-" + name.replace(".", "-"),
        pointer=where,
        widget=fs.widget,
        label=_text(spec, "labels", fs.path, zh) or _schema_label(sub, zh) or fs.name,
        help=_text(spec, "help", fs.path, zh) or _schema_help(sub, zh),
        value=_display(fs, value),
        required=fs.required,
        readonly=readonly,
        error=error,
        options=_options(spec, fs, value, zh) if fs.widget == "select" else (),
        min=_number(minimum) if fs.widget == "number" and minimum is not None else None,
        max=_number(maximum) if fs.widget == "number" and maximum is not None else None,
        step=step,
        max_length=sub.get("maxLength") if fs.widget in ("text", "textarea") else None,
    )


def _rows(spec: Mapping[str, Any], fs: FieldSpec, view: FieldView, value: Any,
          errors: Mapping[str, str], placed: set[str], readonly: bool, zh: bool) -> FieldView:
    rows = [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []
    columns = tuple(_field(spec, c, f"{fs.path}.{c.name}", "", None, {}, set(), readonly, zh)
                    for c in fs.children)
    printed = tuple(
        tuple(_field(spec, c, f"{fs.path}.{i}.{c.name}", pointer(fs.path, i, c.name),
                     row.get(c.name), errors, placed, readonly, zh) for c in fs.children)
        for i, row in enumerate(rows)
    )
    return FieldView(**{**view.__dict__, "value": None, "columns": columns, "rows": printed})


def _text(spec: Mapping[str, Any], section: str, path: str, zh: bool) -> str | None:
    entry = spec.get("ui", {}).get(section, {}).get(path)
    if not entry:
        return None
    return (entry.get("zh") if zh else entry.get("en")) or entry.get("en") or entry.get("zh")


def _schema_label(sub: Mapping[str, Any], zh: bool) -> str | None:
    # x-label-zh is what quotaflow.forms.inputs.input_schema writes beside the title.
    return (sub.get("x-label-zh") if zh else None) or sub.get("title")


def _schema_help(sub: Mapping[str, Any], zh: bool) -> str | None:
    return (sub.get("x-help-zh") if zh else None) or sub.get("description") or sub.get("x-help")


def _options(spec: Mapping[str, Any], fs: FieldSpec, value: Any, zh: bool) -> tuple[Option, ...]:
    labels = spec.get("ui", {}).get("options", {}).get(fs.path, {})
    chosen = option_value(value) if value is not None else None
    options = []
    for item in fs.schema.get("enum", []):
        text = option_value(item)
        label = labels.get(text, {})
        shown = ((label.get("zh") if zh else label.get("en")) or label.get("en") or text)
        options.append(Option(text, shown, text == chosen))
    return tuple(options)


def _display(fs: FieldSpec, value: Any) -> Any:
    """What an input shows: typed numbers as plain text, the raw text after a bad entry."""
    if fs.widget == "checkbox":
        return value is True or (isinstance(value, int | float) and value == 1)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number(value)
    return str(value)


def _number(value: float | int) -> str:
    """Plain number text (no grouping, no trailing .0), as typed into an input."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    return str(int(value)) if float(value).is_integer() else repr(float(value))
