"""Spreadsheet round trip of unit inputs (the case's "dual track"), and the file plumbing
the org/people/history imports share (``quotaflow.services.org_import``).

Export: a pre-filled .xlsx (or UTF-8-with-BOM .csv) of the units in the user's write
scope and their inputs for a period. Row 1 holds the labels in the user's language,
row 2 the field names, so columns are matched back by name whatever their order.

Import: all or nothing. Every row is validated with the JSON Schema of one unit's
inputs (``quotaflow.forms.inputs.input_schema``) plus the checks only the database can
make (unit exists, is in the uploader's write scope, not repeated; the period exists).
Problems come back as :class:`SheetIssue` (row as the spreadsheet shows it, column
letter, header, stable code + params) inside one :class:`SheetImportError`; the web
layer translates them. Without problems every changed value is written in one bulk
transaction with one audit entry.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any
from xml.parsers import expat

import numpy as np
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError
from quotaflow.forms.inputs import (
    CellError,
    coerce_cell,
    fast_check,
    input_issues,
    input_schema,
    validator,
)
from quotaflow.messages import _l
from quotaflow.services import audit, input_check, input_governance, specs, upload_reader
from quotaflow.services.access import Principal
from quotaflow.services.export_writer import append, csv_bytes, workbook_bytes
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.services.upload_reader import excerpt
from quotaflow.store import org_queries
from quotaflow.store.models import OrgUnit, Period, User
from quotaflow.store.queries import (
    levels,
    load_attribute_column,
    period_by_code,
    units_by_code,
)

#: More data rows than this are refused before any is validated.
MAX_ROWS = 200_000
MAX_COLUMNS = upload_reader.MAX_COLUMNS
#: An .xlsx is a zip: its parts together may not inflate beyond this.
MAX_UNZIPPED_BYTES = upload_reader.MAX_UNZIPPED_BYTES
#: Issues kept for the report; more are counted, not stored.
MAX_ISSUES = 5_000
#: Changed values listed by name in the import's audit entry.
AUDIT_CHANGES_MAX = 200
XLSX_TYPES = (".xlsx", ".xlsm")
CSV_TYPES = (".csv", ".txt")
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"
META_SHEET = "_quotaflow"
INPUTS_KIND = "quotaflow.inputs"
# The fixed columns of the inputs sheet: key -> header aliases accepted on import
# (the machine name, and the English and Chinese headers the export writes).
FIXED_COLUMNS = ("unit_code", "name", "level")
FIXED_ALIASES: Mapping[str, frozenset[str]] = {
    "unit_code": frozenset({"unit_code", "code", "unit code", "单位代码", "代码", "编码"}),
    "name": frozenset({"name", "unit name", "单位名称", "名称"}),
    "level": frozenset({"level", "层级", "级别"}),
}
COMMENT_PREFIX = "#"

_READONLY_FILL = PatternFill("solid", fgColor="EEEEEE")
_HEADER_FONT = Font(bold=True)
_NAMES_FONT = Font(size=8, color="808080")


# ---------------------------------------------------------------------------- report


@dataclass(frozen=True)
class SheetIssue:
    """One problem of an uploaded file. ``row`` is 1-based as the spreadsheet shows it;
    ``column`` is the letter ("E"), ``header`` what the header cell says."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    row: int | None = None
    column: str | None = None
    header: str | None = None

    def __post_init__(self) -> None:
        # A report quotes at most a short excerpt of what the file holds.
        object.__setattr__(self, "params", {k: excerpt(v) for k, v in self.params.items()})
        object.__setattr__(self, "header", excerpt(self.header))


class SheetImportError(QuotaFlowError):
    """The upload was refused; nothing was written. ``total`` counts every issue found,
    ``issues`` keeps the first :data:`MAX_ISSUES` in row order."""

    domain = "sheet"
    CODES = messages.register(domain, {
        "invalid_sheet": _l("The file was refused, nothing was imported: %(total)s problem(s)."),
    })

    def __init__(self, issues: Sequence[SheetIssue], total: int | None = None) -> None:
        self.issues = tuple(issues)
        self.total = len(self.issues) if total is None else total
        super().__init__("invalid_sheet", "", total=self.total)

    def details(self) -> dict[str, Any]:
        return {"issues": [{"code": i.code, "row": i.row, "column": i.column, **dict(i.params)}
                           for i in self.issues]}

    def __str__(self) -> str:
        return f"{self.total} issue(s): " + "; ".join(
            f"{i.column or ''}{i.row or ''} {i.code} {dict(i.params)}" for i in self.issues[:5])


