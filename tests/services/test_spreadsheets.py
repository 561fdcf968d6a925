"""Spreadsheet round trip of inputs, and the org / people / history imports.

These tests move units and rewrite values; each starts from the seeded demo (its
transaction is rolled back at its end, tests/conftest.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator

import openpyxl
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from quotaflow.services import org_import
from quotaflow.services import spreadsheets as sheets
from quotaflow.services.access import Grant, Principal
from quotaflow.services.auth import principal_for
from quotaflow.store import db
from quotaflow.store.models import AttributeValue, AuditEntry, OrgUnit, UnitResult
from quotaflow.store.queries import (
    in_paths,
    period_by_code,
    unit_attributes,
    unit_by_code,
    user_by_username,
)

PERIOD = "2026Q4"
ORG_HEADER = "code,parent_code,level,name_en,name_zh,city_en,city_zh,new_city,opened\n"


@pytest.fixture
def session(app) -> Iterator[Session]:
    with app.app_context():
        yield db.session()


def who(session: Session, username: str):
    user = user_by_username(session, username)
    return user, principal_for(user)


def period(session: Session):
    return period_by_code(session, PERIOD)


def book(content: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(content))


def saved(workbook: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def column_of(sheet, name: str) -> int:
    """The 1-based column whose row-2 field name is ``name``."""
    for cell in sheet[2]:
        if cell.value == name:
            return cell.column
    raise KeyError(name)


def row_of(sheet, code: str) -> int:
    for row in sheet.iter_rows(min_row=3, max_col=1):
        if row[0].value == code:
            return row[0].row
    raise KeyError(code)


def snapshot(session: Session) -> dict[str, list[tuple]]:
    """Every row of the tables an import may write (audit_log excluded: append-only)."""
    session.expire_all()
    return {
        "attributes": sorted(session.execute(select(
            AttributeValue.period_id, AttributeValue.name, AttributeValue.unit_id,
            AttributeValue.value)).all()),
        "units": sorted(session.execute(select(
            OrgUnit.id, OrgUnit.code, OrgUnit.parent_id, OrgUnit.path, OrgUnit.depth,
            OrgUnit.name_en, OrgUnit.name_zh, OrgUnit.city_en, OrgUnit.city_zh,
            OrgUnit.opened)).all()),
        "results": sorted(session.execute(select(
            UnitResult.unit_id, UnitResult.period_id, UnitResult.metric, UnitResult.value)).all()),
    }


def subtree_codes(session: Session, code: str) -> set[str]:
    unit = unit_by_code(session, code)
    return set(session.scalars(select(OrgUnit.code).where(in_paths([unit.path]))))


def last_audit(session: Session) -> AuditEntry:
    return session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))


def refused(call) -> sheets.SheetImportError:
    with pytest.raises(sheets.SheetImportError) as caught:
        call()
    return caught.value


def places(error: sheets.SheetImportError) -> set[tuple[int | None, str | None, str]]:
    return {(i.row, i.column, i.code) for i in error.issues}


# ---------------------------------------------------------------------------- export


def test_region_head_workbook_holds_only_their_region(session) -> None:
    _user, principal = who(session, "head.east")
    export = sheets.export_inputs_xlsx(session, principal, period(session), "zh")
    assert export.filename == f"inputs-{PERIOD}-EAST.xlsx"
    workbook = book(export.content)
    sheet = workbook.worksheets[0]
    codes = [row[0] for row in sheet.iter_rows(min_row=3, max_col=1, values_only=True)]
    assert set(codes) == subtree_codes(session, "EAST")
    assert len(codes) == len(set(codes)) == export.rows
    assert codes[0] == "EAST" and codes[1] == "EAST-T1"  # tree order: a team, then its people
    assert "SOUTH" not in codes and "HQ" not in codes


def test_team_lead_workbook_holds_their_team_and_people(session) -> None:
    _user, principal = who(session, "lead.east.t2")
    sheet = book(sheets.export_inputs_xlsx(session, principal, period(session), "en").content
                 ).worksheets[0]
    codes = {row[0] for row in sheet.iter_rows(min_row=3, max_col=1, values_only=True)}
    assert codes == subtree_codes(session, "EAST-T2")
    assert "EAST" not in codes


def test_workbook_layout_labels_names_protection_validation(session) -> None:
    _user, principal = who(session, "head.north")
    model = sheets.model_document(session)
    fields = model["fields"]
    workbook = book(sheets.export_inputs_xlsx(session, principal, period(session), "zh").content)
    assert workbook.sheetnames[:2] == ["Inputs", "README"]
    sheet = workbook.worksheets[0]
    names = [c.value for c in sheet[2]]
    assert names == ["unit_code", "name", "level", *(f["name"] for f in fields)]
    labels = [c.value for c in sheet[1]]
    assert labels[3:] == [f["label_zh"] for f in fields]  # the user's language
    assert sheet.protection.sheet is True
    assert sheet["A3"].protection.locked and sheet["B3"].protection.locked
    assert not sheet["D3"].protection.locked  # input cells are editable
    assert sheet["A3"].fill.fgColor.rgb.endswith("EEEEEE")  # read-only columns are shaded
    assert sheet.freeze_panes == "D3"
    validations = {str(dv.sqref): dv for dv in sheet.data_validations.dataValidation}
    last = sheet.max_row
    share_col = openpyxl.utils.get_column_letter(column_of(sheet, "new_city_share"))
    share = validations[f"{share_col}3:{share_col}{last}"]
    assert (share.type, share.operator, share.formula1, share.formula2) == (
        "decimal", "between", "0", "1")
    heads_col = openpyxl.utils.get_column_letter(column_of(sheet, "headcount"))
    heads = validations[f"{heads_col}3:{heads_col}{last}"]
    assert (heads.type, heads.operator, heads.formula1) == ("whole", "greaterThanOrEqual", "0")
    assert len(validations) == len(fields)
    readme = [row[0] for row in workbook["README"].iter_rows(values_only=True) if row and row[0]]
    assert "new_city_share" in readme
    meta = dict(workbook[sheets.META_SHEET].iter_rows(values_only=True))
    assert workbook[sheets.META_SHEET].sheet_state == "hidden"
    assert meta["period"] == PERIOD and meta["kind"] == sheets.INPUTS_KIND


def test_export_values_are_the_stored_ones(session) -> None:
    _user, principal = who(session, "head.west")
    sheet = book(sheets.export_inputs_xlsx(session, principal, period(session), "en").content
                 ).worksheets[0]
    unit = unit_by_code(session, "WEST-T1")
    stored = unit_attributes(session, unit.id, period(session).id)
    row = row_of(sheet, "WEST-T1")
    for name, value in stored.items():
        assert sheet.cell(row, column_of(sheet, name)).value == value


def test_user_without_write_scope_gets_an_empty_workbook(session) -> None:
    _user, principal = who(session, "ceo")
    export = sheets.export_inputs_xlsx(session, principal, period(session), "en")
    assert export.rows == 0


# ---------------------------------------------------------------------------- inputs import


@pytest.mark.usefixtures("inputs_open")
def test_round_trip_changes_only_the_edited_cells_in_one_transaction(session) -> None:
    user, principal = who(session, "head.central")
    p = period(session)
    workbook = book(sheets.export_inputs_xlsx(session, principal, p, "zh").content)
    sheet = workbook.worksheets[0]
    team = unit_by_code(session, "CENTRAL-T1")
    person = sorted(c.code for c in team.children)[0]
    sheet.cell(row_of(sheet, "CENTRAL-T1"), column_of(sheet, "market_potential")).value = "12,345,678.5"
    sheet.cell(row_of(sheet, person), column_of(sheet, "headcount")).value = 1
    sheet.cell(row_of(sheet, person), column_of(sheet, "product_fit")).value = 66.6
    sheet.cell(row_of(sheet, person), column_of(sheet, "cost")).value = None  # optional: cleared
    content = saved(workbook)
    before = snapshot(session)
    commits = []

    def count(db_session) -> None:
        commits.append(db_session)

    event.listen(session, "after_commit", count)
    try:
        result = sheets.import_inputs(session, user, principal, content, "central.xlsx", PERIOD)
    finally:
        event.remove(session, "after_commit", count)
    assert len(commits) == 1
    assert result.rows == len(subtree_codes(session, "CENTRAL"))
    person_id = unit_by_code(session, person).id
    assert result.values_changed == 3  # headcount of a person was already 1
    assert result.units_changed == 2
    assert unit_attributes(session, team.id, p.id)["market_potential"] == 12345678.5
    assert unit_attributes(session, person_id, p.id)["product_fit"] == 66.6
    assert "cost" not in unit_attributes(session, person_id, p.id)
    after = snapshot(session)
    changed = set(before["attributes"]) ^ set(after["attributes"])
    assert {(row[1], row[2]) for row in changed} == {
        ("market_potential", team.id), ("product_fit", person_id), ("cost", person_id)}
    entry = last_audit(session)
    assert (entry.action, entry.entity_type, entry.entity_id) == ("import_inputs", "period", PERIOD)
    assert entry.actor_name == "head.central"
    assert entry.after["values_changed"] == 3 and entry.after["rows"] == result.rows
    assert entry.after["sha256"] == hashlib.sha256(content).hexdigest() == result.sha256
    assert {(c["unit"], c["name"], c["after"]) for c in entry.after["changes"]} == {
        ("CENTRAL-T1", "market_potential", 12345678.5), (person, "product_fit", 66.6),
        (person, "cost", None)}


def test_unchanged_export_imports_with_no_changes(session) -> None:
    user, principal = who(session, "lead.north.t2")
    export = sheets.export_inputs_xlsx(session, principal, period(session), "en")
    before = snapshot(session)
    result = sheets.import_inputs(session, user, principal, export.content, export.filename,
                                  PERIOD)
    assert (result.values_changed, result.units_changed) == (0, 0)
    assert snapshot(session) == before


def test_bad_rows_are_each_reported_and_nothing_is_written(session) -> None:
    user, _principal = who(session, "head.south")
    south = unit_by_code(session, "SOUTH")
    # Reads everything (executive), writes only SOUTH: EAST is visible but read-only.
    principal = Principal(user.id, user.username, (Grant("executive", "HQ", "/"),
                                                  Grant("region_head", "SOUTH", south.path)))
    workbook = book(sheets.export_inputs_xlsx(session, principal, period(session), "en").content)
    sheet = workbook.worksheets[0]
    hist = column_of(sheet, "hist_sales")
    share = column_of(sheet, "new_city_share")
    heads = column_of(sheet, "headcount")
    sheet.cell(row_of(sheet, "SOUTH-T1"), hist).value = "lots"           # text in a number cell
    sheet.cell(row_of(sheet, "SOUTH-T2"), share).value = 1.5             # out of range
    sheet.cell(row_of(sheet, "SOUTH-T3"), heads).value = 2.5             # not whole
    sheet.cell(row_of(sheet, "SOUTH-T4"), hist).value = 1                # a good change, not applied
    end = sheet.max_row
    sheet.cell(end + 1, 1).value = "NOWHERE-9"                           # unknown unit
    sheet.cell(end + 2, 1).value = "EAST-T1"                             # outside the write scope
    sheet.cell(end + 3, 1).value = "SOUTH-T5"                            # duplicate row
    extra = sheet.max_column + 1
    sheet.cell(1, extra).value = "Bonus"
    sheet.cell(2, extra).value = "bonus"                                 # unknown column
    before = snapshot(session)
    error = refused(lambda: sheets.import_inputs(session, user, principal, saved(workbook),
                                                 "south.xlsx", PERIOD))
    letter = openpyxl.utils.get_column_letter
    found = places(error)
    assert (row_of(sheet, "SOUTH-T1"), letter(hist), "cell.not_a_number") in found
    assert (row_of(sheet, "SOUTH-T2"), letter(share), "input.maximum") in found
    assert (row_of(sheet, "SOUTH-T3"), letter(heads), "cell.not_an_integer") in found
    assert (end + 1, "A", "unit.unknown") in found
    assert (end + 2, "A", "unit.read_only") in found
    assert (end + 3, "A", "unit.duplicate") in found
    assert (2, letter(extra), "column.unknown") in found
    by_code = {i.code: i for i in error.issues}
    assert by_code["unit.duplicate"].params == {"code": "SOUTH-T5",
                                                "first": row_of(sheet, "SOUTH-T5")}
    assert by_code["input.maximum"].params["limit"] == 1
    assert by_code["cell.not_a_number"].header == "Sales, same quarter last year (yuan)"
    assert error.total == len(error.issues) == 7
    assert snapshot(session) == before


@pytest.mark.usefixtures("inputs_open")
def test_csv_with_bom_and_chinese_headers_in_any_order(session) -> None:
    user, principal = who(session, "lead.south.t2")
    export = sheets.export_inputs_csv(session, principal, period(session), "zh")
    assert export.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    labels, names, data = rows[0], rows[1], rows[2:]
    assert labels[3] == "去年同期销售额（元）" and names[3] == "hist_sales"
    # Keep only the Chinese label row, reverse the input columns, change one value.
    order = [0, 1, 2, *reversed(range(3, len(labels)))]
    target = next(r for r in data if r[0] == "SOUTH-T2")
    target[names.index("product_fit")] = "55.5"
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([labels[i] for i in order])
    for row in data:
        writer.writerow([row[i] for i in order])
    content = ("\ufeff" + out.getvalue()).encode("utf-8")
    result = sheets.import_inputs(session, user, principal, content, "团队.csv", PERIOD)
    assert result.values_changed == 1
    unit = unit_by_code(session, "SOUTH-T2")
    assert unit_attributes(session, unit.id, period(session).id)["product_fit"] == 55.5
    # The same file saved by Excel on Chinese Windows (GBK) reads the same.
    gbk = out.getvalue().replace("55.5", "56.5").encode("gb18030")
    assert sheets.import_inputs(session, user, principal, gbk, "团队.csv", PERIOD).values_changed == 1
    assert unit_attributes(session, unit.id, period(session).id)["product_fit"] == 56.5


def test_period_is_checked(session) -> None:
    user, principal = who(session, "lead.north.t1")
    export = sheets.export_inputs_xlsx(session, principal, period(session), "en")
    error = refused(lambda: sheets.import_inputs(session, user, principal, export.content,
                                                 "x.xlsx", "2026Q3"))
    assert [i.code for i in error.issues] == ["period.mismatch"]
    assert error.issues[0].params == {"file": PERIOD, "chosen": "2026Q3"}
    csv_export = sheets.export_inputs_csv(session, principal, period(session), "en")
    error = refused(lambda: sheets.import_inputs(session, user, principal, csv_export.content,
                                                 "x.csv", "2031Q1"))
    assert [(i.code, i.params) for i in error.issues] == [("period.unknown", {"period": "2031Q1"})]


@pytest.mark.parametrize(("name", "content", "code"), [
    ("inputs.pdf", b"%PDF-1.4 ...", "file.unsupported"),
    ("inputs.xls", b"\xd0\xcf\x11\xe0 old excel", "file.unsupported"),
    ("inputs.xlsx", b"not a zip at all", "file.unreadable"),
    ("inputs.xlsx", b"PK\x03\x04 broken zip", "file.unreadable"),
    ("inputs.csv", b"", "file.empty"),
    ("inputs.csv", b"\xff\xfe\x00\x00\x81", "file.encoding"),
])
def test_files_that_are_not_spreadsheets_are_refused(session, name, content, code) -> None:
    user, principal = who(session, "head.east")
    error = refused(lambda: sheets.import_inputs(session, user, principal, content, name, PERIOD))
    assert [i.code for i in error.issues] == [code]


def test_size_and_row_caps(session) -> None:
    user, principal = who(session, "head.east")
    export = sheets.export_inputs_csv(session, principal, period(session), "en")
    error = refused(lambda: sheets.import_inputs(session, user, principal, export.content,
                                                 "x.csv", PERIOD, max_bytes=1000))
    assert [(i.code, i.params) for i in error.issues] == [("file.too_large", {"max_bytes": 1000})]
    error = refused(lambda: sheets.import_inputs(session, user, principal, export.content,
                                                 "x.csv", PERIOD, max_rows=10))
    assert [(i.code, i.params) for i in error.issues] == [("file.too_many_rows", {"max": 10})]


def test_workbooks_that_inflate_too_much_are_refused(session, monkeypatch) -> None:
    user, principal = who(session, "head.east")
    export = sheets.export_inputs_xlsx(session, principal, period(session), "en")
    monkeypatch.setattr(sheets, "MAX_UNZIPPED_BYTES", 10_000)
    error = refused(lambda: sheets.import_inputs(session, user, principal, export.content,
                                                 "x.xlsx", PERIOD))
    assert [(i.code, i.params) for i in error.issues] == [
        ("file.too_large_unzipped", {"max_bytes": 10_000})]


def test_missing_unit_code_column(session) -> None:
    user, principal = who(session, "head.east")
    error = refused(lambda: sheets.import_inputs(
        session, user, principal, b"hist_sales,headcount\n1,2\n", "x.csv", PERIOD))
    assert places(error) == {(1, None, "column.missing")}


# ---------------------------------------------------------------------------- org import


def org_csv(*rows: str) -> bytes:
    return (ORG_HEADER + "\n".join(rows) + "\n").encode("utf-8")


def test_org_import_creates_updates_and_moves_with_descendants(session) -> None:
    user, principal = who(session, "admin")
    moved = unit_by_code(session, "NE-T5")
    old_path = moved.path
    people = sorted(c.code for c in moved.children)
    assert people
    content = org_csv(
        "NE-T9,NE,team,Harbin Team 9,哈尔滨9组,Harbin,哈尔滨,1,2026Q4",
        "P9001,NE-T9,person,Li Lei,李雷,Harbin,哈尔滨,1,2026Q4",
        "NE-T5,NORTH,team,Moved Team,迁移组,Tianjin,天津,0,2019Q1",
        "NE-T4,NE,team,Renamed Team 4,改名4组,Dalian,大连,0,2018Q2",
    )
    result = org_import.import_org_units(session, user, principal, content, "org.csv")
    assert (result.rows, result.created, result.moved) == (4, 2, 1)
    assert result.updated == 2  # NE-T5 (names, city) and NE-T4
    session.expire_all()
    north, ne = unit_by_code(session, "NORTH"), unit_by_code(session, "NE")
    team = unit_by_code(session, "NE-T9")
    assert team.parent_id == ne.id and team.path == f"{ne.path}{team.id}/"
    assert (team.name_zh, team.city_en, team.opened, team.depth) == ("哈尔滨9组", "Harbin", "2026Q4", 2)
    person = unit_by_code(session, "P9001")
    assert person.path == f"{team.path}{person.id}/" and person.depth == 3
    moved = unit_by_code(session, "NE-T5")
    assert moved.parent_id == north.id and moved.path == f"{north.path}{moved.id}/"
    assert moved.path != old_path and moved.name_en == "Moved Team"
    for code in people:  # every descendant's path follows its team
        assert unit_by_code(session, code).path.startswith(moved.path)
    assert set(people) < subtree_codes(session, "NORTH")
    assert not set(people) & subtree_codes(session, "NE")
    assert unit_by_code(session, "NE-T4").name_en == "Renamed Team 4"
    entry = last_audit(session)
    assert entry.action == "import_org_units"
    assert entry.after["created"] == ["NE-T9", "P9001"]
    assert entry.after["moved"] == [{"code": "NE-T5", "from": "NE", "to": "NORTH"}]
    assert entry.after["sha256"] == result.sha256
    # The same file again changes nothing.
    again = org_import.import_org_units(session, user, principal, content, "org.csv")
    assert (again.created, again.updated, again.moved, again.paths_changed) == (0, 0, 0, 0)


def test_org_import_refuses_cycles_and_bad_rows_and_writes_nothing(session) -> None:
    user, principal = who(session, "admin")
    before = snapshot(session)
    content = org_csv(
        "CENTRAL,CENTRAL-T2,region,Central,华中,,,,",           # under its own team: a cycle
        "ZZ-T1,NOWHERE,team,A,甲,,,,",                          # unknown parent
        "ZZ-T2,CENTRAL,squad,A,甲,,,,",                         # unknown level
        "ZZ-T3,CENTRAL-T1,team,A,甲,,,,",                       # a team under a team
        "ZZ-T4,CENTRAL,team,,甲,,,maybe,Q4",                    # no English name, bad flag, bad period
        "ZZ-T5,CENTRAL,team,A,甲,,,,",
        "ZZ-T5,CENTRAL,team,A,甲,,,,",                          # duplicate
        "CENTRAL-T3,CENTRAL,person,A,甲,,,,",                   # level change
        "ZZ-T6,,team,A,甲,,,,",                                 # no parent
        "ZZ-T7,ZZ-T7,team,A,甲,,,,",                            # its own parent
    )
    error = refused(lambda: org_import.import_org_units(session, user, principal, content, "o.csv"))
    found = places(error)
    assert (2, "B", "org.cycle") in found
    assert (3, "B", "org.unknown_parent") in found
    assert (4, "C", "org.unknown_level") in found
    assert (5, "B", "org.level_mismatch") in found
    assert {(6, "D", "org.required"), (6, "H", "cell.not_a_boolean"),
            (6, "I", "org.bad_period")} <= found
    assert (8, "A", "org.duplicate") in found
    assert (9, "C", "org.level_changed") in found
    assert (10, "B", "org.parent_required") in found
    assert (11, "B", "org.cycle") in found
    assert snapshot(session) == before


def test_org_import_stays_in_the_uploaders_scope(session) -> None:
    user, _principal = who(session, "hrbp")
    north = unit_by_code(session, "NORTH")
    principal = Principal(user.id, user.username, (Grant("hrbp", "NORTH", north.path),))
    before = snapshot(session)
    content = org_csv("WEST-T1,WEST,team,Hacked,改,,,,", "NORTH-T9,WEST,team,A,甲,,,,",
                      "NORTH-T2,WEST,team,A,甲,,,,")
    error = refused(lambda: org_import.import_org_units(session, user, principal, content, "o.csv"))
    assert places(error) == {(2, "A", "org.outside_scope"), (3, "B", "org.outside_scope"),
                             (4, "B", "org.outside_scope")}
    assert snapshot(session) == before


def test_people_import_takes_person_rows_only(session) -> None:
    user, principal = who(session, "hrbp")
    before = snapshot(session)
    error = refused(lambda: org_import.import_org_units(
        session, user, principal, org_csv("ZZ-T8,WEST,team,A,甲,,,,"), "p.csv", people=True))
    assert places(error) == {(2, "C", "org.not_person")}
    assert snapshot(session) == before
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(org_import.ORG_COLUMNS))
    sheet.append(list(org_import.PEOPLE_EXAMPLE))  # the commented example row is skipped
    sheet.append(["P9101", "WEST-T2", "person", "Han Meimei", "韩梅梅", "Xi'an", "西安", 0, "2026Q4"])
    result = org_import.import_org_units(session, user, principal, saved(workbook), "p.xlsx",
                                         people=True)
    assert (result.rows, result.created) == (1, 1)
    person = unit_by_code(session, "P9101")
    assert person.parent.code == "WEST-T2" and person.name_zh == "韩梅梅"
    assert last_audit(session).action == "import_people"


def test_templates_have_headers_and_a_commented_example(session) -> None:
    for kind, columns in (("org", org_import.ORG_COLUMNS), ("people", org_import.ORG_COLUMNS),
                          ("history", org_import.HISTORY_COLUMNS)):
        made = org_import.template(kind, "xlsx")
        sheet = book(made.content).worksheets[0]
        assert [c.value for c in sheet[1]] == list(columns)
        assert str(sheet["A2"].value).startswith("#")
        text_csv = org_import.template(kind, "csv").content
        assert text_csv.startswith(b"\xef\xbb\xbf" + ",".join(columns).encode())
    # An untouched template imports as nothing rather than as the example.
    user, principal = who(session, "admin")
    before = snapshot(session)
    result = org_import.import_org_units(session, user, principal,
                                         org_import.template("org", "csv").content, "t.csv")
    assert (result.rows, result.created) == (0, 0)
    assert snapshot(session)["units"] == before["units"]


# ---------------------------------------------------------------------------- history


def test_history_upsert(session) -> None:
    user, principal = who(session, "admin")
    new_team = unit_by_code(session, "EAST-T6")  # formed in 2026Q3: no 2025Q4 result
    person = unit_by_code(session, "P0002")
    q1 = period_by_code(session, "2026Q1")
    q4 = period_by_code(session, "2025Q4")
    assert session.get(UnitResult, (new_team.id, q4.id, "sales")) is None
    content = b"unit_code,period,sales\nEAST-T6,2025Q4,\"1,500,000\"\nP0002,2026Q1,98765.5\n"
    result = org_import.import_history(session, user, principal, content, "h.csv")
    assert (result.rows, result.inserted, result.updated) == (2, 1, 1)
    session.expire_all()
    assert session.get(UnitResult, (new_team.id, q4.id, "sales")).value == 1_500_000
    assert session.get(UnitResult, (person.id, q1.id, "sales")).value == 98765.5
    assert last_audit(session).action == "import_history"
    again = org_import.import_history(session, user, principal, content, "h.csv")
    assert (again.inserted, again.updated) == (0, 0)


def test_history_bad_rows_write_nothing(session) -> None:
    user, principal = who(session, "admin")
    before = snapshot(session)
    content = (b"unit_code,period,sales,region\n"
               b"P0003,2026Q1,1000,x\n"          # fine, but the file is refused
               b"P0003,2099Q1,1000,\n"           # unknown period
               b"NOWHERE,2026Q1,1000,\n"         # unknown unit
               b"P0004,2026Q1,much,\n"           # not a number
               b"P0003,2026Q1,2000,\n")          # duplicate unit and period
    error = refused(lambda: org_import.import_history(session, user, principal, content, "h.csv"))
    assert places(error) == {(1, "D", "column.unknown"), (3, "B", "period.unknown"),
                             (4, "A", "unit.unknown"), (5, "C", "cell.not_a_number"),
                             (6, "A", "history.duplicate")}
    assert snapshot(session) == before
