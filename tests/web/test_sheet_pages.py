"""The Spreadsheets pages: downloads, uploads with their reports, and who may use them.

Each test starts from the seeded demo; what an upload changes is rolled back with the
test's transaction (tests/conftest.py).
"""

from __future__ import annotations

import io
import re

import openpyxl
import pytest
from sheet_support import PERIOD, attribute_rows, cell_for, codes_under, saved
from sheet_support import post_file as upload
from sheet_support import workbook as workbook_of
from sqlalchemy import select

from quotaflow.store import db
from quotaflow.store.models import AttributeValue, AuditEntry, OrgUnit, UnitResult
from quotaflow.store.queries import period_by_code, unit_by_code


def audit_count(app, action: str) -> int:
    with app.app_context():
        return len(db.session.scalars(select(AuditEntry.id).where(AuditEntry.action == action)).all())


def report_rows(html: str) -> list[tuple[str, str, str]]:
    """(code, row, column) of every line of the error report."""
    return re.findall(r'<tr data-code="([^"]+)">\s*<td class="num" data-row="([^"]*)">.*?'
                      r'data-column="([^"]*)"', html, re.S)


# ---------------------------------------------------------------------------- page and menu


def test_writer_sees_downloads_and_upload(as_user) -> None:
    html = as_user("head.east").get("/sheets/").data.decode()
    assert 'href="/sheets/"' in html  # the menu entry
    assert 'data-testid="download-xlsx"' in html and 'data-testid="download-csv"' in html
    assert 'data-testid="upload-inputs"' in html
    assert 'data-testid="upload-org"' not in html  # imports are for administrators


def test_reader_sees_no_upload_and_no_menu_entry(as_user) -> None:
    for username in ("sales.p0001", "cfo"):
        html = as_user(username).get("/sheets/").data.decode()
        assert 'data-testid="upload-inputs"' not in html
        assert 'href="/sheets/"' not in html
        assert "Your role does not change inputs" in html


def test_admin_sees_the_three_imports(as_user) -> None:
    html = as_user("hrbp").get("/sheets/").data.decode()
    for kind in ("org", "people", "history"):
        assert f'data-testid="upload-{kind}"' in html
        assert f'href="/sheets/templates/{kind}.xlsx"' in html
        assert f'href="/sheets/templates/{kind}.csv"' in html


# ---------------------------------------------------------------------------- downloads


def test_region_head_downloads_only_their_region(app, as_user) -> None:
    client = as_user("head.east")
    workbook = workbook_of(client.get("/sheets/inputs.xlsx"))
    codes = {row[0] for row in workbook.worksheets[0].iter_rows(min_row=3, max_col=1,
                                                                values_only=True)}
    assert codes == codes_under(app, "EAST")
    response = client.get("/sheets/inputs.csv?period=2026Q4")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.data.decode("utf-8-sig").splitlines()
    assert body[1].startswith("unit_code,name,level,")
    assert {line.split(",")[0] for line in body[2:]} == codes_under(app, "EAST")


@pytest.mark.parametrize("username", ["sales.p0001", "ceo"])
def test_readers_cannot_download_inputs(as_user, username: str) -> None:
    client = as_user(username)
    assert client.get("/sheets/inputs.xlsx").status_code == 403
    assert client.get("/sheets/inputs.csv").status_code == 403


def test_unknown_format_or_period_is_not_found(as_user) -> None:
    client = as_user("head.east")
    assert client.get("/sheets/inputs.pdf").status_code == 404
    assert client.get("/sheets/inputs.xlsx?period=1999Q1").status_code == 404


# ---------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("username", ["sales.p0001", "cfo"])
def test_readers_cannot_upload_inputs(app, as_user, username: str) -> None:
    content = workbook_of(as_user("head.east").get("/sheets/inputs.xlsx")).worksheets[0]
    content["D3"] = 1
    before = attribute_rows(app)
    response = upload(as_user(username), "/sheets/inputs",
                      saved(content.parent), "inputs.xlsx", period=PERIOD)
    assert response.status_code == 403
    assert attribute_rows(app) == before


@pytest.mark.usefixtures("inputs_open")
def test_round_trip_through_the_page(app, as_user) -> None:
    client = as_user("head.ne")
    original = client.get("/sheets/inputs.xlsx").data
    workbook = openpyxl.load_workbook(io.BytesIO(original))
    target = cell_for(workbook.worksheets[0], "NE-T3", "cost")
    target.value = (target.value or 0) + 1000
    imports = audit_count(app, "import_inputs")
    response = upload(client, "/sheets/inputs", saved(workbook), "ne.xlsx", period=PERIOD)
    assert response.status_code == 200
    assert 'data-testid="import-summary"' in response.data.decode()
    with app.app_context():
        unit = unit_by_code(db.session, "NE-T3")
        period = period_by_code(db.session, PERIOD)
        stored = db.session.get(AttributeValue, (period.id, "cost", unit.id)).value
    assert stored == target.value
    assert audit_count(app, "import_inputs") == imports + 1
    # Uploading the original file puts the value back.
    assert upload(client, "/sheets/inputs", original, "ne.xlsx", period=PERIOD).status_code == 200
    with app.app_context():
        assert db.session.get(AttributeValue, (period.id, "cost", unit.id)).value == target.value - 1000