class IssueLog:
    """Collects issues, keeping the first :data:`MAX_ISSUES` and counting the rest."""

    def __init__(self) -> None:
        self.kept: list[SheetIssue] = []
        self.total = 0

    def add(self, code: str, params: Mapping[str, Any] | None = None, *, row: int | None = None,
            col: int | None = None, header: str | None = None) -> None:
        self.total += 1
        if len(self.kept) < MAX_ISSUES:
            self.kept.append(SheetIssue(code, dict(params or {}), row,
                                        get_column_letter(col) if col else None, header))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self) -> None:
        if self.total:
            ordered = sorted(self.kept, key=lambda i: (
                i.row or 0, len(i.column or ""), i.column or ""))
            raise SheetImportError(ordered, self.total)


def refuse(code: str, **params: Any) -> SheetImportError:
    """A refusal of the whole file (no row or column)."""
    return SheetImportError([SheetIssue(code, params)])


# ---------------------------------------------------------------------------- texts


@dataclass(frozen=True)
class SheetTexts:
    """The words a workbook shows, in the user's language (the web layer translates;
    these English defaults serve the CLI and tests). Templates use %(name)s params."""

    data_sheet: str = "Inputs"
    readme_sheet: str = "README"
    col_code: str = "Unit code"
    col_name: str = "Unit name"
    col_level: str = "Level"
    readme: tuple[str, ...] = (
        "Fill in the white columns; grey columns are read-only.",
        "Row 2 holds the field names: keep it, it is how columns are matched on upload.",
        "Leave a cell empty to clear an optional value.",
        "Upload the file on the Spreadsheets page; nothing is saved if any row has a problem.",
    )
    fields_header: tuple[str, ...] = ("Field", "Label", "Type", "Minimum", "Maximum",
                                      "Required", "Help")
    type_names: Mapping[str, str] = field(default_factory=lambda: {
        "number": "number", "integer": "whole number", "boolean": "yes/no (1 or 0)"})
    yes: str = "yes"
    no: str = "no"
    invalid_title: str = "Invalid value"
    between: str = "Enter a value from %(min)s to %(max)s."
    at_least: str = "Enter a value of at least %(min)s."
    at_most: str = "Enter a value of at most %(max)s."
    boolean: str = "Enter 1 (yes) or 0 (no)."
    any_number: str = "Enter a number."


# ---------------------------------------------------------------------------- reading


