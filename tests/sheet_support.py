"""What the spreadsheet tests of the pages and of the API share: uploading a file, reading
a downloaded workbook, finding a unit's cell, and what an upload may have changed."""

from __future__ import annotations

import io

import openpyxl
from sqlalchemy import select

from quotaflow.store import db
from quotaflow.store.models import AttributeValue, OrgUnit
from quotaflow.store.queries import in_paths, unit_by_code

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIOD = "2026Q4"


def post_file(client, url: str, content: bytes, filename: str, field: str = "file",
              headers: dict | None = None, **fields):
    data = {field: (io.BytesIO(content), filename), **fields}
    return client.post(url, data=data, content_type="multipart/form-data", headers=headers or {})


def codes_under(app, code: str) -> set[str]:
    with app.app_context():
        unit = unit_by_code(db.session, code)
        return set(db.session.scalars(select(OrgUnit.code).where(in_paths([unit.path]))))


def attribute_rows(app) -> list[tuple]:
    with app.app_context():
        return sorted(db.session.execute(select(
            AttributeValue.period_id, AttributeValue.name, AttributeValue.unit_id,
            AttributeValue.value)).all())


def workbook(response) -> openpyxl.Workbook:
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == XLSX
    return openpyxl.load_workbook(io.BytesIO(response.data))


def saved(book: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def cell_for(sheet, code: str, name: str):
    column = next(c.column for c in sheet[2] if c.value == name)
    row = next(r[0].row for r in sheet.iter_rows(min_row=3, max_col=1) if r[0].value == code)
    return sheet.cell(row, column)
