"""The HR export: every person's final target in a period's latest published plan, as a
CSV (UTF-8 with a BOM, for Excel) or an .xlsx file for the HR system.

One row per person unit of the plan (the deepest org level) inside the asked scope:
person code and name, then each org level between the company and the person (nearest
first: team, then region in the demo, each as code and name, headed with the level's
configured name), the target in whole yuan, the period, the plan number and, from the
commitment letters, where the person's current letter of that period stands.

Words come in an :class:`HrExportTexts` (English defaults here; the web page and the CLI
fill it in the requested language), so this module stays free of Flask.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.services import export_writer
from quotaflow.services.export_writer import csv_bytes
from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries, letter_queries, plan_queries, queries
from quotaflow.store.models import OrgLevel, Period, Plan
from quotaflow.store.queries import period_by_code

FORMATS = ("csv", "xlsx")
MIMETYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
LETTER_STATES = ("none", "issued", "signed", "countersigned", "outdated")
YUAN_FORMAT = "#,##0"
#: Text cells starting with these would be formulas in Excel (the rule lives in export_writer).
FORMULA_STARTS = export_writer.FORMULA_STARTS


class HrExportError(QuotaFlowError):
    """The export cannot be made; ``code`` says why (``params`` fill the message)."""

    domain = "hr_export"
    CODE_KINDS = code_kinds(unknown_period="not_found", no_published_plan="not_found")
    CODES = messages.register(domain, {
        "unknown_period": _l("There is no period “%(period)s”."),
        "no_published_plan": _l("No plan of %(period)s is published yet, so there is nothing to "
                                "export."),
        "no_levels": _l("The organisation has no levels."),
        "bad_format": _l("Unknown format “%(format)s” (choose %(known)s)."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "", **params)


@dataclass(frozen=True)
class HrExportTexts:
    """The words of the file, in the requested language."""

    sheet: str = "Targets"
    code: str = "Person code"
    name: str = "Full name"
    level_code: str = "%(level)s code"  # %(level)s: the level's configured name
    target: str = "Target (yuan)"
    period: str = "Period"
    plan: str = "Plan"
    letter: str = "Commitment letter"
    letter_states: Mapping[str, str] = field(default_factory=lambda: {
        "none": "Not issued", "issued": "Awaiting signature",
        "signed": "Signed, awaiting countersignature", "countersigned": "Countersigned",
        "outdated": "Outdated: the target changed"})


@dataclass(frozen=True)
class HrExport:
    """The export's content: a header and one row per person."""

    period: Period
    plan: Plan
    header: list[str]
    rows: list[list[Any]]
    target_column: int  # index of the target in each row
    target_total: int
    sheet: str = "Targets"

    def filename(self, fmt: str) -> str:
        return f"hr-targets-{self.period.code}-plan{self.plan.number}.{fmt}"


def latest_published_plan(ctx: Context, period: Period) -> Plan | None:
    """The period's published plan with the highest number (None if none is published)."""
    return confirmation_queries.published_plan(ctx.session, period.id)


@dataclass(frozen=True)
class ExportSummary:
    plan: Plan
    people: int
    target_total: int


def summary(ctx: Context, plan: Plan, paths: Sequence[str] | None = None) -> ExportSummary:
    """How many people the export of ``plan`` holds inside ``paths`` and their total target."""
    session = ctx.session
    people, total = plan_queries.depth_total(session, plan.id, queries.person_depth(session), paths)
    return ExportSummary(plan=plan, people=people, target_total=total)


def _middle_levels(session: Session) -> tuple[int | None, list[OrgLevel]]:
    """The person depth and the levels between the company and the person, nearest first."""
    levels = queries.levels(session)
    if not levels:
        return None, []
    person_depth = levels[-1].depth
    return person_depth, [lv for lv in levels if 0 < lv.depth < person_depth][::-1]


def _header(middle: Sequence[OrgLevel], zh: bool, texts: HrExportTexts) -> list[str]:
    header = [texts.code, texts.name]
    for lv in middle:
        level_name = lv.name_zh if zh else lv.name_en
        header += [texts.level_code % {"level": level_name}, level_name]
    return [*header, texts.target, texts.period, texts.plan, texts.letter]


