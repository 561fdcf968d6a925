"""Form specs: the schema of quotaflow/schemas/form.schema.json plus the semantic checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from form_support import SPEC
from jsonschema import Draft202012Validator

from quotaflow.forms import FormSpecError, check_form_spec, form_fields, validate_form_spec
from quotaflow.forms.generated import inputs_form_spec
from quotaflow.forms.spec import ROLES as FORM_ROLES
from quotaflow.services.access import ROLES

ROOT = Path(__file__).resolve().parents[2]



def spec_with(**changes):
    doc = copy.deepcopy(SPEC)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for part in parents:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return doc


def pointers(doc) -> dict[str, str]:
    return {issue.pointer: issue.code for issue in validate_form_spec(doc)}


def test_the_form_schema_is_a_valid_json_schema() -> None:
    schema = json.loads((ROOT / "quotaflow/schemas/form.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)


def test_a_good_spec_has_no_issues() -> None:
    assert validate_form_spec(SPEC) == []
    assert check_form_spec(SPEC) is SPEC


def test_form_roles_are_the_access_roles() -> None:
    assert FORM_ROLES == ROLES


@pytest.mark.parametrize(("changes", "where", "code"), [
    ({"title_zh": None}, "", "schema.required"),
    ({"key": "has space"}, "/key", "schema.pattern"),
    ({"schema__type": "array"}, "/schema/type", "schema.const"),
    ({"ui__widgets__amount": "slider"}, "/ui/widgets/amount", "schema.enum"),
    ({"ui__labels__amount": {"en": "only english"}}, "/ui/labels/amount", "schema.required"),
    ({"ui__extra": {}}, "/ui", "schema.additionalProperties"),
])
def test_structural_issues_point_at_the_place(changes, where, code) -> None:
    assert pointers(spec_with(**changes)).get(where) == code


def test_the_data_schema_must_itself_be_valid() -> None:
    doc = spec_with(schema__properties__amount={"type": "decimal"})
    issues = validate_form_spec(doc)
    assert issues[0].pointer == "/schema/properties/amount/type"
    assert issues[0].code.startswith("data_schema.")
    with pytest.raises(FormSpecError) as caught:
        check_form_spec(doc)
    assert caught.value.pointer == "/schema/properties/amount/type"


@pytest.mark.parametrize(("section", "value", "where"), [
    ("order", ["reason", "nope"], "/ui/order/1"),
    ("widgets", {"nope": "text"}, "/ui/widgets/nope"),
    ("labels", {"nope": {"en": "x", "zh": "x"}}, "/ui/labels/nope"),
    ("help", {"lines.nope": {"en": "x", "zh": "x"}}, "/ui/help/lines.nope"),
    ("editable_by", {"nope": ["hrbp"]}, "/ui/editable_by/nope"),
])
def test_ui_names_must_exist_in_the_schema(section, value, where) -> None:
    assert pointers(spec_with(**{f"ui__{section}": value})) == {where: "unknown_field"}


@pytest.mark.parametrize(("field", "widget"), [
    ("amount", "checkbox"), ("amount", "select"), ("reason", "number"), ("urgent", "text"),
    ("reason", "file"), ("amount", "rows"), ("screenshot", "date"),
])
def test_widgets_must_fit_the_field_type(field, widget) -> None:
    assert pointers(spec_with(**{f"ui__widgets__{field}": widget})) == {
        f"/ui/widgets/{field}": "widget_mismatch"}


def test_rows_need_an_array_of_objects() -> None:
    doc = spec_with(schema__properties__lines={"type": "array", "items": {"type": "string"}})
    assert pointers(doc) == {"/ui/widgets/lines": "widget_mismatch",
                             "/ui/labels/lines.customer": "unknown_field"}


def test_roles_must_be_known() -> None:
    doc = spec_with(ui__editable_by={"people": ["hrbp", "boss"]})
    issues = validate_form_spec(doc)
    assert [(i.pointer, i.code) for i in issues] == [("/ui/editable_by/people/1", "unknown_role")]
    assert "region_head" in issues[0].message


def test_option_labels_must_name_enum_values() -> None:
    doc = spec_with(ui__options={"city": {"old": {"en": "Old", "zh": "旧"}},
                                 "amount": {"1": {"en": "One", "zh": "一"}}})
    assert pointers(doc) == {"/ui/options/city/old": "unknown_option", "/ui/options/amount": "no_enum"}


def test_field_names_must_be_usable_as_input_names() -> None:
    doc = spec_with(schema__properties={**SPEC["schema"]["properties"], "a/b": {"type": "string"}})
    assert pointers(doc) == {"/schema/properties/a~1b": "bad_field_name"}


def test_a_field_no_widget_can_edit_is_refused() -> None:
    doc = spec_with(schema__properties={**SPEC["schema"]["properties"], "blob": {"type": "object"}})
    assert pointers(doc) == {"/schema/properties/blob": "unsupported_type"}


def test_fields_come_in_ui_order_then_schema_order() -> None:
    fields = form_fields(SPEC)
    assert [f.path for f in fields] == ["reason", "amount", "people", "city", "urgent", "due",
                                        "screenshot", "lines"]
    widgets = {f.path: f.widget for f in fields}
    assert widgets == {"reason": "textarea", "amount": "number", "people": "number",
                       "city": "select", "urgent": "checkbox", "due": "date",
                       "screenshot": "file", "lines": "rows"}
    lines = fields[-1]
    assert [(c.path, c.widget, c.required) for c in lines.children] == [
        ("lines.customer", "text", True), ("lines.value", "number", False)]
    assert [f.path for f in fields if f.required] == ["reason", "amount"]


def test_local_refs_are_followed() -> None:
    doc = spec_with(schema__properties__amount={"$ref": "#/$defs/money"})
    doc["schema"]["$defs"] = {"money": {"type": "number", "minimum": 0}}
    assert validate_form_spec(doc) == []
    assert form_fields(doc)[1].widget == "number"


def test_the_inputs_form_is_generated_from_the_factor_model() -> None:
    model = json.loads((ROOT / "quotaflow/seed_data/specs/factor_model.json").read_text(encoding="utf-8"))
    spec = inputs_form_spec(model)
    assert validate_form_spec(spec) == []
    assert spec["ui"]["order"] == [f["name"] for f in model["fields"]]
    assert spec["ui"]["widgets"]["headcount"] == "number"
    assert spec["ui"]["labels"]["headcount"] == {"en": "Headcount", "zh": "人数"}
    assert "cost" not in spec["schema"]["required"]
    assert spec["schema"]["properties"]["new_city_share"]["maximum"] == 1
    assert inputs_form_spec(copy.deepcopy(model)) == spec  # same model, same form
    model["fields"].append({"name": "cross_border", "type": "boolean", "label_en": "Cross-border",
                            "label_zh": "跨境", "help": "Serves customers abroad."})
    grown = inputs_form_spec(model)
    assert grown["ui"]["widgets"]["cross_border"] == "checkbox"
    assert grown["ui"]["help"]["cross_border"] == {"en": "Serves customers abroad.",
                                                   "zh": "Serves customers abroad."}
