"""The JSON Schema of a unit's inputs, built from the factor model, and cell coercion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from quotaflow.forms.inputs import (
    DIALECT,
    CellError,
    coerce_cell,
    coerce_row,
    fast_check,
    input_issues,
    input_schema,
    validator,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = {
    "name_en": "Test model",
    "name_zh": "测试模型",
    "fields": [
        {"name": "sales", "type": "number", "min": 0, "label_en": "Sales", "label_zh": "销售额",
         "help": "Last year."},
        {"name": "heads", "type": "integer", "min": 1, "max": 500, "label_en": "Headcount"},
        {"name": "share", "type": "number", "min": 0, "max": 1},
        {"name": "cross_border", "type": "boolean", "required": False, "default": False,
         "label_zh": "跨境服务能力"},
    ],
}


def test_schema_shape() -> None:
    schema = input_schema(MODEL)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DIALECT
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["sales", "heads", "share", "cross_border"]
    assert schema["required"] == ["sales", "heads", "share"]
    sales = schema["properties"]["sales"]
    assert sales == {"type": "number", "title": "Sales", "minimum": 0, "x-label-zh": "销售额",
                     "x-help": "Last year."}
    assert schema["properties"]["heads"] == {"type": "integer", "title": "Headcount",
                                             "minimum": 1, "maximum": 500}
    border = schema["properties"]["cross_border"]
    assert border["type"] == "boolean" and border["default"] is False
    assert border["title"] == "cross_border"  # no English label: the name
    assert "minimum" not in border


def test_schema_of_the_demo_model_is_valid() -> None:
    doc = json.loads((ROOT / "quotaflow/seed_data/specs/factor_model.json").read_text(encoding="utf-8"))
    schema = input_schema(doc)
    Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {f["name"] for f in doc["fields"]}
    assert "cost" not in schema["required"]  # "required": false in the model
    assert schema["properties"]["new_city_share"]["maximum"] == 1


def test_valid_values_have_no_issues() -> None:
    schema = input_schema(MODEL)
    assert input_issues(schema, {"sales": 10.5, "heads": 3, "share": 0.2}) == []
    assert input_issues(validator(schema), {"sales": 0, "heads": 500, "share": 1,
                                            "cross_border": True}) == []


def test_issues_name_the_field_and_carry_stable_codes() -> None:
    schema = input_schema(MODEL)
    issues = input_issues(schema, {"sales": -1, "heads": 2.5, "share": 1.5, "extra": 1,
                                   "cross_border": "yes"})
    found = {(i.field, i.code) for i in issues}
    assert found == {("sales", "minimum"), ("heads", "type"), ("share", "maximum"),
                     ("extra", "unknown_field"), ("cross_border", "type")}
    by_field = {i.field: i for i in issues}
    assert by_field["sales"].params == {"limit": 0, "value": -1}
    assert by_field["heads"].params["type"] == "integer"
    # Schema order, unknown names last.
    assert [i.field for i in issues] == ["sales", "heads", "share", "cross_border", "extra"]


def test_missing_required_fields_are_reported_once_each() -> None:
    issues = input_issues(input_schema(MODEL), {})
    assert [(i.field, i.code) for i in issues] == [
        ("sales", "required"), ("heads", "required"), ("share", "required")]


@pytest.mark.parametrize(("ftype", "raw", "expected"), [
    ("number", "1,234.5", 1234.5),
    ("number", "-12,345,678", -12345678.0),
    ("number", " 42 ", 42.0),
    ("number", "1e3", 1000.0),
    ("number", ".5", 0.5),
    ("number", 7, 7.0),
    ("number", 2.25, 2.25),
    ("integer", "12", 12),
    ("integer", 12.0, 12),
    ("integer", "1,200", 1200),
    ("boolean", "是", True),
    ("boolean", "否", False),
    ("boolean", "Yes", True),
    ("boolean", "no", False),
    ("boolean", "TRUE", True),
    ("boolean", "false", False),
    ("boolean", 1, True),
    ("boolean", 0, False),
    ("boolean", "1", True),
    ("boolean", True, True),
    ("number", "", None),
    ("number", "   ", None),
    ("integer", None, None),
    ("boolean", "", None),
])
def test_coerce_cell(ftype: str, raw: object, expected: object) -> None:
    value = coerce_cell(ftype, raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("ftype", "raw", "code"), [
    ("number", "abc", "cell.not_a_number"),
    ("number", "1,2", "cell.not_a_number"),  # a European decimal comma is not guessed
    ("number", "12%", "cell.not_a_number"),
    ("number", "nan", "cell.not_a_number"),
    ("number", float("inf"), "cell.not_finite"),
    ("number", True, "cell.not_a_number"),
    ("integer", "1.5", "cell.not_an_integer"),
    ("integer", 2.5, "cell.not_an_integer"),
    ("boolean", "maybe", "cell.not_a_boolean"),
    ("boolean", 2, "cell.not_a_boolean"),
])
def test_bad_cells_raise_value_errors_with_stable_codes(ftype: str, raw: object, code: str) -> None:
    with pytest.raises(ValueError) as caught:
        coerce_cell(ftype, raw)
    assert isinstance(caught.value, CellError)
    assert caught.value.code == code
    assert "value" in caught.value.params


def test_unknown_field_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown field type"):
        coerce_cell("date", "2026-01-01")


def test_coerce_row_leaves_empty_cells_out_and_collects_errors() -> None:
    schema = input_schema(MODEL)
    values, errors = coerce_row(schema, {"sales": "1,000", "heads": "", "share": "x",
                                         "other": "kept"})
    assert values == {"sales": 1000.0, "other": "kept"}
    assert set(errors) == {"share"} and errors["share"].code == "cell.not_a_number"
    assert {i.code for i in input_issues(schema, values)} >= {"unknown_field", "required"}


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 600),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["sales", "heads", "share", "cross_border", "extra"]),
                       _values))
def test_fast_check_agrees_with_jsonschema(values) -> None:
    schema = input_schema(MODEL)
    fast = fast_check(schema)
    assert fast is not None
    values = {k: v for k, v in values.items() if v is not None}
    assert fast(values) == (not input_issues(schema, values))


def test_fast_check_declines_schemas_it_does_not_know() -> None:
    schema = input_schema(MODEL)
    assert fast_check({**schema, "minProperties": 1}) is None
    odd = {**schema, "properties": {**schema["properties"], "x": {"type": "string"}}}
    assert fast_check(odd) is None
