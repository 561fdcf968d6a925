"""Imports of org units, people and history from .xlsx or .csv (admin/HRBP), all or nothing.

Org units and people use the columns of ``seed_data/org_units.csv``: new codes create units,
known codes update names, cities and opening period, and a new ``parent_code`` moves the
unit (its path and every descendant's path are rewritten). People are the person-level
units, in the same format. History uses the columns of ``seed_data/history.csv`` and upserts
``unit_results``. Problems are reported like the inputs import (row, column, stable
code); nothing is written unless the whole file is clean.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from quotaflow.forms.inputs import CellError, coerce_cell
from quotaflow.services import audit
from quotaflow.services.access import Principal
from quotaflow.services.spreadsheets import (
    CSV_MIME,
    MAX_ROWS,
    XLSX_MIME,
    IssueLog,
    cell,
    cell_text,
    csv_bytes,
    headerless_values,
    is_comment,
    map_header,
    read_table,
    refuse,
    sha256_hex,
    template_workbook,
)
from quotaflow.services.uow import unit_of_work
from quotaflow.store import org_queries, queries
from quotaflow.store.models import OrgUnit, User

ORG_COLUMNS = ("code", "parent_code", "level", "name_en", "name_zh", "city_en", "city_zh",
               "new_city", "opened")
ORG_REQUIRED = ("code", "parent_code", "level", "name_en", "name_zh")
HISTORY_COLUMNS = ("unit_code", "period", "sales")
HISTORY_METRIC = "sales"
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
PERIOD_CODE = re.compile(r"^\d{4}Q[1-4]$")
NAME_MAX = 200
CITY_MAX = 100
#: How many created/moved codes the audit entry lists by name.
AUDIT_LIST_MAX = 200

ORG_EXAMPLE = ("#EAST-T7", "EAST", "team", "Suzhou Team 7", "苏州7组", "Suzhou", "苏州", 1,
               "2026Q4")
PEOPLE_EXAMPLE = ("#P0481", "EAST-T1", "person", "Wang Wei", "王伟", "Shanghai", "上海", 0,
                  "2026Q4")
HISTORY_EXAMPLE = ("#P0001", "2026Q3", 412000)


@dataclass(frozen=True)
class OrgImportResult:
    rows: int
    created: int
    updated: int
    moved: int
    paths_changed: int
    sha256: str


@dataclass(frozen=True)
class HistoryImportResult:
    rows: int
    inserted: int
    updated: int
    sha256: str


@dataclass(frozen=True)
class TemplateTexts:
    """Sheet titles and README lines of an import template, in the user's language."""

    sheet: str = "Data"
    readme_sheet: str = "README"
    readme: tuple[str, ...] = (
        "One row per record; keep the header row.",
        "Rows whose first cell starts with # are ignored: the example row is one.",
    )


@dataclass(frozen=True)
class Template:
    content: bytes
    filename: str
    mimetype: str


def template(kind: str, fmt: str, texts: TemplateTexts | None = None) -> Template:
    """The empty template of an import (``org``, ``people`` or ``history``) as xlsx or csv."""
    texts = texts or TemplateTexts()
    columns, example = {
        "org": (ORG_COLUMNS, ORG_EXAMPLE),
        "people": (ORG_COLUMNS, PEOPLE_EXAMPLE),
        "history": (HISTORY_COLUMNS, HISTORY_EXAMPLE),
    }[kind]
    if fmt == "csv":
        return Template(csv_bytes([columns, example]), f"{kind}-template.csv", CSV_MIME)
    if fmt != "xlsx":
        raise ValueError(f"unknown template format {fmt!r}")
    return Template(template_workbook(texts.sheet, columns, example, texts.readme_sheet,
                                      texts.readme), f"{kind}-template.xlsx", XLSX_MIME)


# ---------------------------------------------------------------------------- org units


@dataclass
class _Stored:
    id: int
    code: str
    parent_id: int | None
    depth: int
    path: str
    name_en: str
    name_zh: str
    city_en: str | None
    city_zh: str | None
    opened: str | None


@dataclass
class _Row:
    number: int
    code: str
    parent: str | None
    depth: int
    values: dict[str, Any] = field(default_factory=dict)  # only the columns present


def _level_depths(session: Session) -> tuple[dict[str, int], dict[int, str]]:
    by_text: dict[str, int] = {}
    key_of: dict[int, str] = {}
    for level in queries.levels(session):
        key_of[level.depth] = level.key
        for text in (level.name_en, level.name_zh):
            if text:
                by_text.setdefault(text.casefold(), level.depth)
    for depth, key in key_of.items():  # the key always wins
        by_text[key.casefold()] = depth
    return by_text, key_of


