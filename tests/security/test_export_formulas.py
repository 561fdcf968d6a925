"""Issue 11 #6: a unit name or plan note that starts like a formula must be text in every
file the product writes (the plan export, the inputs workbook and its CSV twin).

Units are renamed to formula payloads, then each file is downloaded through the real
pages: in .xlsx no cell is a formula and each payload is a text cell with the quote
prefix; in .csv each payload is written with a leading ``'``. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook
from plan_support import own_period
from sqlalchemy import select

from quotaflow.services import export_writer, plans, whatif
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import OrgUnit

PAYLOADS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3+cmd",
            "@SUM(1+9)*cmd", "\t=1+1"]
LEAD = "lead.east.t1"


def _csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def _rename(codes: list[str]) -> dict[str, str]:
    named = dict(zip(codes, PAYLOADS, strict=False))
    for unit in db.session.scalars(select(OrgUnit).where(OrgUnit.code.in_(named))):
        unit.name_en = unit.name_zh = named[unit.code]
    db.session.flush()
    return named


def _assert_no_formula(data: bytes, expected: set[str]) -> None:
    book = load_workbook(io.BytesIO(data))
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if export_writer.is_formula_like(cell.value):
                    assert cell.data_type == "s" and cell.quotePrefix, cell.coordinate
                    seen.add(cell.value)
    assert expected <= seen


@pytest.fixture
def renamed(app, as_user) -> tuple[object, dict[str, str]]:
    client = as_user(LEAD)
    rows = _csv(client.get("/sheets/inputs.csv").data)
    codes = [r[0] for r in rows[2:]][: len(PAYLOADS)]
    assert len(codes) == len(PAYLOADS)
    return client, _rename(codes)


def test_inputs_workbook_holds_the_names_as_text(renamed) -> None:
    client, named = renamed
    response = client.get("/sheets/inputs.xlsx")
    assert response.status_code == 200
    _assert_no_formula(response.data, set(named.values()))


def test_inputs_csv_quotes_the_names(renamed) -> None:
    client, named = renamed
    rows = _csv(client.get("/sheets/inputs.csv").data)
    names = {r[0]: r[1] for r in rows[2:]}
    for code, payload in named.items():
        assert names[code] == "'" + payload
    # Numbers are still written as numbers.
    assert any(r[3].replace(".", "").isdigit() for r in rows[2:] if len(r) > 3)


def test_plan_export_holds_names_and_note_as_text(app, as_user) -> None:
    codes = list(db.session.scalars(select(OrgUnit.code).where(OrgUnit.depth == 1)
                                    .order_by(OrgUnit.code)))[:4]
    named = _rename(codes)
    period = own_period(db.session)
    plan = plans.create_plan(db.session, q.user_by_username(db.session, "cfo"), period,
                             "aggressive", 249_500_000, '=HYPERLINK("http://evil.example","n")')
    response = as_user("cfo").get(f"/plans/{plan.id}/export.xlsx")
    assert response.status_code == 200
    _assert_no_formula(response.data, {*named.values(), '=HYPERLINK("http://evil.example","n")'})
    units = load_workbook(io.BytesIO(response.data)).worksheets[1]
    targets = [row[4].value for row in units.iter_rows(min_row=2)]
    assert targets and all(isinstance(v, int | float) for v in targets)  # numbers stay numbers


def test_the_writer_rule() -> None:
    assert export_writer.safe_text("=1") == "'=1"
    assert export_writer.safe_text("\r=1") == "'\r=1"
    assert export_writer.safe_text(-5) == -5 and export_writer.safe_text("a-b") == "a-b"
    assert export_writer.csv_bytes([["-x", -1.5, 2.0]]).decode("utf-8-sig") == "'-x,-1.5,2\r\n"
    out = io.StringIO()
    export_writer.csv_writer(out).writerow(["@x", 3])
    assert out.getvalue().startswith("'@x,3")
    book = Workbook(write_only=True)
    sheet = book.create_sheet("s")
    export_writer.append(sheet, ["=1+1", export_writer.cell(sheet, "+2"), -3])
    data = export_writer.workbook_bytes(book)
    cells = next(load_workbook(io.BytesIO(data))["s"].iter_rows())
    assert [(c.value, c.data_type) for c in cells] == [("=1+1", "s"), ("+2", "s"), (-3, "n")]


def test_whatif_snapshot_csv_quotes_names() -> None:
    snap = {"plan": {"period": "2026Q4", "number": 1, "scenario": "s"},
            "unit": {"code": "X", "target": 1}, "created_by": "=cmd", "created_at": "t",
            "units": [{"code": "X", "name_en": "=HYPERLINK(1)", "name_zh": "@x", "level": "l",
                       "parent": "", "plan": 1, "whatif": -2, "diff": -3}],
            "changes": [], "weights": []}
    text = whatif.snapshot_csv(snap).decode("utf-8-sig")
    assert "'=HYPERLINK(1)" in text and "'@x" in text and "'=cmd" in text
    assert ",-2,-3" in text
