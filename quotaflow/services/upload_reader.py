"""The one reader of untrusted spreadsheets: every upload (inputs sheet, actuals,
org/people/history imports) goes through :func:`quotaflow.services.spreadsheets.read_table`,
which calls :func:`check_xlsx` before openpyxl opens a workbook and :func:`check_csv_rows`
on every CSV row.

An .xlsx is a zip of XML parts; a 490 KB file can hold one cell that inflates to
480 MiB, or shared strings of 450 MB, and openpyxl (even ``read_only``) loads every
shared string and every cell's text whole. So the parts are first streamed here, in
64 KB pieces through expat, counting as we go and stopping at the first limit passed:
a refused file costs one chunk of memory and the time to read up to the limit, never
the inflated size. Only a file within every limit reaches openpyxl.

Limits (:class:`UploadLimits`; the app config's ``UPLOAD_MAX_*`` keys override them,
see :meth:`UploadLimits.from_config`): cells (counted as openpyxl will produce them,
each row padded to its last cell), row numbers, columns with values, characters per
cell, shared strings (count, and with inline text total characters), the inflated size
of the whole zip and of each part openpyxl parses in one piece. DOCTYPE and entity
declarations are refused outright (an .xlsx never has them).

Refusals are :class:`~quotaflow.services.spreadsheets.SheetImportError` issues saying
what and where (sheet, row, column); no cell text is ever echoed (see :func:`excerpt`).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from posixpath import join, normpath
from typing import Any
from xml.parsers import expat

from defusedxml import ElementTree as SafeET

from quotaflow import messages
from quotaflow.errors import Invalid
from quotaflow.messages import _l

#: Excel's own limit of characters in a cell.
MAX_CELL_CHARS = 32_767
#: Cells of all worksheets together, each row counted up to its last cell.
MAX_CELLS = 5_000_000
#: A worksheet's columns that may hold values (as many as the inputs sheet accepts).
MAX_COLUMNS = 500
#: Shared strings (distinct texts) in a workbook.
MAX_SHARED_STRINGS = 1_000_000
#: Characters of text (shared strings and inline strings) in a workbook.
MAX_TEXT_CHARS = 32 * 1024 * 1024
#: The parts of an .xlsx together may not inflate beyond this (declared and counted).
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
#: A part openpyxl parses whole (workbook, styles, relationships, theme ...).
MAX_PART_BYTES = 16 * 1024 * 1024
#: Characters of a value quoted back in an error report.
EXCERPT_CHARS = 80

CHUNK = 64 * 1024
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d{1,7})$")


@dataclass(frozen=True)
class UploadLimits:
    max_cells: int = MAX_CELLS
    max_columns: int = MAX_COLUMNS
    max_cell_chars: int = MAX_CELL_CHARS
    max_shared_strings: int = MAX_SHARED_STRINGS
    max_text_chars: int = MAX_TEXT_CHARS
    max_unzipped_bytes: int = MAX_UNZIPPED_BYTES
    max_part_bytes: int = MAX_PART_BYTES
    #: The highest row number a worksheet may use (None: no limit beyond max_cells).
    max_row_number: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> UploadLimits:
        """``UPLOAD_MAX_CELLS``, ``UPLOAD_MAX_CELL_CHARS`` ... from the app config, else
        ``QUOTAFLOW_UPLOAD_MAX_...`` from the environment, override the defaults."""
        given = {}
        for f in fields(cls):
            key = f"UPLOAD_{f.name.upper()}"
            value = config.get(key) or os.environ.get(f"QUOTAFLOW_{key}")
            if value:
                given[f.name] = int(value)
        return replace(cls(), **given)


DEFAULT_LIMITS = UploadLimits()
_configured: UploadLimits | None = None


def configure(config: Mapping[str, Any]) -> None:
    """Take the app config's ``UPLOAD_MAX_*`` limits (the app factory calls this)."""
    global _configured
    _configured = UploadLimits.from_config(config)