def _stored_units(session: Session) -> dict[str, _Stored]:
    return {r.code: _Stored(*r) for r in org_queries.stored_unit_rows(session)}


def _read_header(table_rows: list[tuple[int, tuple[Any, ...]]], names: Sequence[str],
                 required: Sequence[str], issues: IssueLog) -> dict[str, int]:
    header_row, header = table_rows[0]
    columns = map_header(header, header_row, {n: n for n in names}, issues)
    headerless_values(table_rows[1:], header, issues)
    missing = [n for n in required if n not in columns]
    for name in missing:
        issues.add("column.missing", {"name": name}, row=header_row)
    if missing:
        issues.raise_if_any()
    return columns


def _parse_org_row(number: int, cells: tuple[Any, ...], columns: Mapping[str, int],
                   stored: Mapping[str, _Stored], depths: Mapping[str, int],
                   key_of: Mapping[int, str], root_code: str | None, people: bool,
                   issues: IssueLog) -> _Row | None:

    def text(name: str) -> str:
        return cell_text(cell(cells, columns.get(name)))

    def add(what: str, name: str, **params: Any) -> None:
        issues.add(what, params, row=number, col=columns.get(name), header=name)

    code = text("code")
    if not code:
        add("org.required", "code", column="code")
    elif not CODE.match(code):
        add("org.bad_code", "code", code=code)
    level_text = text("level")
    depth = depths.get(level_text.casefold()) if level_text else None
    if not level_text:
        add("org.required", "level", column="level")
    elif depth is None:
        add("org.unknown_level", "level", level=level_text, known=", ".join(key_of.values()))
    elif people and depth != max(key_of):
        add("org.not_person", "level", level=level_text, person=key_of[max(key_of)])
    values: dict[str, Any] = {}
    for name, limit in (("name_en", NAME_MAX), ("name_zh", NAME_MAX), ("city_en", CITY_MAX),
                        ("city_zh", CITY_MAX)):
        if name not in columns:
            continue
        value = text(name)
        if not value and name in ORG_REQUIRED:
            add("org.required", name, column=name)
        elif len(value) > limit:
            add("org.too_long", name, max=limit)
        values[name] = value or None
    if "new_city" in columns:
        # Checked so a typo is caught; the org tree keeps no per-unit "new city" flag
        # (the factor model's new_city_share input carries it).
        try:
            coerce_cell("boolean", cell(cells, columns["new_city"]))
        except CellError as exc:
            issues.add(exc.code, exc.params, row=number, col=columns["new_city"],
                       header="new_city")
    if "opened" in columns:
        opened = text("opened")
        if opened and not PERIOD_CODE.match(opened):
            add("org.bad_period", "opened", value=opened)
        values["opened"] = opened or None
    parent = text("parent_code") or None
    if parent is None and code and code != root_code:
        add("org.parent_required", "parent_code", code=code)
    elif parent is not None and parent == code:
        add("org.cycle", "parent_code", code=code)
    old = stored.get(code)
    if old is not None and depth is not None and old.depth != depth:
        add("org.level_changed", "level", old=key_of.get(old.depth, old.depth),
            new=key_of.get(depth, depth))
    if depth is None or not code or not CODE.match(code) or parent == code:
        return None
    # Rows with cell problems still take part in the tree checks, so one upload reports
    # every problem; nothing is written while any issue stands.
    return _Row(number, code, parent, depth, values)


def _final_parent(code: str, parsed: Mapping[str, _Row], stored: Mapping[str, _Stored],
                  code_of: Mapping[int, str]) -> str | None:
    if code in parsed:
        return parsed[code].parent
    parent_id = stored[code].parent_id
    return code_of[parent_id] if parent_id is not None else None


