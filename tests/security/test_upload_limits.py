"""Issue 11 #4: one small file must not fill the server's memory.

The bombs are built here: a ~200 KB .xlsx whose single cell inflates to 200 MiB, and a
~2 MB .xlsx whose shared strings inflate to 430 MB. They go through the real pages (the
inputs sheet as a team lead, the actuals upload), the CLI's actuals import, and - to
measure memory in a clean process - the reader itself in a subprocess. Each must be
refused with a clear message, in a small response, without the inflated size in memory.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest

from quotaflow.services import spreadsheets as sheets
from quotaflow.services import upload_reader

MiB = 1024 * 1024
#: A refusal page or JSON report must stay small whatever the file held.
MAX_RESPONSE = 64 * 1024
#: What reading a refused bomb may add to a fresh process's peak memory.
MAX_GROWTH_MB = 100

_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_PARTS = {
    "[Content_Types].xml": _HEAD + (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        '</Types>'),
    "_rels/.rels": _HEAD + (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": _HEAD + (
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Inputs" sheetId="1" r:id="rId1"/></sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": _HEAD + (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        '</Relationships>'),
}


def _streamed(archive: zipfile.ZipFile, name: str, pieces) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as out:
        for piece in pieces:
            out.write(piece if isinstance(piece, bytes) else piece.encode())


def _workbook(sheet, strings) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        _streamed(archive, "xl/sharedStrings.xml", strings)
        _streamed(archive, "xl/worksheets/sheet1.xml", sheet)
    return buffer.getvalue()


def cell_bomb(size: int = 200 * MiB) -> bytes:
    """One inline-string cell of ``size`` "=" characters (~200 KB compressed)."""
    block = b"=" * MiB
    return _workbook(
        [_HEAD, f'<worksheet {_NS}><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>',
         *(block for _ in range(size // MiB)), "</t></is></c></row></sheetData></worksheet>"],
        [_HEAD, f'<sst {_NS} count="0" uniqueCount="0"></sst>'])


def strings_bomb(count: int = 2_000_000, length: int = 200) -> bytes:
    """``count`` shared strings of ``length`` characters (430 MB inflated, ~2 MB zipped)."""
    thousand = ("<si><t>" + "x" * length + "</t></si>").encode() * 1000
    return _workbook(
        [_HEAD, f'<worksheet {_NS}><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
                '</row></sheetData></worksheet>'],
        [_HEAD, f'<sst {_NS} count="{count}" uniqueCount="{count}">',
         *(thousand for _ in range(count // 1000)), "</sst>"])


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    made = {"cell": cell_bomb(), "strings": strings_bomb()}
    paths = {}
    for name, data in made.items():
        assert len(data) < 3 * MiB  # small files, under the upload limit
        paths[name] = folder / f"{name}.xlsx"
        paths[name].write_bytes(data)
    return paths


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from quotaflow.services import spreadsheets as sheets
    data = open(sys.argv[1], "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        sheets.read_table(data, "bomb.xlsx")
        codes = []
    except sheets.SheetImportError as exc:
        codes = [i.code for i in exc.issues]
        report = json.dumps(exc.details())
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(json.dumps({"codes": codes, "grown_mb": grown, "seconds": time.monotonic() - started,
                      "report": len(report) if codes else 0}))
""")


@pytest.mark.parametrize("name, code", [("cell", "file.cell_too_long"),
                                        ("strings", "file.too_much_text")])
def test_a_bomb_is_refused_in_bounded_memory(bombs, name: str, code: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(bombs[name])], env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["codes"] == [code]
    assert measured["grown_mb"] < MAX_GROWTH_MB, measured
    assert measured["report"] < 1024


def test_the_cell_bomb_says_where(bombs) -> None:
    with pytest.raises(sheets.SheetImportError) as refused:
        sheets.read_table(bombs["cell"].read_bytes(), "bomb.xlsx")
    issue = refused.value.issues[0]
    assert (issue.code, issue.row, issue.column, issue.header) == (
        "file.cell_too_long", 1, "A", "Inputs")
    assert issue.params["max"] == upload_reader.MAX_CELL_CHARS


