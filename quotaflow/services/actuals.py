"""Actuals: results of sales people by date, from uploads, the API and the demo seed.

A record is (person, date, value, source, source_id). (person, date, source,
source_id) identifies it, so ingesting is idempotent: a replay changes nothing and is
counted as ``unchanged``; the same key with another value is an explicit update, listed
(before and after) in the audit entry of the import. Batches are all or nothing: every
record is checked first (the unit exists, is a person, is in the sender's write scope;
the date is a date inside a known period; the value a finite number; no key twice) and
nothing is written if any is wrong. Files report problems by row and column like the
other spreadsheet imports (:class:`quotaflow.services.spreadsheets.SheetIssue`); the
API reports them by JSON pointer (``/3/date``).

Actuals are stored by date, never by week: :func:`weekly_columns` buckets them into a
period's weeks (ISO weeks clipped to the period) when read, and :func:`rollup` sums
persons up the tree with numpy (one vectorised step per level); roll-ups are not stored.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError
from quotaflow.forms.inputs import CellError, coerce_cell
from quotaflow.messages import _l
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
from quotaflow.store import queries, tracking_queries
from quotaflow.store.models import Period, User, utcnow

METRIC = "sales"
#: Source of records sent without one: uploads, the API.
UPLOAD_SOURCE = "upload"
API_SOURCE = "api"
SEED_SOURCE = "seed"
SOURCE_MAX = 64
SOURCE_ID_MAX = 128
#: Records per API request; bigger batches go through the file upload.
API_MAX_RECORDS = 50_000
#: Changed records listed by key in the audit entry.
AUDIT_CHANGES_MAX = 200

COLUMNS = ("unit_code", "date", "value", "source", "source_id")
REQUIRED = ("unit_code", "date", "value")
#: Header aliases accepted on upload (machine names, seed_data/actuals.csv's, Chinese).
ALIASES: Mapping[str, str] = {
    "unit_code": "unit_code", "unit": "unit_code", "code": "unit_code", "person": "unit_code",
    "单位代码": "unit_code", "人员编码": "unit_code", "编码": "unit_code",
    "date": "date", "日期": "date",
    "value": "value", "sales": "value", "amount": "value", "业绩": "value", "销售额": "value",
    "金额": "value",
    "source": "source", "来源": "source",
    "source_id": "source_id", "来源编号": "source_id",
    # seed_data/actuals.csv carries its own week number; weeks come from dates, so it is ignored.
    "week": "week", "周": "week",
}
EXAMPLE = ("#P0001", "2026-10-07", 43448, UPLOAD_SOURCE, "")


@dataclass(frozen=True)
class Record:
    """One actual as sent: ``where`` is the row number (files) or list index (API)."""

    where: int
    unit_code: str
    date: dt.date
    value: float
    source: str
    source_id: str


@dataclass(frozen=True)
class IngestResult:
    records: int
    inserted: int
    updated: int
    unchanged: int
    sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged}


@dataclass(frozen=True)
class ApiIssue:
    pointer: str
    code: str
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "code": self.code, "message": self.message,
                "params": dict(self.params)}


class ActualsError(QuotaFlowError):
    """An API batch refused as a whole; ``issues`` say what and where (JSON pointers)."""

    domain = "actuals"
    CODES = messages.register(domain, {
        "invalid_actuals": _l("The batch was refused, nothing was saved: %(count)s problem(s), "
                              "the first at %(at)s: %(first)s"),
    })

    def __init__(self, issues: Sequence[ApiIssue]) -> None:
        self.issues = tuple(issues)
        first = self.issues[0] if self.issues else None
        super().__init__("invalid_actuals", "", count=len(self.issues),
                         at=first.pointer if first else "/", first=first.message if first else "")

    def details(self) -> dict[str, Any]:
        return {"issues": [i.as_dict() for i in self.issues]}


#: The record checks' words (the API's issue messages; the upload page words its own).
RECORD_DOMAIN = "actuals_record"
RECORD_CODES = messages.register(RECORD_DOMAIN, {
    "actuals.required": _l("%(column)s needs a value."),
    "actuals.bad_date": _l("“%(value)s” is not a date such as 2026-10-07."),
    "actuals.no_period": _l("%(date)s lies in no period."),
    "actuals.not_person": _l("%(code)s is a %(level)s; actuals are recorded for persons."),
    "actuals.duplicate": _l("%(code)s on %(date)s from %(source)s %(source_id)s appears twice "
                            "(first at %(first)s)."),
    "actuals.too_long": _l("%(column)s holds at most %(max)s characters."),
    "actuals.unknown_field": _l("Unknown field “%(name)s”."),
    "unit.unknown": _l("There is no unit %(code)s in your scope."),
    "unit.read_only": _l("You may not record actuals of %(code)s."),
    "cell.not_a_number": _l("“%(value)s” is not a number."),
    "cell.not_finite": _l("Enter a finite number."),
    "cell.bad_type": _l("“%(value)s” is not a number."),
    "actuals.not_list": _l("The body is a JSON list of actuals."),
    "actuals.too_many": _l("At most %(max)s records per request."),
    "actuals.not_object": _l("Each record is an object with unit, date and value."),
    "actuals.concurrent": _l("Another import stored some of these records at the same time; "
                             "nothing was saved: send the batch again (records already stored "
                             "count as unchanged)."),
})


def message(code: str, params: Mapping[str, Any], locale: str = "en") -> str:
    """A record check's words (English for the API's issues)."""
    return messages.text(f"{RECORD_DOMAIN}.{code}", code, params, locale)


# ---------------------------------------------------------------------------- parsing


def parse_date(raw: Any) -> dt.date | None:
    """A date from a cell or JSON: a date/datetime, or text 2026-10-07 / 2026/10/07."""
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if not isinstance(raw, str):
        return None
    text = raw.strip().replace("/", "-").replace(".", "-")
    if "T" in text:
        text = text.split("T", 1)[0]
    elif " " in text:
        text = text.split(" ", 1)[0]
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        parts = text.split("-")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            try:
                return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
            except ValueError:
                return None
        return None


Problem = tuple[int, str, str, dict[str, Any]]  # (where, column, code, params)


def _field(where: int, column: str, raw: Any, problems: list[Problem]) -> Any:
    """Check one field of a record; append a problem and return None when it is bad."""
    if column == "unit_code":
        text = cell_text(raw)
        if not text:
            problems.append((where, column, "actuals.required", {"column": column}))
            return None
        return text
    if column == "date":
        if raw is None or cell_text(raw) == "":
            problems.append((where, column, "actuals.required", {"column": column}))
            return None
        date = parse_date(raw)
        if date is None:
            problems.append((where, column, "actuals.bad_date", {"value": cell_text(raw)}))
        return date
    if column == "value":
        try:
            value = coerce_cell("number", raw)
        except CellError as exc:
            problems.append((where, column, exc.code, dict(exc.params)))
            return None
        if value is None:
            problems.append((where, column, "actuals.required", {"column": column}))
        return value
    text = cell_text(raw)
    limit = SOURCE_MAX if column == "source" else SOURCE_ID_MAX
    if len(text) > limit:
        problems.append((where, column, "actuals.too_long", {"column": column, "max": limit}))
        return None
    return text


def _records(raw_rows: Iterable[tuple[int, Mapping[str, Any]]], default_source: str,
             problems: list[Problem]) -> list[Record]:
    out = []
    for where, raw in raw_rows:
        before = len(problems)
        values = {c: _field(where, c, raw.get(c), problems) for c in COLUMNS}
        if len(problems) > before:
            continue
        out.append(Record(where, values["unit_code"], values["date"], float(values["value"]),
                          values["source"] or default_source, values["source_id"] or ""))
    return out


# ---------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _Unit:
    id: int
    path: str
    depth: int
    level: str


def _units(session: Session, codes: Sequence[str]) -> dict[str, _Unit]:
    return {code: _Unit(uid, path, depth, level)
            for uid, code, path, depth, level in tracking_queries.units_with_level(session, codes)}


def person_depth(session: Session) -> int:
    """The depth of the person level: the deepest level of the tree."""
    return queries.leaf_depth(session)


def _check(session: Session, principal: Principal | None, records: Sequence[Record],
           problems: list[Problem], label: Any) -> dict[tuple[int, dt.date, str, str], float]:
    """Database checks; the valid records by key (unit id, date, source, source id)."""
    units = _units(session, sorted({r.unit_code for r in records}))
    leaf = person_depth(session)

    def may(permission: str, path: str) -> bool:  # no principal: the system, everywhere
        return principal is None or principal.can(permission, path)

    spans = tracking_queries.period_spans(session)
    keyed: dict[tuple[int, dt.date, str, str], float] = {}
    first: dict[tuple[int, dt.date, str, str], int] = {}
    for r in records:
        unit = units.get(r.unit_code)
        ok = True
        if unit is None or not may("unit.read", unit.path):
            problems.append((r.where, "unit_code", "unit.unknown", {"code": r.unit_code}))
            ok = False
        elif not may("unit.write", unit.path):
            problems.append((r.where, "unit_code", "unit.read_only", {"code": r.unit_code}))
            ok = False
        elif unit.depth != leaf:
            problems.append((r.where, "unit_code", "actuals.not_person",
                             {"code": r.unit_code, "level": unit.level}))
            ok = False
        if not any(a <= r.date <= b for a, b in spans):
            problems.append((r.where, "date", "actuals.no_period", {"date": r.date.isoformat()}))
            ok = False
        if not ok or unit is None:
            continue
        key = (unit.id, r.date, r.source, r.source_id)
        if key in first:
            problems.append((r.where, "unit_code", "actuals.duplicate", {
                "code": r.unit_code, "date": r.date.isoformat(), "source": r.source,
                "source_id": r.source_id, "first": label(first[key])}))
            continue
        first[key] = r.where
        keyed[key] = r.value
    return keyed


# ---------------------------------------------------------------------------- writing


def _write(session: Session, keyed: Mapping[tuple[int, dt.date, str, str], float],
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Insert new keys, update changed values; returns (inserts, changes, unchanged)."""
    stored: dict[tuple[int, dt.date, str, str], tuple[int, float]] = {}
    if keyed:
        dates = [k[1] for k in keyed]
        stored = tracking_queries.stored_actuals(
            session, sorted({k[0] for k in keyed}), sorted({k[2] for k in keyed}),
            min(dates), max(dates))
    now = utcnow()
    inserts = [{"unit_id": k[0], "date": k[1], "metric": METRIC, "value": v, "source": k[2],
                "source_id": k[3], "created_at": now, "updated_at": now}
               for k, v in keyed.items() if k not in stored]
    changes = [{"id": stored[k][0], "key": k, "before": stored[k][1], "value": v}
               for k, v in keyed.items() if k in stored and stored[k][1] != v]
    unchanged = len(keyed) - len(inserts) - len(changes)
    tracking_queries.insert_actuals(session, inserts)
    tracking_queries.update_actual_values(
        session, [{"id": c["id"], "value": c["value"], "updated_at": now} for c in changes])
    return inserts, changes, unchanged