@dataclass
class Table:
    """The non-blank rows of an uploaded sheet: (row number, cells), plus its metadata."""

    rows: list[tuple[int, tuple[Any, ...]]]
    meta: dict[str, str]
    kind: str  # "xlsx" or "csv"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cell_text(value: Any) -> str:
    """A cell as text: integers without ".0" (codes typed as numbers), stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _blank(cells: Iterable[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _file_type(filename: str, data: bytes) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    if suffix in XLSX_TYPES:
        if not data.startswith(b"PK\x03\x04"):
            raise refuse("file.unreadable", name=filename)
        return "xlsx"
    if suffix in CSV_TYPES:
        return "csv"
    raise refuse("file.unsupported", name=filename)


def _rows_capped(rows: Iterable[tuple[Any, ...]], max_rows: int
                 ) -> list[tuple[int, tuple[Any, ...]]]:
    kept: list[tuple[int, tuple[Any, ...]]] = []
    # Headers (up to 2) and the cap itself; blank rows are skipped but still bounded,
    # so a sheet declaring a million empty rows cannot keep us busy.
    limit = max_rows + 2
    for number, cells in enumerate(rows, start=1):
        if number > 4 * limit + 1000:
            raise refuse("file.too_many_rows", max=max_rows)
        if len(cells) > MAX_COLUMNS:
            if not _blank(cells[MAX_COLUMNS:]):
                raise refuse("file.too_many_columns", max=MAX_COLUMNS)
            cells = cells[:MAX_COLUMNS]
        if _blank(cells):
            continue
        kept.append((number, tuple(cells)))
        if len(kept) > limit:
            raise refuse("file.too_many_rows", max=max_rows)
    return kept


def _checked(filename: str, check: Any) -> Any:
    """Run one of upload_reader's checks; its refusal becomes the file's one issue."""
    try:
        return check()
    except upload_reader.Refused as exc:
        params = dict(exc.params)
        if exc.code == "file.unreadable":
            params["name"] = excerpt(filename)
        raise SheetImportError([SheetIssue(
            exc.code, params, params.get("row") or None, params.get("column") or None,
            params.get("sheet") or None)]) from None


def _read_xlsx(data: bytes, filename: str, max_rows: int,
               limits: upload_reader.UploadLimits) -> Table:
    limits = replace(limits, max_row_number=4 * (max_rows + 2) + 1000,
                     max_unzipped_bytes=min(limits.max_unzipped_bytes, MAX_UNZIPPED_BYTES))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _checked(filename, lambda: upload_reader.check_xlsx(archive, limits))
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetImportError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError, expat.ExpatError,
            EOFError, zlib.error) as exc:
        raise refuse("file.unreadable", name=filename) from exc
    try:
        meta: dict[str, str] = {}
        if META_SHEET in book.sheetnames:
            for cells in book[META_SHEET].iter_rows(max_col=2, values_only=True):
                if len(cells) >= 2 and cells[0]:
                    meta[cell_text(cells[0])] = cell_text(cells[1])
        name = meta.get("data_sheet")
        sheet = book[name] if name in book.sheetnames else book.worksheets[0]
        sheet.reset_dimensions()  # rows as stored, not padded to a declared size
        rows = _rows_capped(sheet.iter_rows(values_only=True), max_rows)
    except SheetImportError:
        raise
    except Exception as exc:  # a damaged part inside a valid zip
        raise refuse("file.unreadable", name=filename) from exc
    finally:
        book.close()
    return Table(rows, meta, "xlsx")


def _read_csv(data: bytes, filename: str, max_rows: int,
              limits: upload_reader.UploadLimits) -> Table:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Chinese Windows saves "CSV" in the GBK family.
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise refuse("file.encoding", name=filename) from None
    first = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first:
        delimiter = next((d for d in (";", "\t") if d in first), ",")
    try:
        rows = _checked(filename, lambda: _rows_capped(upload_reader.check_csv_rows(
            csv.reader(upload_reader.csv_lines(text, delimiter, limits), delimiter=delimiter),
            limits), max_rows))
    except csv.Error as exc:
        raise refuse("file.unreadable", name=filename) from exc
    return Table(rows, {}, "csv")


def read_table(data: bytes, filename: str, *, max_bytes: int | None = None,
               max_rows: int = MAX_ROWS,
               limits: upload_reader.UploadLimits | None = None) -> Table:
    """Read an uploaded .xlsx or .csv; refuse other types, oversized or empty files, and
    (:mod:`quotaflow.services.upload_reader`) files past a limit of cells, rows, columns,
    text or inflated size, checked while streaming so a refused file costs little. The
    limits are the app config's (``UPLOAD_MAX_CELLS`` ...) unless given."""
    limits = limits or upload_reader.current_limits()
    if max_bytes is not None and len(data) > max_bytes:
        raise refuse("file.too_large", max_bytes=max_bytes)
    if not data:
        raise refuse("file.empty", name=filename)
    kind = _file_type(filename, data)
    table = (_read_xlsx if kind == "xlsx" else _read_csv)(data, filename, max_rows, limits)
    if not table.rows:
        raise refuse("file.empty", name=filename)
    return table


def header_key(text: str) -> str:
    return " ".join(text.replace("\u3000", " ").split()).casefold()


def map_header(cells: Sequence[Any], row: int, aliases: Mapping[str, str], issues: IssueLog
               ) -> dict[str, int]:
    """Header cells -> {key: 1-based column}; unknown and repeated headers are issues."""
    columns: dict[str, int] = {}
    for col, cell in enumerate(cells, start=1):
        text = cell_text(cell)
        if not text:
            continue
        key = aliases.get(header_key(text))
        if key is None:
            issues.add("column.unknown", {"header": text}, row=row, col=col, header=text)
        elif key in columns:
            issues.add("column.duplicate", {"header": text,
                                            "first": get_column_letter(columns[key])},
                       row=row, col=col, header=text)
        else:
            columns[key] = col
    return columns


def headerless_values(rows: Sequence[tuple[int, tuple[Any, ...]]], header: Sequence[Any],
                      issues: IssueLog) -> None:
    """Values in a column without a header would be silently dropped: report each such
    column once, at its first value."""
    named = {c for c, v in enumerate(header, start=1) if cell_text(v)}
    reported: set[int] = set()
    for number, cells in rows:
        for col, value in enumerate(cells, start=1):
            if col not in named and col not in reported and cell_text(value):
                reported.add(col)
                issues.add("column.no_header", {}, row=number, col=col, header="")