def current_limits() -> UploadLimits:
    return _configured or DEFAULT_LIMITS


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """A value as an error report may quote it: text cut to ``limit`` characters + "…"."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value


class Refused(Invalid):
    """A limit was passed (what, and where: sheet, row, column). Uploads turn it into the
    one issue of a :class:`~quotaflow.services.spreadsheets.SheetImportError`."""

    domain = "upload"
    CODES = messages.register(domain, {
        "file.cell_too_long": _l("A cell holds more than %(max)s characters."),
        "file.string_too_long": _l("A text in the workbook holds more than %(max)s characters."),
        "file.too_many_strings": _l("The workbook holds more than %(max)s different texts."),
        "file.too_much_text": _l("The workbook holds more than %(max)s characters of text."),
        "file.too_many_cells": _l("The workbook has more than %(max)s cells; split it into smaller files."),
        "file.too_many_columns": _l("The file has more than %(max)s columns."),
        "file.too_many_rows": _l("The file has more than %(max)s rows; split it into smaller files."),
        "file.too_large_unzipped": _l("The workbook unpacks to more than %(max_bytes)s bytes."),
        "file.part_too_large": _l("A part of the workbook unpacks to more than %(max_bytes)s bytes."),
        "file.unreadable": _l("The file cannot be read as a spreadsheet."),
    })

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code, "", **params)


def column_letter(col: int) -> str:
    letters = ""
    while col > 0:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + ord(ch) - 64
    return number


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


def _no_dtd(*_args: Any) -> None:
    raise Refused("file.unreadable")


def _parser() -> Any:
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    parser.UnparsedEntityDeclHandler = _no_dtd
    parser.ExternalEntityRefHandler = _no_dtd
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


class _Budget:
    """What the whole workbook has used so far."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.inflated = 0
        self.cells = 0
        self.text = 0

    def add_text(self, n: int) -> None:
        self.text += n
        if self.text > self.limits.max_text_chars:
            raise Refused("file.too_much_text", max=self.limits.max_text_chars)


def _feed(archive: zipfile.ZipFile, info: zipfile.ZipInfo, parser: Any, budget: _Budget) -> None:
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            budget.inflated += len(chunk)
            if budget.inflated > budget.limits.max_unzipped_bytes:
                raise Refused("file.too_large_unzipped",
                              max_bytes=budget.limits.max_unzipped_bytes)
            parser.Parse(chunk, False)
    parser.Parse(b"", True)


def _shared_strings(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget) -> None:
    limits = budget.limits
    state = {"count": 0, "in_t": False, "length": 0}

    def start(name: str, _attrs: Any) -> None:
        local = _local(name)
        if local == "si":
            state["count"] += 1
            state["length"] = 0
            if state["count"] > limits.max_shared_strings:
                raise Refused("file.too_many_strings", max=limits.max_shared_strings)
        elif local == "t":
            state["in_t"] = True

    def end(name: str) -> None:
        if _local(name) == "t":
            state["in_t"] = False

    def text(data: str) -> None:
        if state["in_t"]:
            state["length"] += len(data)
            if state["length"] > limits.max_cell_chars:
                raise Refused("file.string_too_long", index=state["count"],
                              max=limits.max_cell_chars)
            budget.add_text(len(data))

    parser = _parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    _feed(archive, info, parser, budget)


def _worksheet(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str,
               budget: _Budget) -> None:
    limits = budget.limits
    s: dict[str, Any] = {"row": 0, "col": 0, "width": 0, "value": False, "in_text": False,
                         "length": 0, "inline": False}

    def where() -> dict[str, Any]:
        return {"sheet": sheet, "row": s["row"], "column": column_letter(s["col"])}

    def start(name: str, attrs: Mapping[str, str]) -> None:
        local = _local(name)
        if local == "c":
            ref = _CELL_REF.match(attrs.get("r", ""))
            if ref:
                s["col"] = _column_number(ref.group(1))
                s["row"] = int(ref.group(2)) or s["row"]
            else:
                s["col"] += 1
            s["value"] = False
            s["inline"] = attrs.get("t") in ("inlineStr", "str")
            s["width"] = max(s["width"], s["col"])
        elif local == "row":
            r = attrs.get("r")
            s["row"] = int(r) if r and r.isdigit() else s["row"] + 1
            s["col"] = 0
            s["width"] = 0
            if limits.max_row_number is not None and s["row"] > limits.max_row_number:
                raise Refused("file.too_many_rows", max=limits.max_row_number)
        elif local in ("v", "t"):
            s["in_text"] = True
            s["length"] = 0

    def end(name: str) -> None:
        local = _local(name)
        if local in ("v", "t"):
            s["in_text"] = False
        elif local == "c":
            if s["value"] and s["col"] > limits.max_columns:
                raise Refused("file.too_many_columns", max=limits.max_columns, **where())
        elif local == "row":
            budget.cells += s["width"]
            if budget.cells > limits.max_cells:
                raise Refused("file.too_many_cells", max=limits.max_cells)

    def text(data: str) -> None:
        if not s["in_text"]:
            return
        s["length"] += len(data)
        if data.strip():
            s["value"] = True
        if s["length"] > limits.max_cell_chars:
            raise Refused("file.cell_too_long", max=limits.max_cell_chars, **where())
        if s["inline"]:
            budget.add_text(len(data))

    parser = _parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    _feed(archive, info, parser, budget)