def _audit(session: Session, actor: User | None, what: Mapping[str, Any],
           inserts: Sequence[Any], changes: Sequence[Mapping[str, Any]], unchanged: int,
           remote_addr: str | None) -> None:
    if not inserts and not changes:
        return  # a pure replay changes nothing, so there is nothing to audit
    codes = queries.unit_codes(session, sorted({c["key"][0] for c in changes[:AUDIT_CHANGES_MAX]}))
    listed = [{"unit": codes.get(c["key"][0]), "date": c["key"][1].isoformat(),
               "source": c["key"][2], "source_id": c["key"][3], "before": c["before"],
               "after": c["value"]} for c in changes[:AUDIT_CHANGES_MAX]]
    audit.record(session, actor, "ingest_actuals", "actuals", None,
                 before={"changed": listed} if listed else None,
                 after={**what, "inserted": len(inserts), "updated": len(changes),
                        "unchanged": unchanged}, remote_addr=remote_addr)


class _Concurrent(Exception):
    """Another import inserted one of the batch's keys between our check and write."""


def _store(session: Session, actor: User | None, what: Mapping[str, Any],
           keyed: Mapping[tuple[int, dt.date, str, str], float],
           remote_addr: str | None) -> tuple[int, int, int]:
    """Write, audit and commit the checked batch, all or nothing: (inserted, updated,
    unchanged). Raises :class:`_Concurrent` (after rolling back) when another import
    inserted one of its keys first (the unique key refuses the second insert)."""
    try:
        with unit_of_work(session):
            inserts, changes, unchanged = _write(session, keyed)
            _audit(session, actor, what, inserts, changes, unchanged, remote_addr)
    except IntegrityError:
        raise _Concurrent from None
    return len(inserts), len(changes), unchanged


