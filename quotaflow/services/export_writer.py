"""The one writer of the .xlsx and .csv files the product hands out (issue 11 #6).

A text that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
spreadsheet programs skip before one) is a live formula when a spreadsheet program opens
the file: a unit named ``=HYPERLINK("http://evil","x")`` would become a link in every
plan export. The rule (first written for the HR export) is the same everywhere:

- .xlsx: such a text is written as a text cell (type ``s``, never ``f``) with Excel's
  quote prefix, so it shows and edits as the text it is;
- .csv: such a text gets a leading ``'``, which spreadsheet programs read as "text".

Numbers stay numbers (a negative number is not a text starting with ``-``). Every
exporter writes its rows through :func:`append` (.xlsx) or :func:`csv_writer` /
:func:`csv_bytes` (.csv).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell

#: Text cells starting with these would be formulas in a spreadsheet program.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def safe_text(value: Any) -> Any:
    """A CSV field: formula-like text gets a leading ``'``; anything else as given."""
    return "'" + value if is_formula_like(value) else value


def text_cell(cell: Cell) -> Cell:
    """Make a formula-like text cell plain text (type ``s``, quote prefix)."""
    if is_formula_like(cell.value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell


def cell(sheet: Any, value: Any) -> Cell:
    """A write-only cell holding ``value``, never a formula."""
    return text_cell(WriteOnlyCell(sheet, value=value))


def append(sheet: Any, row: Iterable[Any]) -> None:
    """Append a row to a write-only sheet; plain values and cells alike are neutralised."""
    sheet.append([text_cell(v) if isinstance(v, Cell) else cell(sheet, v)
                  for v in row])


def workbook() -> Workbook:
    return Workbook(write_only=True)


def workbook_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class _SafeWriter:
    """``csv.writer`` whose rows go through :func:`safe_text`."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Sequence[Any]) -> Any:
        return self._writer.writerow([safe_text(v) for v in row])

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: Any, **options: Any) -> _SafeWriter:
    return _SafeWriter(out, **options)


def plain(value: Any) -> Any:
    """Numbers as typed: 12 not 12.0, full precision otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV in UTF-8 with a BOM (so Excel opens Chinese text correctly), CRLF line ends;
    texts neutralised before numbers are turned into their plain text."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else plain(safe_text(v)) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
