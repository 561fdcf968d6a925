"""Coercion of submitted text, every error kind, role-restricted fields, repeated rows."""

from __future__ import annotations

import pytest

from quotaflow.forms import FieldError, apply_row_action, coerce_and_validate, schema_errors


def form(properties, required=(), **ui):
    return {"key": "t", "title_en": "T", "title_zh": "T", "ui": ui,
            "schema": {"type": "object", "properties": properties, "required": list(required)}}


TYPED = form({
    "n": {"type": "number"},
    "i": {"type": "integer"},
    "b": {"type": "boolean"},
    "d": {"type": "string", "format": "date"},
    "s": {"type": "string"},
    "level": {"enum": [1, 2, 3]},
    "file": {"type": "integer"},
}, widgets={"file": "file"})


def run(spec, items, roles=("region_head",), current=None):
    return coerce_and_validate(spec, items, roles=set(roles), current=current)


def test_text_becomes_typed_values() -> None:
    data, errors = run(TYPED, {"n": " 1,234.5 ", "i": "12", "b": "on", "d": "2026-10-01",
                               "s": "  hello ", "level": "2", "file": "7"})
    assert errors == {}
    assert data == {"n": 1234.5, "i": 12, "b": True, "d": "2026-10-01", "s": "hello",
                    "level": 2, "file": 7}
    assert isinstance(data["i"], int)


def test_empty_inputs_are_left_out_and_a_missing_checkbox_is_false() -> None:
    data, errors = run(TYPED, {"n": "", "i": "  ", "s": ""})
    assert errors == {}
    assert data == {"b": False}


def test_whole_floats_are_integers() -> None:
    assert run(TYPED, {"i": "12.0"})[0]["i"] == 12


@pytest.mark.parametrize(("items", "where", "code", "params"), [
    ({"n": "twelve"}, "/n", "type", {"expected": "number"}),
    ({"n": "inf"}, "/n", "type", {"expected": "number"}),
    ({"i": "1.5"}, "/i", "type", {"expected": "integer"}),
    ({"d": "2026-02-30"}, "/d", "format", {"format": "date"}),
    ({"d": "1/10/2026"}, "/d", "format", {"format": "date"}),
    ({"level": "4"}, "/level", "enum", {"options": "1, 2, 3"}),
])
def test_text_that_does_not_parse_is_reported_and_kept(items, where, code, params) -> None:
    data, errors = run(TYPED, items)
    assert errors[where] == FieldError(where, code, params)
    name = where[1:]
    assert data[name] == items[name]  # shown again as typed


LIMITS = form({
    "req": {"type": "string"},
    "lo": {"type": "number", "minimum": 0},
    "hi": {"type": "number", "maximum": 10},
    "xlo": {"type": "number", "exclusiveMinimum": 0},
    "xhi": {"type": "number", "exclusiveMaximum": 10},
    "mult": {"type": "integer", "multipleOf": 5},
    "short": {"type": "string", "minLength": 3},
    "long": {"type": "string", "maxLength": 3},
    "code": {"type": "string", "pattern": "^[A-Z]+$"},
    "mail": {"type": "string", "format": "email"},
    "fixed": {"type": "string", "const": "yes"},
    "color": {"type": "string", "enum": ["red", "blue"]},
}, required=["req"])


@pytest.mark.parametrize(("items", "where", "code", "params"), [
    ({}, "/req", "required", {}),
    ({"lo": "-1"}, "/lo", "minimum", {"limit": 0}),
    ({"hi": "11"}, "/hi", "maximum", {"limit": 10}),
    ({"xlo": "0"}, "/xlo", "exclusiveMinimum", {"limit": 0}),
    ({"xhi": "10"}, "/xhi", "exclusiveMaximum", {"limit": 10}),
    ({"mult": "7"}, "/mult", "multipleOf", {"limit": 5}),
    ({"short": "ab"}, "/short", "minLength", {"limit": 3}),
    ({"long": "abcd"}, "/long", "maxLength", {"limit": 3}),
    ({"code": "abc"}, "/code", "pattern", {}),
    ({"mail": "not-an-address"}, "/mail", "format", {"format": "email"}),
    ({"fixed": "no"}, "/fixed", "const", {"value": "yes"}),
    ({"color": "green"}, "/color", "enum", {"options": "red, blue"}),
])
def test_every_schema_error_kind_has_a_pointer_code_and_params(items, where, code, params) -> None:
    _data, errors = run(LIMITS, {"req": "x", **items} if where != "/req" else items)
    assert list(errors) == [where]
    assert errors[where].code == code
    assert dict(errors[where].params) == params
    assert errors[where].message  # an English message for logs and the API