# ---------------------------------------------------------------------------- files


def template(fmt: str, sheet: str = "Actuals", readme_sheet: str = "README",
             readme: Sequence[str] = ()) -> tuple[bytes, str, str]:
    """The empty upload template (content, file name, MIME type) as xlsx or csv."""
    if fmt == "csv":
        return csv_bytes([COLUMNS, EXAMPLE]), "actuals-template.csv", CSV_MIME
    if fmt != "xlsx":
        raise ValueError(f"unknown template format {fmt!r}")
    lines = readme or (
        "One row per person, date and source record; keep the header row.",
        "source and source_id are optional: sending the same record again changes nothing.",
        "Rows whose first cell starts with # are ignored: the example row is one.",
    )
    return (template_workbook(sheet, COLUMNS, EXAMPLE, readme_sheet, lines),
            "actuals-template.xlsx", XLSX_MIME)


def import_file(session: Session, actor: User | None, principal: Principal | None, data: bytes,
                filename: str, *, max_bytes: int | None = None, max_rows: int = MAX_ROWS,
                remote_addr: str | None = None) -> IngestResult:
    """Ingest an uploaded .csv/.xlsx of actuals, all or nothing, and commit.

    Raises :class:`quotaflow.services.spreadsheets.SheetImportError` listing every
    problem by row and column; nothing is written then.
    """
    digest = sha256_hex(data)
    table = read_table(data, filename, max_bytes=max_bytes, max_rows=max_rows)
    issues = IssueLog()
    header_row, header = table.rows[0]
    columns = map_header(header, header_row, ALIASES, issues)
    headerless_values(table.rows[1:], header, issues)
    for name in REQUIRED:
        if name not in columns:
            issues.add("column.missing", {"name": name}, row=header_row)
    issues.raise_if_any()
    rows = [(n, c) for n, c in table.rows[1:] if not is_comment(c)]
    if len(rows) > max_rows:
        raise refuse("file.too_many_rows", max=max_rows)
    problems: list[Problem] = []
    records = _records(((n, {k: cell(c, columns.get(k)) for k in COLUMNS}) for n, c in rows),
                       UPLOAD_SOURCE, problems)
    keyed = _check(session, principal, records, problems, lambda n: n)
    for where, column, code, params in problems:
        col = columns.get(column)
        issues.add(code, params, row=where, col=col,
                   header=cell_text(header[col - 1]) if col and col <= len(header) else column)
    issues.raise_if_any()
    try:
        inserted, updated, unchanged = _store(
            session, actor, {"file": filename[:200], "sha256": digest, "records": len(keyed)},
            keyed, remote_addr)
    except _Concurrent:
        raise refuse("actuals.concurrent") from None
    return IngestResult(len(keyed), inserted, updated, unchanged, digest)