def cell(cells: tuple[Any, ...], col: int | None) -> Any:
    if col is None or col > len(cells):
        return None
    return cells[col - 1]


def is_comment(cells: tuple[Any, ...]) -> bool:
    """Rows whose first cell starts with "#" are notes (the templates' example rows)."""
    return cell_text(cells[0] if cells else None).startswith(COMMENT_PREFIX)


# ---------------------------------------------------------------------------- writing


def readme_sheet(book: Workbook, title: str, lines: Sequence[str],
                 table: Sequence[Sequence[Any]] = ()) -> None:
    """A sheet of explanations (one per row) followed by an optional table."""
    sheet = book.create_sheet(title[:31])
    sheet.column_dimensions["A"].width = 22
    for line in lines:
        append(sheet, [WriteOnlyCell(sheet, value=line)])
    if table:
        append(sheet, [])
        for k, row in enumerate(table):
            cells = []
            for value in row:
                c = WriteOnlyCell(sheet, value=value)
                if k == 0:
                    c.font = _HEADER_FONT
                cells.append(c)
            append(sheet, cells)


def meta_sheet(book: Workbook, meta: Mapping[str, Any]) -> None:
    sheet = book.create_sheet(META_SHEET)
    sheet.sheet_state = "hidden"
    for key, value in meta.items():
        append(sheet, [key, "" if value is None else str(value)])


def template_workbook(title: str, columns: Sequence[str], example: Sequence[Any],
                      readme_title: str, readme: Sequence[str]) -> bytes:
    """An empty import template: the header row and one commented example row."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    for col in range(1, len(columns) + 1):
        sheet.column_dimensions[get_column_letter(col)].width = 16
    header = []
    for name in columns:
        c = WriteOnlyCell(sheet, value=name)
        c.font = _HEADER_FONT
        header.append(c)
    append(sheet, header)
    example_cells = []
    for value in example:
        c = WriteOnlyCell(sheet, value=value)
        c.font = Font(italic=True, color="808080")
        example_cells.append(c)
    append(sheet, example_cells)
    readme_sheet(book, readme_title, readme)
    return workbook_bytes(book)


# ---------------------------------------------------------------------------- inputs: shared


@dataclass(frozen=True)
class InputsImportResult:
    period: str
    rows: int
    units_changed: int
    values_changed: int
    sha256: str
    #: Units whose changes await approval (input change requests), not applied.
    units_pending: int = 0
    pending_flow_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class InputsExport:
    content: bytes
    filename: str
    mimetype: str
    rows: int


def model_document(session: Session) -> dict[str, Any]:
    """The active default factor model's content (its ``fields`` are the inputs)."""
    spec = specs.active_version(session, specs.FACTOR_MODEL_KIND, "default")
    if spec is None:
        raise refuse("model.missing")
    return dict(spec.content) | {"_version": spec.version}


def _field_label(spec: Mapping[str, Any], locale: str) -> str:
    key = "label_zh" if locale.startswith("zh") else "label_en"
    return spec.get(key) or spec.get("label_en") or spec["name"]


def _tree_key(path: str, code_of: Mapping[int, str]) -> tuple[str, ...]:
    # Depth-first order by code: a team, then its people, then the next team.
    return tuple(code_of.get(int(p), "") for p in path.strip("/").split("/"))


@dataclass(frozen=True)
class _ScopeRows:
    ids: np.ndarray
    codes: list[str]
    names: list[str]
    levels: list[str]
    values: dict[str, np.ndarray]


def _scope_rows(session: Session, principal: Principal, period: Period,
                fields: Sequence[Mapping[str, Any]], locale: str) -> _ScopeRows:
    zh = locale.startswith("zh")
    rows = org_queries.active_units_in(session, principal.scope_paths("unit.write"))
    code_of = {r.id: r.code for r in rows}
    rows.sort(key=lambda r: _tree_key(r.path, code_of))
    level_name = {lv.depth: (lv.name_zh if zh else lv.name_en) for lv in levels(session)}
    ids = np.array([r.id for r in rows], dtype=np.int64)
    values = {f["name"]: load_attribute_column(session, period.id, f["name"], ids)
              for f in fields} if len(ids) else {f["name"]: np.empty(0) for f in fields}
    return _ScopeRows(ids, [r.code for r in rows], [r.name_zh if zh else r.name_en for r in rows],
                      [level_name.get(r.depth, str(r.depth)) for r in rows], values)