def _sheet_names(archive: zipfile.ZipFile, names: set[str]) -> dict[str, str]:
    """Part path -> sheet name as the workbook shows it (best effort)."""
    try:
        book = SafeET.fromstring(archive.read("xl/workbook.xml"))
        rels = SafeET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # a name is only a nicety; openpyxl judges the file
        return {}
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        path = target.lstrip("/") if target.startswith("/") else normpath(join("xl", target))
        targets[rel.get("Id")] = path
    found = {}
    for element in book.iter():
        if _local(element.tag.rsplit("}", 1)[-1]) == "sheet":
            rid = next((v for k, v in element.attrib.items() if k.endswith("}id")), None)
            if rid in targets and targets[rid] in names:
                found[targets[rid]] = element.get("name", "")
    return found


def check_xlsx(archive: zipfile.ZipFile, limits: UploadLimits = DEFAULT_LIMITS) -> None:
    """Stream every part openpyxl would read; raise :class:`Refused` at the first limit."""
    infos = archive.infolist()
    if sum(i.file_size for i in infos) > limits.max_unzipped_bytes:
        raise Refused("file.too_large_unzipped", max_bytes=limits.max_unzipped_bytes)
    budget = _Budget(limits)
    names = {i.filename for i in infos}
    sheets, strings, small = [], [], []
    for info in infos:
        lower = info.filename.lower()
        if lower.startswith("xl/worksheets/") and lower.endswith(".xml"):
            sheets.append(info)
        elif lower.endswith("sharedstrings.xml"):
            strings.append(info)
        elif lower.endswith((".xml", ".rels")):
            small.append(info)
    for info in small:
        if info.file_size > limits.max_part_bytes:
            raise Refused("file.part_too_large", part=excerpt(info.filename),
                          max_bytes=limits.max_part_bytes)
        with archive.open(info) as stream:
            head = stream.read(limits.max_part_bytes + 1)
        if len(head) > limits.max_part_bytes:
            raise Refused("file.part_too_large", part=excerpt(info.filename),
                          max_bytes=limits.max_part_bytes)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise Refused("file.unreadable")
    for info in strings:
        _shared_strings(archive, info, budget)
    titles = _sheet_names(archive, names)
    for info in sheets:
        _worksheet(archive, info, excerpt(titles.get(info.filename) or info.filename), budget)


def check_csv_rows(rows: Any, limits: UploadLimits = DEFAULT_LIMITS) -> Any:
    """Pass CSV rows on, refusing a field longer than a cell may be."""
    for number, cells in enumerate(rows, start=1):
        for col, value in enumerate(cells, start=1):
            if len(value) > limits.max_cell_chars:
                raise Refused("file.cell_too_long", max=limits.max_cell_chars, sheet="",
                              row=number, column=column_letter(col))
        yield cells


def csv_lines(text: str, delimiter: str = ",", limits: UploadLimits = DEFAULT_LIMITS) -> Any:
    """The physical lines of a CSV text, refusing one longer than a whole row may be
    (so csv.reader never builds a row of millions of fields)."""
    longest = limits.max_columns * (limits.max_cell_chars + 3)
    start = 0
    number = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        number += 1
        if end - start > longest or text.count(delimiter, start, end) > 4 * limits.max_columns + 1000:
            raise Refused("file.too_many_columns", max=limits.max_columns, sheet="",
                          row=number, column="")
        yield text[start:end]
        start = end
