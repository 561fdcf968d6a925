"""A plan as .xlsx in the reader's language and scope: the page and the API download the
same file (cells written through the one export writer, so no text is a live formula)."""

from __future__ import annotations

import io
from typing import Any

from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from quotaflow.http.context import request_context
from quotaflow.http.guard import current_principal
from quotaflow.services import export_writer, plan_reads
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service

SEVERITY_LABELS = {"high": _l("High"), "medium": _l("Medium"), "low": _l("Low"),
                   "info": _l("Info")}
STATUS_LABELS = {"draft": _l("Draft"), "published": _l("Published"),
                 "superseded": _l("Superseded")}
YUAN_FORMAT = "#,##0"
PERCENT_FORMAT = "0.0%"


def factor_labels(plan: Any) -> list[dict[str, Any]]:
    weights = (plan.summary or {}).get("weights", {})
    return [{"key": f["key"], "label_en": f.get("label_en", f["key"]),
             "label_zh": f.get("label_zh", f.get("label_en", f["key"])),
             "weight": weights.get(f["key"])} for f in plan.model_version.content["factors"]]


def _cell(ws: Any, value: Any, number_format: str | None = None, bold: bool = False) -> Any:
    cell = WriteOnlyCell(ws, value=value)
    if number_format:
        cell.number_format = number_format
    if bold:
        cell.font = Font(bold=True)
    return cell


def workbook(plan: Any, records: list[dict[str, Any]], summary: dict[str, Any],
              sees_company: bool) -> bytes:
    """The plan as .xlsx: a summary sheet and one row per unit in the user's scope."""
    zh = str(get_locale() or "zh").startswith("zh")
    lang = "zh" if zh else "en"
    factors = factor_labels(plan)
    levels = {lv.key: (lv.name_zh if zh else lv.name_en) for lv in unit_service.levels(request_context())}
    book = Workbook(write_only=True)

    info = book.create_sheet(gettext("Summary"))
    info.column_dimensions["A"].width = 34
    info.column_dimensions["B"].width = 22
    label = summary.get(f"label_{lang}") or plan.scenario
    creator = plan.created_by.display_name if plan.created_by else ""
    lines: list[tuple[str, Any, str | None]] = [
        (gettext("Plan"), plan.number, None),
        (gettext("Period"), plan.period.code, None),
        (gettext("Scenario"), label, None),
        (gettext("Status"), str(STATUS_LABELS.get(plan.status, plan.status)), None),
        (gettext("Company total"), plan.company_total, YUAN_FORMAT),
        (gettext("Requested total"), summary.get("requested_total", plan.company_total),
         YUAN_FORMAT),
        (gettext("Planned total"), plan.planned_total, YUAN_FORMAT),
        (gettext("Shortfall"), plan.company_total - plan.planned_total, YUAN_FORMAT),
        (gettext("Created by"), creator, None),
        (gettext("Created at (UTC)"), plan.created_at, "yyyy-mm-dd hh:mm"),
        (gettext("Factor model version"), plan.model_version.version, None),
        (gettext("Note"), plan.note or "", None),
    ]
    for name, value, fmt in lines:
        export_writer.append(info, [_cell(info, name, bold=True), _cell(info, value, fmt)])
    export_writer.append(info, [])
    export_writer.append(info, [_cell(info, gettext("Factor"), bold=True), _cell(info, gettext("Weight"), bold=True)])
    for f in factors:
        weight = None if f["weight"] is None else float(f["weight"]) / 100
        export_writer.append(info, [f[f"label_{lang}"], _cell(info, weight, PERCENT_FORMAT)])
    risks = summary.get("plan_risks", []) if sees_company else []
    if risks:
        export_writer.append(info, [])
        export_writer.append(info, [_cell(info, gettext("Plan risks"), bold=True)])
        for risk in risks:
            export_writer.append(info, [str(SEVERITY_LABELS.get(risk["severity"], risk["severity"])),
                         risk.get(f"message_{lang}", "")])

    units = book.create_sheet(gettext("Units"))
    units.freeze_panes = "C2"
    headers = [gettext("Code"), gettext("Name"), gettext("Level"), gettext("Parent"),
               gettext("Target (yuan)"), *[f[f"label_{lang}"] for f in factors],
               gettext("Bounds adjustment"), gettext("Rounding adjustment"),
               gettext("Lower bound"), gettext("Upper bound"), gettext("Locked"), gettext("Risks")]
    widths = [12, 24, 10, 12, 16, *[16] * len(factors), 16, 14, 16, 16, 8, 60]
    for k, width in enumerate(widths):
        units.column_dimensions[get_column_letter(k + 1)].width = width
    export_writer.append(units, [_cell(units, h, bold=True) for h in headers])
    yes, no = gettext("yes"), gettext("no")
    for r in records:
        export_writer.append(units, [
            r["code"], r[f"name_{lang}"], levels.get(r["level"], r["level"]), r["parent"] or "",
            _cell(units, r["target"], YUAN_FORMAT),
            *[_cell(units, r["factor_amounts"][f["key"]], YUAN_FORMAT) for f in factors],
            _cell(units, r["bounds_adjustment"], YUAN_FORMAT),
            _cell(units, r["rounding_adjustment"], YUAN_FORMAT),
            _cell(units, r["lower"], YUAN_FORMAT), _cell(units, r["upper"], YUAN_FORMAT),
            yes if r["locked"] else no,
            "; ".join(risk.get(f"message_{lang}") or risk["rule"] for risk in r["risks"]),
        ])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def plan_workbook(plan: Any) -> tuple[bytes, str]:
    """The plan's .xlsx (rows within the caller's scope, current language) and its name;
    the page and the API download the same file."""
    principal = current_principal()
    paths = principal.scope_paths("unit.read")
    ctx = request_context()
    root = plan_reads.root(ctx, plan)
    sees_company = root is not None and principal.can("unit.read", root.path)
    data = workbook(plan, plan_service.unit_records(ctx, plan, paths),
                     plan_service.summary_for_scope(ctx, plan, paths), sees_company)
    return data, f"plan-{plan.period.code}-{plan.number}.xlsx"