def _export_value(spec: Mapping[str, Any], value: float) -> Any:
    if math.isnan(value):
        return None
    if spec.get("type") == "boolean":
        return 1 if value else 0
    if spec.get("type") == "integer" or float(value).is_integer():
        return int(value)
    return float(value)


def _export_name(principal: Principal, session: Session, period: Period, ext: str) -> str:
    roots = org_queries.codes_at(session, principal.scope_paths("unit.write"))
    scope = "-".join(roots[:3]) or "none"
    return f"inputs-{period.code}-{scope}.{ext}"


def _validation(spec: Mapping[str, Any], texts: SheetTexts) -> DataValidation:
    ftype = spec.get("type", "number")
    low, high = spec.get("min"), spec.get("max")
    if ftype == "boolean":
        dv = DataValidation(type="list", formula1='"1,0"', allow_blank=True)
        message = texts.boolean
    else:
        kind = "whole" if ftype == "integer" else "decimal"
        if low is not None and high is not None:
            dv = DataValidation(type=kind, operator="between", formula1=str(low),
                                formula2=str(high), allow_blank=True)
            message = texts.between % {"min": low, "max": high}
        elif low is not None:
            dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=str(low),
                                allow_blank=True)
            message = texts.at_least % {"min": low}
        elif high is not None:
            dv = DataValidation(type=kind, operator="lessThanOrEqual", formula1=str(high),
                                allow_blank=True)
            message = texts.at_most % {"max": high}
        else:
            # Excel needs bounds for a type check; these are as wide as each type goes.
            low_any, high_any = (("-2147483647", "2147483647") if kind == "whole"
                                 else ("-1E+300", "1E+300"))
            dv = DataValidation(type=kind, operator="between", formula1=low_any,
                                formula2=high_any, allow_blank=True)
            message = texts.any_number
    dv.showErrorMessage = True
    dv.errorTitle = texts.invalid_title[:32]
    dv.error = message[:225]
    if spec.get("help"):
        dv.showInputMessage = True
        dv.promptTitle = _field_label(spec, "en")[:32]
        dv.prompt = str(spec["help"])[:255]
    return dv


# ---------------------------------------------------------------------------- inputs: export


def export_inputs(ctx: Context, period: Period, fmt: str, locale: str,
                  texts: SheetTexts | None = None) -> InputsExport:
    """The inputs of the principal's write scope for ``period`` as ``fmt`` ("xlsx" or
    "csv"): what pages and API download."""
    if fmt == "xlsx":
        return export_inputs_xlsx(ctx.session, ctx.principal, period, locale, texts,
                                  ctx.username)
    return export_inputs_csv(ctx.session, ctx.principal, period, locale, texts)