def export_header(ctx: Context, *, lang: str, texts: HrExportTexts | None = None
                  ) -> list[str]:
    """The export's column headings in ``lang``."""
    return _header(_middle_levels(ctx.session)[1], lang.startswith("zh"), texts or HrExportTexts())


def _letter_states(session: Session, period: Period, targets: Mapping[int, int]
                   ) -> dict[int, str]:
    """unit id -> state of the person's current letter in ``period``."""
    rows = letter_queries.current_states(session, period.id)
    states: dict[int, str] = {}
    for unit_id, status, content in rows:
        if unit_id not in targets:
            continue
        letter_target = (content or {}).get("target")
        states[unit_id] = (status if letter_target is not None
                           and int(letter_target) == targets[unit_id] else "outdated")
    return states


def build_export(ctx: Context, period_code: str, *, lang: str,
                 texts: HrExportTexts | None = None,
                 paths: Sequence[str] | None = None) -> HrExport:
    """The rows of the export for ``period_code`` in ``lang`` ("zh" or "en"), narrowed to
    the subtrees ``paths`` (None: the whole company)."""
    session = ctx.session
    texts = texts or HrExportTexts()
    zh = lang.startswith("zh")
    period = period_by_code(session, period_code)
    if period is None:
        raise HrExportError("unknown_period", period=period_code)
    plan = latest_published_plan(ctx, period)
    if plan is None:
        raise HrExportError("no_published_plan", period=period.code)
    person_depth, middle = _middle_levels(session)
    if person_depth is None:
        raise HrExportError("no_levels")

    people = plan_queries.depth_rows(session, plan.id, person_depth, paths)

    def ancestor_ids(path: str) -> list[int]:
        return [int(part) for part in path.strip("/").split("/") if part]

    wanted = {ids[lv.depth] for p in people for ids in [ancestor_ids(p.path)]
              for lv in middle if lv.depth < len(ids)}
    ancestors = plan_queries.units_by_ids(session, sorted(wanted))
    targets = {p.id: int(p.target) for p in people}
    states = _letter_states(session, period, targets)

    header = _header(middle, zh, texts)

    rows: list[tuple[list[str], list[Any]]] = []
    for p in people:
        ids = ancestor_ids(p.path)
        row: list[Any] = [p.code, (p.name_zh or p.name_en) if zh else (p.name_en or p.name_zh)]
        sort_key: list[str] = []
        for lv in middle:
            unit = ancestors.get(ids[lv.depth]) if lv.depth < len(ids) else None
            row += [unit.code if unit else "", (unit.name(lang) if unit else "")]
            sort_key.insert(0, unit.code if unit else "")
        row += [int(p.target), period.code, plan.number,
                texts.letter_states[states.get(p.id, "none")]]
        rows.append(([*sort_key, p.code], row))
    rows.sort(key=lambda item: item[0])
    return HrExport(period=period, plan=plan, header=header, rows=[r for _, r in rows],
                    target_column=2 + 2 * len(middle), target_total=sum(targets.values()),
                    sheet=texts.sheet)


def to_csv(export: HrExport) -> bytes:
    """CSV in UTF-8 with a BOM (Excel opens Chinese text correctly), CRLF line ends."""
    return csv_bytes([export.header, *export.rows])  # export_writer neutralises formulas


def to_xlsx(export: HrExport) -> bytes:
    """One sheet: a bold header row (frozen, filterable), then one row per person."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(export.sheet[:31])
    levels = (export.target_column - 2) // 2
    widths = [14, 18, *[14, 20] * levels, 16, 10, 8, 22]
    for k, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(k + 1)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = (f"A1:{get_column_letter(len(export.header))}"
                             f"{len(export.rows) + 1}")
    bold = Font(bold=True)

    def text_cell(value: Any) -> WriteOnlyCell:
        return export_writer.cell(sheet, value)  # never a formula

    header = []
    for value in export.header:
        cell = text_cell(value)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in export.rows:
        cells = [text_cell(v) for v in row]
        cells[export.target_column].number_format = YUAN_FORMAT
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(export: HrExport, fmt: str) -> bytes:
    if fmt == "csv":
        return to_csv(export)
    if fmt == "xlsx":
        return to_xlsx(export)
    raise HrExportError("bad_format", format=fmt, known=", ".join(FORMATS))