def _check_tree(parsed: Mapping[str, _Row], stored: Mapping[str, _Stored],
                code_of: Mapping[int, str], key_of: Mapping[int, str],
                principal: Principal, columns: Mapping[str, int], issues: IssueLog) -> None:
    """Relations between rows and the stored tree: parents, levels, cycles, scope."""
    def can_write(path: str) -> bool:
        return principal.can("unit.write", path)

    def add(row: _Row, what: str, name: str, **params: Any) -> None:
        issues.add(what, params, row=row.number, col=columns.get(name), header=name)

    for row in parsed.values():
        old = stored.get(row.code)
        if old is not None and not can_write(old.path):
            add(row, "org.outside_scope", "code", code=row.code)
            continue
        moved = old is None or _final_parent(row.code, parsed, stored, code_of) != (
            code_of.get(old.parent_id) if old.parent_id is not None else None)
        if row.parent is None:
            continue
        if row.parent not in parsed and row.parent not in stored:
            add(row, "org.unknown_parent", "parent_code", parent=row.parent)
            continue
        if moved:
            seen = {row.code}
            current: str | None = row.parent
            cycle = False
            while current is not None:
                if current == row.code:
                    cycle = True
                    break
                if current in seen or (current not in parsed and current not in stored):
                    break  # another row's cycle or unknown parent: reported there
                seen.add(current)
                current = _final_parent(current, parsed, stored, code_of)
            if cycle:
                add(row, "org.cycle", "parent_code", code=row.code)
                continue
        parent_depth = parsed[row.parent].depth if row.parent in parsed \
            else stored[row.parent].depth
        if parent_depth + 1 != row.depth:
            add(row, "org.level_mismatch", "parent_code", parent=row.parent,
                level=key_of.get(row.depth, row.depth),
                parent_level=key_of.get(parent_depth, parent_depth))
            continue
        if moved and row.parent in stored and row.parent not in parsed \
                and not can_write(stored[row.parent].path):
            add(row, "org.outside_scope", "parent_code", code=row.parent)


def import_org_units(session: Session, actor: User, principal: Principal, data: bytes,
                     filename: str, *, people: bool = False, max_bytes: int | None = None,
                     max_rows: int = MAX_ROWS, remote_addr: str | None = None
                     ) -> OrgImportResult:
    """Create and update org units (or only people) from a file, all or nothing."""
    digest = sha256_hex(data)
    table = read_table(data, filename, max_bytes=max_bytes, max_rows=max_rows)
    issues = IssueLog()
    columns = _read_header(table.rows, ORG_COLUMNS, ORG_REQUIRED, issues)
    rows = [(n, c) for n, c in table.rows[1:] if not is_comment(c)]
    if len(rows) > max_rows:
        raise refuse("file.too_many_rows", max=max_rows)

    depths, key_of = _level_depths(session)
    stored = _stored_units(session)
    code_of = {u.id: u.code for u in stored.values()}
    root_code = next((u.code for u in stored.values() if u.parent_id is None), None)
    parsed: dict[str, _Row] = {}
    first: dict[str, int] = {}
    for number, cells in rows:
        code = cell_text(cell(cells, columns["code"]))
        if code and code in first:
            issues.add("org.duplicate", {"code": code, "first": first[code]}, row=number,
                       col=columns["code"], header="code")
            continue
        if code:
            first[code] = number
        row = _parse_org_row(number, cells, columns, stored, depths, key_of, root_code, people,
                             issues)
        if row is not None:
            parsed[row.code] = row
    _check_tree(parsed, stored, code_of, key_of, principal, columns, issues)
    issues.raise_if_any()

    with unit_of_work(session):
        result = _apply_org(session, parsed, stored, code_of)
        created, updated, moved, paths = result
        audit.record(session, actor, "import_people" if people else "import_org_units",
                     "org_unit", None, after={
                         "file": filename[:200], "sha256": digest, "rows": len(rows),
                         "created": created[:AUDIT_LIST_MAX], "created_count": len(created),
                         "updated_count": updated, "moved": moved[:AUDIT_LIST_MAX],
                         "moved_count": len(moved), "paths_changed": paths},
                     remote_addr=remote_addr)
    # Bulk updates bypass the identity map; objects loaded earlier would be stale.
    session.expire_all()
    return OrgImportResult(len(rows), len(created), updated, len(moved), paths, digest)