def export_inputs_xlsx(session: Session, principal: Principal, period: Period, locale: str,
                       texts: SheetTexts | None = None, username: str = "") -> InputsExport:
    """The pre-filled inputs workbook of the user's write scope for ``period``."""
    texts = texts or SheetTexts()
    model = model_document(session)
    fields = list(model.get("fields", ()))
    data = _scope_rows(session, principal, period, fields, locale)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(texts.data_sheet[:31])
    fixed = len(FIXED_COLUMNS)
    widths = [14, 26, 10] + [18] * len(fields)
    for col, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(col)].width = width
    sheet.freeze_panes = f"{get_column_letter(fixed + 1)}3"
    sheet.protection.sheet = True
    # Let people widen columns and filter even though the sheet is protected.
    sheet.protection.formatColumns = False
    sheet.protection.autoFilter = False
    last = len(data.ids) + 2
    if len(data.ids):
        for k, spec in enumerate(fields):
            dv = _validation(spec, texts)
            letter = get_column_letter(fixed + 1 + k)
            dv.add(f"{letter}3:{letter}{last}")
            sheet.data_validations.append(dv)

    styles: dict[tuple[Any, ...], Any] = {}

    def styled(value: Any, *, font: Font | None = None, fill: PatternFill | None = None,
               unlocked: bool = False, number_format: str | None = None) -> WriteOnlyCell:
        c = WriteOnlyCell(sheet, value=value)
        key = (id(font), id(fill), unlocked, number_format)
        if key in styles:
            # Registering a style costs a lookup per attribute; rows share a few styles,
            # so each combination is registered once and its index array copied.
            c._style = copy(styles[key])
            return c
        if font:
            c.font = font
        if fill:
            c.fill = fill
        if unlocked:
            c.protection = Protection(locked=False)
        if number_format:
            c.number_format = number_format
        styles[key] = copy(c._style)
        return c

    labels = [texts.col_code, texts.col_name, texts.col_level] + [
        _field_label(f, locale) for f in fields]
    header = [styled(v, font=_HEADER_FONT, fill=_READONLY_FILL) for v in labels]
    for c in header:
        c.alignment = Alignment(wrap_text=True, vertical="top")
    append(sheet, header)
    append(sheet, [styled(v, font=_NAMES_FONT, fill=_READONLY_FILL)
                  for v in [*FIXED_COLUMNS, *(f["name"] for f in fields)]])
    formats = ["0" if f.get("type") == "integer" else "General" for f in fields]
    columns = [data.values[f["name"]] for f in fields]
    for i, code in enumerate(data.codes):
        row = [styled(code, fill=_READONLY_FILL), styled(data.names[i], fill=_READONLY_FILL),
               styled(data.levels[i], fill=_READONLY_FILL)]
        row += [styled(_export_value(f, float(columns[k][i])), unlocked=True,
                       number_format=formats[k]) for k, f in enumerate(fields)]
        append(sheet, row)

    type_names = texts.type_names
    table: list[list[Any]] = [list(texts.fields_header)]
    for f in fields:
        table.append([f["name"], _field_label(f, locale), type_names.get(f.get("type", "number")),
                      f.get("min"), f.get("max"),
                      texts.yes if f.get("required", True) else texts.no, f.get("help", "")])
    readme_sheet(book, texts.readme_sheet, texts.readme, table)
    meta_sheet(book, {"kind": INPUTS_KIND, "period": period.code,
                      "model_version": model.get("_version"), "data_sheet": texts.data_sheet[:31],
                      "exported_by": username,
                      "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    return InputsExport(workbook_bytes(book), _export_name(principal, session, period, "xlsx"),
                        XLSX_MIME, len(data.ids))


def export_inputs_csv(session: Session, principal: Principal, period: Period, locale: str,
                      texts: SheetTexts | None = None) -> InputsExport:
    """The same columns as the workbook, as CSV (UTF-8 with BOM, both header rows)."""
    texts = texts or SheetTexts()
    fields = list(model_document(session).get("fields", ()))
    data = _scope_rows(session, principal, period, fields, locale)
    columns = [data.values[f["name"]] for f in fields]

    def rows() -> Iterable[list[Any]]:
        yield [texts.col_code, texts.col_name, texts.col_level] + [
            _field_label(f, locale) for f in fields]
        yield [*FIXED_COLUMNS, *(f["name"] for f in fields)]
        for i, code in enumerate(data.codes):
            yield [code, data.names[i], data.levels[i]] + [
                _export_value(f, float(columns[k][i])) for k, f in enumerate(fields)]

    return InputsExport(csv_bytes(rows()), _export_name(principal, session, period, "csv"),
                        CSV_MIME, len(data.ids))


# ---------------------------------------------------------------------------- inputs: import


def _input_aliases(fields: Sequence[Mapping[str, Any]], texts: SheetTexts) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for key, names in FIXED_ALIASES.items():
        for name in names:
            aliases[header_key(name)] = key
    for key, text in zip(FIXED_COLUMNS, (texts.col_code, texts.col_name, texts.col_level),
                         strict=True):
        aliases.setdefault(header_key(text), key)
    for f in fields:
        for text in (f.get("label_en"), f.get("label_zh")):
            if text:
                aliases.setdefault(header_key(text), f["name"])
    for f in fields:  # the machine name always wins
        aliases[header_key(f["name"])] = f["name"]
    return aliases


def split_header(rows: list[tuple[int, tuple[Any, ...]]], names_marker: str
                 ) -> tuple[int, tuple[Any, ...], tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]]:
    """(header row number, header cells, label cells, data rows).

    The header is the row of field names (row 2 of an export, recognised by
    ``names_marker`` in its first cell) and the labels are the row above it; otherwise
    the first row is both.
    """
    if len(rows) >= 2 and header_key(cell_text(rows[1][1][0] if rows[1][1] else None)) \
            == names_marker:
        return rows[1][0], rows[1][1], rows[0][1], rows[2:]
    return rows[0][0], rows[0][1], rows[0][1], rows[1:]


def _stored_for_schema(spec: Mapping[str, Any], value: float) -> Any:
    if spec.get("type") == "boolean" and value in (0.0, 1.0):
        return bool(value)
    if spec.get("type") == "integer" and float(value).is_integer():
        return int(value)
    return value