# ---------------------------------------------------------------------------- API


API_FIELDS = {"unit": "unit_code", "unit_code": "unit_code", "date": "date", "value": "value",
              "source": "source", "source_id": "source_id"}


def ingest_records(session: Session, actor: User | None, principal: Principal | None,
                   payload: Any, *, default_source: str = API_SOURCE,
                   remote_addr: str | None = None) -> IngestResult:
    """Ingest a JSON list of {unit, date, value, source, source_id}, all or nothing; commit.

    Raises :class:`ActualsError` (JSON pointers such as ``/3/date``); nothing is written.
    """
    if not isinstance(payload, list):
        raise ActualsError([ApiIssue("", "actuals.not_list", message("actuals.not_list", {}))])
    if len(payload) > API_MAX_RECORDS:
        params = {"max": API_MAX_RECORDS}
        raise ActualsError([ApiIssue("", "actuals.too_many", message("actuals.too_many", params),
                                     params)])
    problems: list[Problem] = []
    raw_rows: list[tuple[int, Mapping[str, Any]]] = []
    for i, item in enumerate(payload):
        if not isinstance(item, Mapping):
            problems.append((i, "", "actuals.not_object", {}))
            continue
        unknown = [k for k in item if k not in API_FIELDS]
        for k in unknown:
            problems.append((i, str(k), "actuals.unknown_field", {"name": str(k)}))
        row: dict[str, Any] = {API_FIELDS[k]: v for k, v in item.items() if k in API_FIELDS}
        value = row.get("value")
        if isinstance(value, str | bool):
            problems.append((i, "value", "cell.bad_type", {"value": str(value)}))
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append((i, "value", "cell.not_finite", {}))
            continue
        for k in ("source", "source_id"):
            if row.get(k) is not None and not isinstance(row[k], str | int):
                problems.append((i, k, "cell.bad_type", {"value": str(row[k])}))
        raw_rows.append((i, row))
    records = _records(raw_rows, default_source, problems)
    keyed = _check(session, principal, records, problems, lambda i: f"/{i}")
    if problems:
        pointer_of = {"unit_code": "unit"}
        raise ActualsError([ApiIssue(
            f"/{where}" + (f"/{pointer_of.get(column, column)}" if column else ""), code,
            message(code, params), params)
            for where, column, code, params in sorted(problems, key=lambda p: p[0])])
    try:
        inserted, updated, unchanged = _store(session, actor, {"api": True, "records": len(keyed)},
                                              keyed, remote_addr)
    except _Concurrent:
        raise ActualsError([ApiIssue("", "actuals.concurrent",
                                     message("actuals.concurrent", {}))]) from None
    return IngestResult(len(keyed), inserted, updated, unchanged)


