"""One check of an input value on every path that writes one (the security finding:
the org page and the API saved ``hist_sales=-5`` and ``new_city_share=55``, after which
no plan could be computed for the company).

Each test writes an out-of-range value through one path of the real app, signed in as
the demo's HR business partner, and checks that the path refuses it naming the field
and that nothing was saved.
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import openpyxl
import pytest
from sqlalchemy import func, select

from quotaflow.rules.model import FieldSpec
from quotaflow.services import input_check
from quotaflow.services.forms import ensure_inputs_form
from quotaflow.services.input_check import InputCheckError
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, AuditEntry, FormSubmission, SpecVersion

UNIT = "EAST-T1"


def period_code(app) -> str:
    with app.app_context():
        return q.periods(db.session)[-1].code


def inputs(app) -> list[tuple]:
    """Every stored input value of every unit and period."""
    with app.app_context():
        return sorted(db.session.execute(select(
            AttributeValue.period_id, AttributeValue.name, AttributeValue.unit_id,
            AttributeValue.value)).all())


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def hrbp(as_user):
    return as_user("hrbp")


def test_the_org_page_refuses_a_value_outside_the_fields_range(app, hrbp) -> None:
    before, audits = inputs(app), count(app, AuditEntry)
    response = hrbp.post(f"/org/{UNIT}", data={"period": period_code(app),
                                               "attr:new_city_share": "55"})
    assert response.status_code == 400
    html = response.data.decode()
    assert 'id="err-new_city_share"' in html
    assert "new_city_share" in html and "55" in html
    assert inputs(app) == before and count(app, AuditEntry) == audits


def test_the_api_refuses_a_negative_value_with_its_pointer(app, hrbp) -> None:
    before = inputs(app)
    response = hrbp.put(f"/api/v1/units/{UNIT}/attributes",
                        json={"period": period_code(app), "values": {"hist_sales": -5}})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["details"]["pointer"] == "/values/hist_sales"
    assert error["details"]["field"] == "hist_sales"
    assert "hist_sales must be at least 0" in error["message"]
    assert inputs(app) == before


def test_the_api_refuses_clearing_a_required_value(app, hrbp) -> None:
    before = inputs(app)
    response = hrbp.put(f"/api/v1/units/{UNIT}/attributes",
                        json={"period": period_code(app), "values": {"headcount": None}})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["pointer"] == "/values/headcount"
    assert inputs(app) == before


def test_the_api_refuses_a_fraction_for_a_whole_number_field(app, hrbp) -> None:
    before = inputs(app)
    response = hrbp.put(f"/api/v1/units/{UNIT}/attributes",
                        json={"period": period_code(app), "values": {"headcount": 2.5}})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["pointer"] == "/values/headcount"
    assert inputs(app) == before


def test_the_collect_form_refuses_it(app, hrbp) -> None:
    with app.app_context():
        period = q.period_by_code(db.session, period_code(app))  # the planning period
        unit = q.unit_by_code(db.session, UNIT)
        values = q.unit_attributes(db.session, unit.id, period.id)
        fields = db.session.scalar(select(SpecVersion.content).where(
            SpecVersion.kind == "factor_model", SpecVersion.key == "default",
            SpecVersion.status == "active"))["fields"]
        form_version = ensure_inputs_form(db.session).version  # the page's form pins it
    data = {f["name"]: repr(values.get(f["name"], f.get("min", 1))) for f in fields}
    data["form_version"] = str(form_version)
    data["hist_sales"] = "-5"
    before, submitted = inputs(app), count(app, FormSubmission)
    response = hrbp.post(f"/collect/{UNIT}", data=data)
    assert response.status_code == 400
    assert 'data-testid="error-hist_sales"' in response.data.decode()
    assert inputs(app) == before and count(app, FormSubmission) == submitted


def _cell(sheet, code: str, name: str):
    column = next(c.column for c in sheet[2] if c.value == name)
    row = next(r[0].row for r in sheet.iter_rows(min_row=3, max_col=1) if r[0].value == code)
    return sheet.cell(row, column)


def test_the_xlsx_upload_refuses_it_by_row_and_column(app, hrbp) -> None:
    book = openpyxl.load_workbook(io.BytesIO(hrbp.get("/sheets/inputs.xlsx").data))
    cell = _cell(book.worksheets[0], UNIT, "hist_sales")
    cell.value = -5
    out = io.BytesIO()
    book.save(out)
    before = inputs(app)
    response = hrbp.post("/sheets/inputs", data={
        "file": (io.BytesIO(out.getvalue()), "inputs.xlsx"), "period": period_code(app)},
        content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.data.decode()
    assert f'data-row="{cell.row}"' in html and f'data-column="{cell.column_letter}"' in html
    assert 'data-code="input.minimum"' in html
    assert inputs(app) == before


def test_the_csv_upload_refuses_it_by_row_and_column(app, hrbp) -> None:
    rows = list(csv.reader(io.StringIO(hrbp.get("/sheets/inputs.csv").data.decode("utf-8-sig"))))
    column = rows[1].index("new_city_share")
    row = next(i for i, r in enumerate(rows) if r[0] == UNIT)
    rows[row][column] = "55"
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    before = inputs(app)
    response = hrbp.post("/sheets/inputs", data={
        "file": (io.BytesIO(text.getvalue().encode("utf-8-sig")), "inputs.csv"),
        "period": period_code(app)}, content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.data.decode()
    letter = openpyxl.utils.get_column_letter(column + 1)
    assert f'data-row="{row + 1}"' in html and f'data-column="{letter}"' in html
    assert 'data-code="input.maximum"' in html
    assert inputs(app) == before


def test_a_bundle_carrying_values_is_refused(app, hrbp) -> None:
    bundle = json.loads(hrbp.get("/config/bundle.json").data)
    bundle["values"] = {UNIT: {"hist_sales": -5}}
    before, versions = inputs(app), count(app, SpecVersion)
    response = hrbp.post("/config/bundle", data={
        "bundle": (io.BytesIO(json.dumps(bundle).encode()), "bundle.json")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "values" in response.data.decode()
    assert inputs(app) == before and count(app, SpecVersion) == versions


# ---------------------------------------------------------------------------- the check


def test_one_check_for_the_planner_and_the_writes() -> None:
    share = FieldSpec("new_city_share", min=0, max=1)
    heads = FieldSpec("headcount", type="integer", min=0)
    flag = FieldSpec("flag", type="boolean", required=False, default=False)
    assert share.check(np.array([0.0, 1.0])) is None
    code, bad = share.check(np.array([0.5, 55.0, -1.0]))
    assert code == "out_of_range" and bad.tolist() == [False, True, True]
    assert heads.check(np.array([1.0, np.nan]))[0] == "missing"
    assert heads.check(np.array([2.5]))[0] == "not_integer"
    assert flag.check(np.array([np.nan, 1.0])) is None  # the default stands in
    assert flag.check(np.array([2.0]))[0] == "not_boolean"
    assert share.check(np.array([np.inf]))[0] == "out_of_range"

    fields = {f.name: f for f in (share, heads, flag)}
    input_check.refuse_bad_values(fields, {"new_city_share": 0.5, "free_form": -5.0})
    with pytest.raises(InputCheckError) as caught:
        input_check.refuse_bad_values(fields, {"new_city_share": 55.0})
    error = caught.value
    assert (error.code, error.pointer, error.status) == ("above_maximum",
                                                         "/values/new_city_share", 422)
    assert error.message == "new_city_share must be at most 1; got 55."
    assert error.localized("zh") != error.message
    with pytest.raises(InputCheckError, match="needs a value"):
        input_check.refuse_bad_values(fields, {"headcount": None})