def _as_stored(value: Any) -> float | None:
    if value is None:
        return None
    return 1.0 if value is True else 0.0 if value is False else float(value)


@dataclass
class _Changes:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletes: dict[str, list[int]] = field(default_factory=dict)
    units: set[int] = field(default_factory=set)
    # The first changes by name, for the audit entry (the counts cover all of them).
    log: list[dict[str, Any]] = field(default_factory=list)

    def note(self, code: str, name: str, before: float | None, after: float | None) -> None:
        if len(self.log) < AUDIT_CHANGES_MAX:
            self.log.append({"unit": code, "name": name, "before": before, "after": after})

    @property
    def count(self) -> int:
        return len(self.inserts) + len(self.updates) + sum(map(len, self.deletes.values()))


def import_inputs(session: Session, actor: User, principal: Principal, data: bytes,
                  filename: str, period_code: str | None = None, *,
                  texts: SheetTexts | None = None, max_bytes: int | None = None,
                  max_rows: int = MAX_ROWS, remote_addr: str | None = None
                  ) -> InputsImportResult:
    """Validate an uploaded inputs sheet and apply it whole, or raise SheetImportError."""
    texts = texts or SheetTexts()
    digest = sha256_hex(data)
    table = read_table(data, filename, max_bytes=max_bytes, max_rows=max_rows)
    model = model_document(session)
    fields = {f["name"]: f for f in model.get("fields", ())}
    schema = input_schema(model)
    check = validator(schema)
    fast = fast_check(schema)

    file_period = table.meta.get("period") or None
    if file_period and period_code and file_period != period_code:
        raise refuse("period.mismatch", file=file_period, chosen=period_code)
    chosen = period_code or file_period
    period = period_by_code(session, chosen) if chosen else None
    if period is None:
        raise refuse("period.unknown", period=chosen or "")

    issues = IssueLog()
    header_row, header, labels, rows = split_header(table.rows, "unit_code")
    if len(rows) > max_rows:
        raise refuse("file.too_many_rows", max=max_rows)
    columns = map_header(header, header_row, _input_aliases(list(fields.values()), texts), issues)
    headerless_values(rows, header, issues)
    code_col = columns.get("unit_code")
    if code_col is None:
        issues.add("column.missing", {"name": "unit_code"}, row=header_row)
        issues.raise_if_any()
    field_cols = {name: columns[name] for name in fields if name in columns}
    # Report columns by what people read: the label row above the names, if any.
    header_of = {col: cell_text(cell(labels, col)) or cell_text(cell(header, col))
                 for col in columns.values()}

    data_rows = [(n, c) for n, c in rows if not is_comment(c)]
    codes = [cell_text(cell(c, code_col)) for _n, c in data_rows]
    units = units_by_code(session, [c for c in codes if c])
    unit_ids = np.array(sorted({uid for uid, _p in units.values()}), dtype=np.int64)
    position = {int(uid): k for k, uid in enumerate(unit_ids)}
    stored = {name: load_attribute_column(session, period.id, name, unit_ids)
              for name in fields} if len(unit_ids) else {}

    def where(name: str) -> tuple[int | None, str]:
        col = field_cols.get(name)
        return col, header_of.get(col, name) if col else name

    changes = _Changes()
    written: dict[str, list[tuple[int, float]]] = {name: [] for name in field_cols}
    first_row: dict[str, int] = {}
    # Once the period's plan is published, the changes of one's own target's inputs
    # await approval (per unit) or are refused, as for every write (input_governance).
    gate = input_governance.gate(session, principal, period)
    held: dict[int, tuple[dict[str, float | None], dict[str, float | None]]] = {}
    for (number, cells), code in zip(data_rows, codes, strict=True):
        unit = None
        governed = False
        if not code:
            issues.add("unit.code_missing", {}, row=number, col=code_col,
                       header=header_of[code_col])
        elif code in first_row:
            issues.add("unit.duplicate", {"code": code, "first": first_row[code]}, row=number,
                       col=code_col, header=header_of[code_col])
        else:
            first_row[code] = number
            found = units.get(code)
            if found is None or not principal.can("unit.read", found[1]):
                # Outside the read scope looks the same as absent: codes cannot be probed.
                issues.add("unit.unknown", {"code": code}, row=number, col=code_col,
                           header=header_of[code_col])
            elif not principal.can("unit.write", found[1]):
                issues.add("unit.read_only", {"code": code}, row=number, col=code_col,
                           header=header_of[code_col])
            else:
                unit = found[0]
                governed = gate.governs(found[1])
        values: dict[str, Any] = {}
        cleared: set[str] = set()
        bad_cells = False
        for name, col in field_cols.items():
            try:
                value = coerce_cell(fields[name].get("type", "number"), cell(cells, col))
            except CellError as exc:
                issues.add(exc.code, exc.params, row=number, col=col, header=header_of[col])
                bad_cells = True
                continue
            if value is None:
                cleared.add(name)
            else:
                values[name] = value
        merged = dict(values)
        if unit is not None:
            k = position[unit]
            for name in fields:
                if name not in field_cols and not math.isnan(stored[name][k]):
                    merged[name] = _stored_for_schema(fields[name], float(stored[name][k]))
        # jsonschema decides; the plain-Python check only skips it for rows it passes.
        problems = [] if fast is not None and fast(merged) else input_issues(check, merged)
        for problem in problems:
            if problem.code == "required" and (unit is None or bad_cells):
                continue  # the row is already refused; "required" would only add noise
            col, head = where(problem.field)
            issues.add(f"input.{problem.code}", dict(problem.params) | {"field": problem.field},
                       row=number, col=col, header=head)
        if unit is None or issues:
            continue  # keep validating, but collect changes only while the file is clean
        k = position[unit]
        for name in field_cols:
            new = _as_stored(values.get(name)) if name not in cleared else None
            written[name].append((number, math.nan if new is None else new))
            old = float(stored[name][k])
            if governed:
                before = None if math.isnan(old) else old
                if before == new:
                    continue
                if gate.mode == input_governance.LOCKED:
                    issues.add("unit.locked", {"code": code, "period": period.code},
                               row=number, col=field_cols[name], header=header_of[field_cols[name]])
                    break
                was, wants = held.setdefault(unit, ({}, {}))
                was[name], wants[name] = before, new
                continue
            row = {"period_id": period.id, "unit_id": unit, "name": name, "value": new}
            if math.isnan(old):
                if new is None:
                    continue
                changes.inserts.append(row)
            elif new is None:
                changes.deletes.setdefault(name, []).append(unit)
            elif new != old:
                changes.updates.append(row)
            else:
                continue
            changes.units.add(unit)
            changes.note(code, name, None if math.isnan(old) else old, new)
    issues.raise_if_any()
    # The one input check every write path runs (the planner's), on what would be written.
    _check_written(input_check.active_fields(session), written, field_cols, header_of, issues)
    issues.raise_if_any()

    with unit_of_work(session):
        _write_changes(session, period, changes)
        audit.record(session, actor, "import_inputs", "period", period.code, after={
            "file": filename[:200], "sha256": digest, "rows": len(data_rows),
            "units_changed": len(changes.units), "values_changed": changes.count,
            "fields": sorted(field_cols), "changes": changes.log,
            "units_pending": len(held)}, remote_addr=remote_addr)
        flow_ids = tuple(
            input_governance.request_change(session, actor, session.get(OrgUnit, uid), period,
                                            was, wants, "sheet", remote_addr).id
            for uid, (was, wants) in sorted(held.items()))
    return InputsImportResult(period.code, len(data_rows), len(changes.units), changes.count,
                              digest, len(held), flow_ids)