def test_schema_errors_cover_the_rest() -> None:
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"a": {"type": "string", "not": {"const": "x"}},
                             "rows": {"type": "array", "minItems": 2, "maxItems": 3,
                                      "uniqueItems": True}}}
    found = {e.pointer: e.code for e in schema_errors(schema, {"a": "x", "zzz": 1, "rows": [1]})}
    assert found == {"/a": "invalid", "/zzz": "unknown_field", "/rows": "minItems"}
    found = {e.pointer: e.code for e in schema_errors(schema, {"rows": [1, 1, 1, 1]})}
    assert found == {"/rows": "maxItems"}
    found = {e.pointer: e.code for e in schema_errors(schema, {"rows": [1, 1], "a": 3})}
    assert found == {"/rows": "uniqueItems", "/a": "type"}


def test_errors_come_one_per_field_in_field_order() -> None:
    _data, errors = run(LIMITS, {"hi": "11", "lo": "-1"})
    assert list(errors) == ["/req", "/lo", "/hi"]


RESTRICTED = form({"headcount": {"type": "integer"}, "note": {"type": "string"},
                   "flag": {"type": "boolean"}},
                  editable_by={"headcount": ["hrbp"], "flag": ["hrbp"]})
CURRENT = {"headcount": 16, "flag": True}


def test_a_restricted_field_keeps_its_value_when_not_sent() -> None:
    data, errors = run(RESTRICTED, {"note": "hi"}, current=CURRENT)
    assert errors == {}
    assert data == {"headcount": 16, "flag": True, "note": "hi"}


def test_a_restricted_field_sent_unchanged_is_fine() -> None:
    data, errors = run(RESTRICTED, {"headcount": "16.0", "note": "hi"}, current=CURRENT)
    assert errors == {}
    assert data["headcount"] == 16


def test_a_change_to_a_restricted_field_is_refused_and_the_old_value_kept() -> None:
    data, errors = run(RESTRICTED, {"headcount": "99", "note": "hi"}, current=CURRENT)
    assert errors == {"/headcount": FieldError("/headcount", "readonly")}
    assert data["headcount"] == 16
    data, errors = run(RESTRICTED, {"headcount": "junk"}, current=CURRENT)
    assert list(errors) == ["/headcount"] and errors["/headcount"].code == "readonly"
    assert data["headcount"] == 16


def test_a_role_named_in_editable_by_may_change_the_field() -> None:
    data, errors = run(RESTRICTED, {"headcount": "99"}, roles=("hrbp",), current=CURRENT)
    assert errors == {}
    assert data == {"headcount": 99, "flag": False}


ROWS = form({
    "title": {"type": "string"},
    "lines": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["customer"],
        "properties": {"customer": {"type": "string"}, "value": {"type": "number", "minimum": 0},
                       "won": {"type": "boolean"}}}},
})


def test_rows_are_read_in_index_order_and_empty_rows_dropped() -> None:
    items = {"lines.10.customer": "C", "lines.2.customer": "A", "lines.2.value": "1,000",
             "lines.2.won": "on", "lines.5.customer": "", "lines.5.value": " ",
             "lines.3.customer": "B"}
    data, errors = run(ROWS, items)
    assert errors == {}
    assert data["lines"] == [{"customer": "A", "value": 1000.0, "won": True},
                             {"customer": "B", "won": False}, {"customer": "C", "won": False}]


def test_row_errors_point_at_the_cell() -> None:
    items = {"lines.0.customer": "A", "lines.0.value": "-3",
             "lines.1.value": "x", "lines.4.value": "2"}
    data, errors = run(ROWS, items)
    assert {k: e.code for k, e in errors.items()} == {
        "/lines/1/value": "type", "/lines/0/value": "minimum",
        "/lines/1/customer": "required", "/lines/2/customer": "required"}
    assert data["lines"][1]["value"] == "x"


def test_rows_need_at_least_the_minimum() -> None:
    _data, errors = run(ROWS, {"title": "t"})
    assert errors["/lines"] == FieldError("/lines", "minItems", {"limit": 1})
    _data, errors = run(ROWS, {"title": "t", "lines.0.customer": ""})
    assert errors["/lines"].code == "minItems"  # the blank row is dropped


def test_rows_are_added_and_removed_without_saving() -> None:
    data = {"title": "t", "lines": [{"customer": "A"}, {"customer": "B"}]}
    assert apply_row_action(ROWS, data, "add:lines")["lines"] == [
        {"customer": "A"}, {"customer": "B"}, {}]
    assert apply_row_action(ROWS, data, "remove:lines:0")["lines"] == [{"customer": "B"}]
    assert apply_row_action(ROWS, {}, "add:lines")["lines"] == [{}]
    for bad in ("remove:lines:5", "add:title", "drop:lines", "add:nope", "remove:lines:x", ""):
        assert apply_row_action(ROWS, data, bad) is None
    assert data["lines"] == [{"customer": "A"}, {"customer": "B"}]  # not mutated


def test_field_errors_serialise() -> None:
    error = FieldError("/hi", "maximum", {"limit": 10})
    assert error.as_dict() == {"pointer": "/hi", "code": "maximum", "params": {"limit": 10},
                               "message": "Must be at most 10."}
    assert str(FieldError("/x", "no_such_code")) == "This value is not accepted."