def _upload(client, url: str, data: bytes, name: str, **fields):
    return client.post(url, data={"file": (io.BytesIO(data), name), **fields},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("bomb", ["cell", "strings"])
def test_inputs_page_refuses_a_bomb_with_a_short_report(as_user, bombs, bomb: str) -> None:
    response = _upload(as_user("lead.east.t1"), "/sheets/inputs", bombs[bomb].read_bytes(),
                       "bomb.xlsx", period="2026Q4")
    assert response.status_code == 422
    assert len(response.data) < MAX_RESPONSE
    html = response.get_data(as_text=True)
    assert 'data-code="file.' in html and "个字符" in html  # the team lead reads Chinese
    assert "=" * 100 not in html and "x" * 100 not in html


@pytest.mark.parametrize("bomb", ["cell", "strings"])
def test_actuals_page_refuses_a_bomb_with_a_short_report(as_user, bombs, bomb: str) -> None:
    response = _upload(as_user("lead.east.t1"), "/actuals/", bombs[bomb].read_bytes(),
                       "bomb.xlsx")
    assert response.status_code == 422
    assert len(response.data) < MAX_RESPONSE
    assert 'data-code="file.' in response.get_data(as_text=True)


def test_cli_actuals_import_refuses_the_shared_strings_bomb(app, bombs) -> None:
    from quotaflow.cli import actuals_import

    result = app.test_cli_runner().invoke(actuals_import, [str(bombs["strings"])])
    assert result.exit_code != 0
    assert "file.too_much_text" in result.output
    assert len(result.output) < MAX_RESPONSE


def test_a_long_bad_value_is_quoted_as_an_excerpt_only(as_user) -> None:
    """A 20,000-character non-number under the cell limit: the report quotes 80 + "…"."""
    client = as_user("lead.east.t1")
    book = openpyxl.load_workbook(io.BytesIO(client.get("/sheets/inputs.xlsx").data))
    sheet = book.worksheets[0]
    names = [c.value for c in sheet[2]]
    column = next(i for i, n in enumerate(names, start=1) if n not in sheets.FIXED_COLUMNS)
    sheet.cell(row=3, column=column, value="y" * 20_000)
    out = io.BytesIO()
    book.save(out)
    response = _upload(client, "/sheets/inputs", out.getvalue(), "long.xlsx", period="2026Q4")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "y" * 80 + "…" in html and "y" * 81 not in html


def test_csv_field_and_row_limits(as_user) -> None:
    client = as_user("lead.east.t1")
    long_field = b"unit_code,date,value\nP0001,2026-10-07," + b"9" * 40_000 + b"\n"
    response = _upload(client, "/actuals/", long_field, "long.csv")
    assert response.status_code == 422 and len(response.data) < MAX_RESPONSE
    assert 'data-code="file.cell_too_long"' in response.get_data(as_text=True)
    wide = b"unit_code,date,value\n" + b"," * 3_000_000 + b"\n"
    response = _upload(client, "/actuals/", wide, "wide.csv")
    assert response.status_code == 422 and len(response.data) < MAX_RESPONSE
    assert 'data-code="file.too_many_columns"' in response.get_data(as_text=True)


def test_normal_workbooks_still_read() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["unit_code", "date", "value"])
    for k in range(200):
        sheet.append([f"P{k:04d}", "2026-10-07", k * 1.5])
    sheet["E300"] = None  # a far declared dimension does not pad the rows
    out = io.BytesIO()
    book.save(out)
    table = sheets.read_table(out.getvalue(), "ok.xlsx")
    assert len(table.rows) == 201 and table.rows[1][1][:3] == ("P0000", "2026-10-07", 0)


def test_limits_come_from_the_app_config(monkeypatch) -> None:
    monkeypatch.setattr(upload_reader, "_configured", None)
    upload_reader.configure({"UPLOAD_MAX_CELL_CHARS": 10})
    assert upload_reader.current_limits().max_cell_chars == 10
    with pytest.raises(sheets.SheetImportError) as refused:
        sheets.read_table(b"unit_code,date,value\nP0001,2026-10-07,12345678901\n", "x.csv")
    assert refused.value.issues[0].code == "file.cell_too_long"
    assert (refused.value.issues[0].row, refused.value.issues[0].column) == (2, "C")


@pytest.mark.parametrize("bomb", ["cell", "strings"])
def test_api_actuals_import_refuses_a_bomb_in_a_short_json(as_user, bombs, bomb: str) -> None:
    response = _upload(as_user("lead.east.t1"), "/api/v1/actuals/import",
                       bombs[bomb].read_bytes(), "bomb.xlsx")
    assert response.status_code == 422 and len(response.data) < MAX_RESPONSE
    issue = response.get_json()["error"]["details"]["issues"][0]
    assert issue["code"] in {"file.cell_too_long", "file.too_much_text"}