def test_bad_rows_get_a_report_and_change_nothing(app, as_user) -> None:
    client = as_user("admin")  # English
    workbook = workbook_of(client.get("/sheets/inputs.xlsx"))
    sheet = workbook.worksheets[0]
    bad = cell_for(sheet, "SOUTH-T3", "product_fit")
    bad.value = "very good"
    high = cell_for(sheet, "SOUTH-T4", "new_city_share")
    high.value = 3
    cell_for(sheet, "SOUTH-T5", "product_fit").value = 12.5  # a good change, not applied
    sheet.cell(2, sheet.max_column + 1).value = "bonus"
    before = attribute_rows(app)
    response = upload(client, "/sheets/inputs", saved(workbook), "all.xlsx", period=PERIOD)
    assert response.status_code == 422
    html = response.data.decode()
    assert "Nothing was saved" in html
    rows = report_rows(html)
    assert ("cell.not_a_number", str(bad.row), bad.column_letter) in rows
    assert ("input.maximum", str(high.row), high.column_letter) in rows
    assert ("column.unknown", "2", openpyxl.utils.get_column_letter(sheet.max_column)) in rows
    assert "“very good” is not a number." in html
    assert "3 is above the maximum, 1." in html
    assert "Unknown column “bonus”." in html
    assert attribute_rows(app) == before


def test_a_zh_user_gets_the_report_too(app, as_user) -> None:
    client = as_user("lead.east.t1")
    workbook = workbook_of(client.get("/sheets/inputs.xlsx"))
    sheet = workbook.worksheets[0]
    sheet.cell(sheet.max_row + 1, 1).value = "SOUTH"  # outside their scope
    before = attribute_rows(app)
    response = upload(client, "/sheets/inputs", saved(workbook), "组.xlsx", period=PERIOD)
    assert response.status_code == 422
    assert ("unit.unknown", str(sheet.max_row), "A") in report_rows(response.data.decode())
    assert attribute_rows(app) == before


@pytest.mark.parametrize(("name", "content", "message"), [
    ("photo.pdf", b"%PDF-1.4", "is not an .xlsx or .csv file"),
    ("inputs.xlsx", b"garbage", "cannot be read as a spreadsheet"),
])
def test_other_files_are_refused_clearly(as_user, name: str, content: bytes, message: str) -> None:
    response = upload(as_user("admin"), "/sheets/inputs", content, name, period=PERIOD)
    assert response.status_code == 422
    assert message in response.data.decode()


def test_missing_file(as_user) -> None:
    response = as_user("admin").post("/sheets/inputs", data={"period": PERIOD})
    assert response.status_code == 422
    assert "Choose a file to upload." in response.data.decode()


def test_too_large_upload_is_refused_with_the_limit(app, as_user) -> None:
    client = as_user("admin")
    limit = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 4096
    try:
        response = upload(client, "/sheets/inputs", b"x" * 10_000, "big.csv", period=PERIOD)
    finally:
        app.config["MAX_CONTENT_LENGTH"] = limit
    assert response.status_code == 413
    assert "The file is larger than the limit of 4 KB." in response.data.decode()


# ---------------------------------------------------------------------------- admin imports


def test_region_head_cannot_use_the_admin_imports(app, as_user) -> None:
    client = as_user("head.east")
    content = "code,parent_code,level,name_en,name_zh\nEAST-T1,EAST,team,Hacked,改\n".encode()
    for kind in ("org", "people", "history"):
        assert upload(client, f"/sheets/import/{kind}", content, "x.csv").status_code == 403
        assert client.get(f"/sheets/templates/{kind}.xlsx").status_code == 403
    with app.app_context():
        assert unit_by_code(db.session, "EAST-T1").name_en != "Hacked"


def test_templates_download_for_admins(as_user) -> None:
    client = as_user("hrbp")
    sheet = workbook_of(client.get("/sheets/templates/org.xlsx")).worksheets[0]
    assert [c.value for c in sheet[1]][:3] == ["code", "parent_code", "level"]
    assert str(sheet["A2"].value).startswith("#")
    history = client.get("/sheets/templates/history.csv")
    assert history.data.decode("utf-8-sig").startswith("unit_code,period,sales")
    assert client.get("/sheets/templates/plans.xlsx").status_code == 404


def test_org_import_report_through_the_page(app, as_user) -> None:
    client = as_user("admin")
    content = ("code,parent_code,level,name_en,name_zh\n"
               "NE,NE-T1,region,North-East,东北\n"
               "ZZ-9,NOWHERE,team,A,甲\n").encode()
    with app.app_context():
        before = sorted(db.session.execute(select(OrgUnit.id, OrgUnit.path, OrgUnit.parent_id)).all())
    response = upload(client, "/sheets/import/org", content, "org.csv")
    assert response.status_code == 422
    rows = report_rows(response.data.decode())
    assert ("org.cycle", "2", "B") in rows and ("org.unknown_parent", "3", "B") in rows
    with app.app_context():
        assert sorted(db.session.execute(
            select(OrgUnit.id, OrgUnit.path, OrgUnit.parent_id)).all()) == before


def test_history_import_through_the_page(app, as_user) -> None:
    with app.app_context():
        unit = unit_by_code(db.session, "P0001")
        period = period_by_code(db.session, "2026Q3")
        value = db.session.get(UnitResult, (unit.id, period.id, "sales")).value
    content = f"unit_code,period,sales\nP0001,2026Q3,{value!r}\n".encode()
    response = upload(as_user("hrbp"), "/sheets/import/history", content, "history.csv")
    assert response.status_code == 200
    assert 'data-testid="import-summary"' in response.data.decode()
    assert audit_count(app, "import_history") >= 1