def _apply_org(session: Session, parsed: Mapping[str, _Row], stored: Mapping[str, _Stored],
               code_of: dict[int, str]) -> tuple[list[str], int, list[dict[str, Any]], int]:
    """Write the validated rows; returns (created codes, updated count, moves, paths changed)."""
    new_units = {code: OrgUnit(code=code, depth=row.depth, path="", parent_id=None,
                               name_en=row.values.get("name_en") or "",
                               name_zh=row.values.get("name_zh") or "",
                               city_en=row.values.get("city_en"),
                               city_zh=row.values.get("city_zh"),
                               opened=row.values.get("opened"))
                 for code, row in parsed.items() if code not in stored}
    session.add_all(new_units.values())
    session.flush()  # ids for the paths
    id_of = {code: u.id for code, u in stored.items()} | {c: u.id for c, u in new_units.items()}
    for code, unit in new_units.items():
        code_of[unit.id] = code

    parent_of: dict[str, str | None] = {
        code: (code_of[u.parent_id] if u.parent_id is not None else None)
        for code, u in stored.items()}
    parent_of.update({code: row.parent for code, row in parsed.items()})
    paths: dict[str, str] = {}

    def path_of(code: str) -> str:
        # Depth is bounded by the levels (each child is one level below its parent).
        if code not in paths:
            parent = parent_of[code]
            paths[code] = f"{path_of(parent) if parent else '/'}{id_of[code]}/"
        return paths[code]

    changes: dict[str, dict[str, Any]] = {}
    moved: list[dict[str, Any]] = []
    updated = 0
    for code in parent_of:
        new_path = path_of(code)
        old = stored.get(code)
        if old is None:
            parent = parent_of[code]
            changes[code] = {"id": id_of[code], "path": new_path,
                             "parent_id": id_of[parent] if parent else None}
            continue
        change: dict[str, Any] = {}
        if new_path != old.path:
            change["path"] = new_path
        parent = parent_of[code]
        parent_id = id_of[parent] if parent else None
        if parent_id != old.parent_id:
            change["parent_id"] = parent_id
            moved.append({"code": code, "from": code_of.get(old.parent_id) if old.parent_id
                          else None, "to": parent})
        row = parsed.get(code)
        if row is not None:
            fields = {k: v for k, v in row.values.items() if getattr(old, k) != v}
            if fields:
                updated += 1
            change.update(fields)
        if change:
            changes[code] = {"id": old.id, **change}
    path_changes = sum(1 for code, c in changes.items() if "path" in c and code in stored)
    org_queries.update_units(session, list(changes.values()))
    return sorted(new_units), updated, moved, path_changes


# ---------------------------------------------------------------------------- history


def import_history(session: Session, actor: User, principal: Principal, data: bytes,
                   filename: str, *, max_bytes: int | None = None, max_rows: int = MAX_ROWS,
                   remote_addr: str | None = None) -> HistoryImportResult:
    """Upsert past results (``unit_code, period, sales``) of units in the write scope."""
    digest = sha256_hex(data)
    table = read_table(data, filename, max_bytes=max_bytes, max_rows=max_rows)
    issues = IssueLog()
    columns = _read_header(table.rows, HISTORY_COLUMNS, HISTORY_COLUMNS, issues)
    rows = [(n, c) for n, c in table.rows[1:] if not is_comment(c)]
    if len(rows) > max_rows:
        raise refuse("file.too_many_rows", max=max_rows)

    codes = sorted({cell_text(cell(c, columns["unit_code"])) for _n, c in rows} - {""})
    units = queries.units_by_code(session, codes)
    periods = org_queries.period_ids_by_code(session)
    values: dict[tuple[int, int], float] = {}
    first: dict[tuple[str, str], int] = {}
    for number, cells in rows:
        def add(what: str, name: str, n: int = number, **params: Any) -> None:
            issues.add(what, params, row=n, col=columns[name], header=name)

        code = cell_text(cell(cells, columns["unit_code"]))
        period = cell_text(cell(cells, columns["period"]))
        unit = units.get(code)
        if not code:
            add("org.required", "unit_code", column="unit_code")
        elif unit is None or not principal.can("unit.read", unit[1]):
            add("unit.unknown", "unit_code", code=code)
            unit = None
        elif not principal.can("unit.write", unit[1]):
            add("unit.read_only", "unit_code", code=code)
            unit = None
        if not period:
            add("org.required", "period", column="period")
        elif period not in periods:
            add("period.unknown", "period", period=period)
        try:
            sales = coerce_cell("number", cell(cells, columns["sales"]))
        except CellError as exc:
            issues.add(exc.code, exc.params, row=number, col=columns["sales"], header="sales")
            continue
        if sales is None:
            add("org.required", "sales", column="sales")
            continue
        if code and period:
            if (code, period) in first:
                add("history.duplicate", "unit_code", code=code, period=period,
                    first=first[(code, period)])
                continue
            first[(code, period)] = number
        if unit is not None and period in periods:
            values[(unit[0], periods[period])] = float(sales)
    issues.raise_if_any()

    stored = org_queries.stored_results(session, HISTORY_METRIC,
                                        sorted({uid for uid, _pid in values}))
    inserts = [{"unit_id": u, "period_id": p, "metric": HISTORY_METRIC, "value": v}
               for (u, p), v in values.items() if (u, p) not in stored]
    updates = [{"unit_id": u, "period_id": p, "metric": HISTORY_METRIC, "value": v}
               for (u, p), v in values.items() if (u, p) in stored and stored[(u, p)] != v]
    with unit_of_work(session):
        org_queries.write_results(session, inserts, updates)
        audit.record(session, actor, "import_history", "unit_results", None, after={
            "file": filename[:200], "sha256": digest, "rows": len(rows),
            "inserted": len(inserts), "updated": len(updates)}, remote_addr=remote_addr)
    return HistoryImportResult(len(rows), len(inserts), len(updates), digest)
