"""Rendering data (pure) and the accessible HTML the Jinja macro prints from it."""

from __future__ import annotations

import re

from form_support import SPEC

from quotaflow.forms import FieldError, build_form


def by_name(view):
    return {f.name: f for f in view.fields}


def test_fields_in_order_with_labels_and_help_in_the_locale() -> None:
    en = build_form(SPEC, {}, {}, roles={"region_head"}, locale="en")
    zh = build_form(SPEC, {}, {}, roles={"region_head"}, locale="zh")
    assert [f.name for f in en.fields][:2] == ["reason", "amount"]
    assert (en.title, zh.title) == ("Evidence", "证据")
    assert (by_name(en)["amount"].label, by_name(zh)["amount"].label) == ("Amount", "金额")
    assert (by_name(en)["amount"].help, by_name(zh)["amount"].help) == ("In yuan.", "单位：元。")
    assert by_name(en)["reason"].label == "reason"  # no label: the field name
    assert by_name(en)["reason"].required and not by_name(en)["people"].required


def test_labels_fall_back_to_the_schema_titles() -> None:
    spec = {**SPEC, "ui": {}, "schema": {"type": "object", "properties": {
        "x": {"type": "number", "title": "Ex", "x-label-zh": "叉", "x-help": "Help"}}}}
    assert by_name(build_form(spec, {}, {}, roles=set(), locale="zh"))["x"].label == "叉"
    field = by_name(build_form(spec, {}, {}, roles=set(), locale="en"))["x"]
    assert (field.label, field.help) == ("Ex", "Help")


def test_values_and_number_limits() -> None:
    view = build_form(SPEC, {"amount": 1000000.0, "people": 3, "urgent": True, "city": "new",
                             "due": "2026-10-01"}, {}, roles={"hrbp"}, locale="en")
    fields = by_name(view)
    assert fields["amount"].value == "1000000"
    assert (fields["amount"].min, fields["amount"].max, fields["amount"].step) == ("0", "1000000", "any")
    assert (fields["people"].value, fields["people"].step, fields["people"].min) == ("3", "1", "1")
    assert fields["urgent"].checked
    assert fields["due"].value == "2026-10-01"
    assert fields["reason"].max_length == 500
    assert [(o.value, o.label, o.selected) for o in fields["city"].options] == [
        ("new", "Newly opened", True), ("mature", "mature", False)]
    assert by_name(build_form(SPEC, {"amount": 0.25}, {}, roles=set(), locale="en"))["amount"].value == "0.25"


def test_fields_the_roles_may_not_edit_are_read_only() -> None:
    assert by_name(build_form(SPEC, {}, {}, roles={"region_head"}, locale="en"))["people"].readonly
    assert not by_name(build_form(SPEC, {}, {}, roles={"hrbp"}, locale="en"))["people"].readonly
    assert not by_name(build_form(SPEC, {}, {}, roles={"region_head"}, locale="en"))["amount"].readonly


def test_errors_sit_beside_their_field() -> None:
    errors = {"/amount": FieldError("/amount", "maximum", {"limit": 1000000}),
              "/lines/0/customer": "必填", "": "whole form", "/gone": "old field"}
    view = build_form(SPEC, {"amount": "2000000", "lines": [{"value": 3}]}, errors,
                      roles=set(), locale="en")
    amount = by_name(view)["amount"]
    assert amount.error == "Must be at most 1000000."
    assert amount.value == "2000000"
    assert amount.described_by == "f-amount-error f-amount-help"
    assert view.has_errors
    assert view.errors == ("whole form", "old field")  # no field to sit beside
    cell = by_name(view)["lines"].rows[0][0]
    assert (cell.name, cell.id, cell.pointer, cell.error) == (
        "lines.0.customer", "f-lines-0-customer", "/lines/0/customer", "必填")
    assert by_name(view)["reason"].described_by is None


def test_repeated_rows_become_rows_of_sub_fields() -> None:
    view = build_form(SPEC, {"lines": [{"customer": "A", "value": 2.0}, {"customer": "B"}]}, {},
                      roles=set(), locale="zh")
    lines = by_name(view)["lines"]
    assert lines.widget == "rows"
    assert [c.label for c in lines.columns] == ["客户", "value"]
    assert [[(c.name, c.value) for c in row] for row in lines.rows] == [
        [("lines.0.customer", "A"), ("lines.0.value", "2")],
        [("lines.1.customer", "B"), ("lines.1.value", "")]]
    assert view.multipart  # the screenshot is a file field


def render(app, view) -> str:
    from flask import render_template_string

    # The view is built in English; the page chrome follows the request's language.
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        return render_template_string(
            '{% import "forms/macros.html" as forms %}{{ forms.render_fields(view) }}', view=view)


def test_the_macro_ties_labels_errors_and_help_to_inputs(app) -> None:
    errors = {"/amount": "Too big", "/lines/0/customer": "Required"}
    view = build_form(SPEC, {"amount": "5", "urgent": True, "screenshot": 12,
                             "lines": [{"value": 1}]}, errors, roles={"region_head"}, locale="en")
    html = render(app, view)
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert target in ids, target
    for described in re.findall(r'aria-describedby="([^"]+)"', html):
        assert set(described.split()) <= ids, described
    amount = re.search(r'<input type="number" id="f-amount"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in amount
    assert 'aria-describedby="f-amount-error f-amount-help"' in amount
    assert '<span id="f-amount-error" class="error" data-testid="error-amount">Too big</span>' in html
    assert re.search(r'<textarea id="f-reason" name="reason"[^>]*maxlength="500"', html)
    assert re.search(r'<input type="checkbox" id="f-urgent" name="urgent" value="on" checked', html)
    assert re.search(r'<input type="number" id="f-people"[^>]* readonly', html)
    assert '<select id="f-city" name="city"' in html
    assert '<input type="date" id="f-due" name="due"' in html
    assert '<a href="/uploads/12">' in html and 'name="screenshot" value="12"' in html
    assert '<fieldset class="form-rows" id="f-lines"' in html
    assert "<legend>lines</legend>" in html and "<legend>lines, row 1</legend>" in html
    assert 'name="_rows" value="add:lines"' in html
    assert 'name="_rows" value="remove:lines:0"' in html
    assert re.search(r'id="f-lines-0-customer"[^>]*aria-invalid="true"', html)
    assert "<script" not in html and "onclick" not in html
