"""The spreadsheets' words in the reader's language, shared by the pages and the API.

Services give stable issue codes and take the workbook's words as data (``SheetTexts``,
``TemplateTexts``); the words live here, beside neither pages nor API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel.numbers import format_decimal
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from quotaflow.services import org_import
from quotaflow.services import spreadsheets as sheets


def number(value: float) -> str:
    """A number with thousands separators, as the pages' ``number`` filter writes it."""
    if float(value).is_integer():
        return format_decimal(int(value), format="#,##0", locale="en")
    return format_decimal(value, format="#,##0.####", locale="en")


FORMATS = ("xlsx", "csv")
IMPORT_KINDS = ("org", "people", "history")
#: Issues shown on the page; the rest are counted.
SHOWN_ISSUES = 500

ISSUE_MESSAGES: Mapping[str, Any] = {
    "file.too_large": _l("The file is larger than the limit of %(limit)s."),
    "file.too_large_unzipped": _l("The workbook unpacks to more than %(limit)s. Save it without unused sheets, images or formatting."),
    "file.empty": _l("The file “%(name)s” holds no rows."),
    "file.unsupported": _l("“%(name)s” is not an .xlsx or .csv file. Save it as an Excel workbook (.xlsx) or as CSV and upload it again."),
    "file.unreadable": _l("“%(name)s” cannot be read as a spreadsheet."),
    "file.encoding": _l("“%(name)s” is neither UTF-8 nor GBK text."),
    "file.too_many_rows": _l("The file has more than %(max)s rows; split it into smaller files."),
    "file.too_many_columns": _l("The file has more than %(max)s columns."),
    "file.too_many_cells": _l("The workbook has more than %(max)s cells; split it into smaller files."),
    "file.cell_too_long": _l("A cell holds more than %(max)s characters."),
    "file.string_too_long": _l("A text in the workbook holds more than %(max)s characters."),
    "file.too_many_strings": _l("The workbook holds more than %(max)s different texts."),
    "file.too_much_text": _l("The workbook holds more than %(max)s characters of text."),
    "file.part_too_large": _l("A part of the workbook unpacks to more than %(limit)s."),
    "file.missing": _l("Choose a file to upload."),
    "model.missing": _l("No factor model is active, so there are no inputs to fill in."),
    "period.mismatch": _l("The file was exported for %(file)s, but %(chosen)s was chosen."),
    "period.unknown": _l("There is no period “%(period)s”."),
    "column.unknown": _l("Unknown column “%(header)s”."),
    "column.duplicate": _l("Column “%(header)s” appears twice (first in column %(first)s)."),
    "column.no_header": _l("This column has values but no header."),
    "column.missing": _l("The column “%(name)s” is missing."),
    "unit.code_missing": _l("The unit code is empty."),
    "unit.duplicate": _l("Unit %(code)s appears twice (first in row %(first)s)."),
    "unit.unknown": _l("There is no unit %(code)s in your scope."),
    "unit.read_only": _l("You may not change unit %(code)s."),
    "unit.locked": _l("The inputs of %(code)s are locked for %(period)s: the period's plan is "
                      "published. Ask the HRBP to change them."),
    "cell.not_a_number": _l("“%(value)s” is not a number."),
    "cell.not_an_integer": _l("“%(value)s” is not a whole number."),
    "cell.not_a_boolean": _l("“%(value)s” is not yes or no (use 1 or 0)."),
    "cell.not_finite": _l("Enter a finite number."),
    "cell.bad_type": _l("“%(value)s” is not a value this column accepts."),
    "input.required": _l("%(field)s needs a value."),
    "input.type": _l("“%(value)s” is not a %(type)s."),
    "input.minimum": _l("%(value)s is below the minimum, %(limit)s."),
    "input.maximum": _l("%(value)s is above the maximum, %(limit)s."),
    "input.unknown_field": _l("Unknown input %(name)s."),
    "input.invalid": _l("This value is not accepted."),
    "org.required": _l("The column %(column)s needs a value."),
    "org.bad_code": _l("“%(code)s” is not a valid code (letters, digits, _ . - and at most 64 characters)."),
    "org.unknown_level": _l("Unknown level “%(level)s” (the levels are %(known)s)."),
    "org.not_person": _l("The people import takes only rows of level %(person)s, not “%(level)s”."),
    "org.too_long": _l("Enter at most %(max)s characters."),
    "org.bad_period": _l("“%(value)s” is not a period such as 2026Q4."),
    "org.parent_required": _l("Unit %(code)s needs a parent unit (only the company has none)."),
    "org.cycle": _l("Unit %(code)s cannot be placed under itself or one of its own units."),
    "org.level_changed": _l("A unit's level cannot change (it is %(old)s, the file says %(new)s)."),
    "org.duplicate": _l("Unit %(code)s appears twice (first in row %(first)s)."),
    "org.unknown_parent": _l("There is no parent unit %(parent)s."),
    "org.level_mismatch": _l("A %(level)s cannot be placed under %(parent)s, which is a %(parent_level)s."),
    "org.outside_scope": _l("Unit %(code)s is outside your scope."),
    "history.duplicate": _l("%(code)s in %(period)s appears twice (first in row %(first)s)."),
}
TYPE_NAMES = {
    "number": _l("number"),
    "integer": _l("whole number"),
    "boolean": _l("yes/no value (1 or 0)"),
}
IMPORT_TITLES = {
    "org": _l("Org units"),
    "people": _l("People"),
    "history": _l("History"),
}
IMPORT_HELP = {
    "org": _l("Creates new units and updates the names, cities and opening period of existing ones. A new parent_code moves a unit with everything below it."),
    "people": _l("Sales people are the person-level units: same columns, every row of level person."),
    "history": _l("Past results: one row per unit and period; existing results are replaced."),
}