# ---------------------------------------------------------------------------- seed


def seed_rows(session: Session, unit_ids: Mapping[str, int], actuals_csv: Path,
              weekly_history_csv: Path | None = None,
              periods: Mapping[str, Period] | None = None) -> int:
    """Bulk-insert the demo's actuals (no checks, no commit): ``seed_data/actuals.csv`` by
    date (source "upload", as if uploaded), and optionally ``seed_data/weekly_history.csv`` of
    past quarters (source "seed"), each week dated on the last day of its 7-day block
    (week 13 on the quarter's last day)."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    with actuals_csv.open(newline="", encoding="utf-8") as handle:
        for r in csv.DictReader(handle):
            # As if uploaded: uploading seed_data/actuals.csv again is a replay.
            rows.append({"unit_id": unit_ids[r["unit_code"]],
                         "date": dt.date.fromisoformat(r["date"]), "metric": METRIC,
                         "value": float(r["sales"]), "source": UPLOAD_SOURCE, "source_id": "",
                         "created_at": now, "updated_at": now})
    if weekly_history_csv is not None and periods:
        with weekly_history_csv.open(newline="", encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                period = periods[r["period"]]
                week = int(r["week"])
                date = min(period.start_date + dt.timedelta(days=7 * week - 1), period.end_date)
                if week == 13:
                    date = period.end_date
                rows.append({"unit_id": unit_ids[r["unit_code"]], "date": date,
                             "metric": METRIC, "value": float(r["sales"]),
                             "source": SEED_SOURCE, "source_id": "", "created_at": now,
                             "updated_at": now})
    tracking_queries.insert_actuals(session, rows)
    return len(rows)


# ---------------------------------------------------------------------------- reading


def actual_rows(session: Session, start: dt.date, end: dt.date
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every actual dated within [start, end]: (unit ids, date ordinals, values)."""
    return tracking_queries.actual_rows(session, METRIC, start, end)


def week_index(days: np.ndarray, week_starts: Sequence[dt.date]) -> np.ndarray:
    """0-based week of each date ordinal, given the weeks' first days in order."""
    starts = np.array([d.toordinal() for d in week_starts], dtype=np.int64)
    return np.searchsorted(starts, days, side="right") - 1


def weekly_columns(session: Session, period: Period, unit_ids: np.ndarray) -> np.ndarray:
    """Each unit's own actuals per week of ``period``: units x weeks (week 1 first).

    Rows follow ``unit_ids``; actuals of units not listed are left out.
    """
    weeks = period.weeks
    out = np.zeros((len(unit_ids), len(weeks)))
    if not weeks:
        return out
    units, days, values = actual_rows(session, period.start_date, period.end_date)
    if not len(unit_ids) or not len(units):
        return out
    order = np.argsort(unit_ids, kind="stable")
    sorted_ids = unit_ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, units), len(unit_ids) - 1)
    known = sorted_ids[pos] == units
    rows = order[pos[known]]
    cols = week_index(days[known], [w.start_date for w in weeks])
    np.add.at(out, (rows, cols), values[known])
    return out


def rollup(parent_row: np.ndarray, depth: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum every unit's own values into all its ancestors: one numpy step per level.

    ``parent_row`` is each row's parent row (-1 for a root); ``values`` is units (x ...).
    Returns the subtree totals (a new array).
    """
    total = np.array(values, dtype=np.float64, copy=True)
    for d in range(int(depth.max(initial=0)), 0, -1):
        rows = np.flatnonzero((depth == d) & (parent_row >= 0))
        np.add.at(total, parent_row[rows], total[rows])
    return total