#: input_check's codes -> the sheet report's (translated by the web layer).
_SHEET_CODES = {"missing": "input.required", "below_minimum": "input.minimum",
                "above_maximum": "input.maximum", "not_integer": "cell.not_an_integer",
                "not_boolean": "cell.not_a_boolean", "not_finite": "cell.not_finite"}


def _check_written(fields: Mapping[str, Any], written: Mapping[str, list[tuple[int, float]]],
                   field_cols: Mapping[str, int], header_of: Mapping[int, str],
                   issues: IssueLog) -> None:
    """Report, by row and column, every value the active model's field check refuses."""
    columns = {name: [v for _n, v in pairs] for name, pairs in written.items()}
    for name, problems in input_check.first_problems(fields, columns, MAX_ISSUES).items():
        col = field_cols[name]
        for p in problems:
            params = dict(p.params)
            if "min" in params or "max" in params:
                params["limit"] = params.pop("min", params.pop("max", None))
            issues.add(_SHEET_CODES[p.code], params, row=written[name][p.row][0], col=col,
                       header=header_of[col])


def _write_changes(session: Session, period: Period, changes: _Changes) -> None:
    """Apply the changes in bulk: executemany inserts/updates, one delete per field chunk."""
    org_queries.write_attributes(session, period.id, changes.inserts, changes.updates,
                                 changes.deletes)