class _Params(dict):  # type: ignore[type-arg]
    """Message params that never raise: a missing name shows as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def size_text(size: int) -> str:
    """A byte count for people: "16 MB", "512 KB"."""
    if size >= 1024 * 1024:
        return gettext("%(size)s MB", size=number(round(size / 1024 / 1024, 1)))
    return gettext("%(size)s KB", size=number(max(1, round(size / 1024))))


def issue_message(issue: sheets.SheetIssue) -> str:
    """The message of one issue in the user's language."""
    params = _Params({k: (number(v) if isinstance(v, int | float) and not isinstance(v, bool)
                          else v) for k, v in issue.params.items()})
    if "max_bytes" in issue.params:
        params["limit"] = size_text(int(issue.params["max_bytes"]))
    if issue.code == "input.type":
        params["type"] = str(TYPE_NAMES.get(str(issue.params.get("type")), issue.params.get("type")))
    message = ISSUE_MESSAGES.get(issue.code)
    if message is None:
        return issue.code
    try:
        return str(message) % params
    except (TypeError, ValueError):
        return str(message)


def report(error: sheets.SheetImportError) -> dict[str, Any]:
    shown = error.issues[:SHOWN_ISSUES]
    return {
        "issues": [{"row": i.row, "column": i.column, "header": i.header,
                    "code": i.code, "message": issue_message(i)} for i in shown],
        "total": error.total,
        "hidden": error.total - len(shown),
    }



def sheet_texts() -> sheets.SheetTexts:
    """The inputs workbook's words in the user's language."""
    return sheets.SheetTexts(
        data_sheet=gettext("Inputs"),
        readme_sheet=gettext("README"),
        col_code=gettext("Unit code"),
        col_name=gettext("Unit name"),
        col_level=gettext("Level"),
        readme=(
            gettext("QuotaFlow inputs workbook: one row per unit in your scope."),
            gettext("Fill in the white columns; the grey columns (code, name, level) are read-only."),
            gettext("Row 2 holds the field names: keep it, uploads match columns by these names, whatever their order."),
            gettext("Numbers may use thousands separators (1,234.5); yes/no fields take 1 or 0."),
            gettext("Leave a cell empty to clear an optional value."),
            gettext("Upload the file on the Spreadsheets page. If any row has a problem nothing is saved, and the report lists every row and column to fix."),
            gettext("The table below describes each input."),
        ),
        fields_header=(gettext("Field"), gettext("Label"), gettext("Type"), gettext("Minimum"),
                       gettext("Maximum"), gettext("Required"), gettext("Help")),
        type_names={k: str(v) for k, v in TYPE_NAMES.items()},
        yes=gettext("yes"),
        no=gettext("no"),
        invalid_title=gettext("Invalid value"),
        between=gettext("Enter a value from %(min)s to %(max)s."),
        at_least=gettext("Enter a value of at least %(min)s."),
        at_most=gettext("Enter a value of at most %(max)s."),
        boolean=gettext("Enter 1 (yes) or 0 (no)."),
        any_number=gettext("Enter a number."),
    )


def template_texts(kind: str) -> org_import.TemplateTexts:
    return org_import.TemplateTexts(
        sheet=str(IMPORT_TITLES[kind]),
        readme_sheet=gettext("README"),
        readme=(
            str(IMPORT_HELP[kind]),
            gettext("Keep the header row; columns are matched by their names."),
            gettext("Rows whose first cell starts with # are ignored: the example row is one. Copy it without the #."),
            gettext("If any row has a problem nothing is saved, and the report lists every row and column to fix."),
        ),
    )
