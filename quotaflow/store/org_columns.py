"""The one loader of the org tree as numpy columns, and of a period's input columns.

Every use case that runs on the whole organisation (plans, what-if, tracking, alert
scans, the spreadsheet round trip) reads the units and their inputs here, through the
raw driver cursor: one SQL statement for the units, one per input column, rows turned
into columns in C (``np.fromiter``), never ORM objects. On PostgreSQL an input column
comes as one binary ``COPY`` parsed by numpy, so its cost does not grow with Python
objects.

What the values must be (type, range, required, integer, boolean) is decided by the
pure core (:meth:`quotaflow.rules.model.FieldSpec.check`), not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

#: COPY ... (FORMAT binary) of (unit_id int4, value float8), no NULLs: fixed-size tuples.
_PG_PAIR = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4"), ("value_len", ">i4"),
                     ("value", ">f8")])
_PG_HEADER = 19  # signature (11) + flags (4) + header extension length (4)


@dataclass(frozen=True, eq=False)
class OrgColumns:
    """The active org units as columns, ordered by id.

    ``parent_ids`` is -1 for a root; ``parent_row`` the parent's row here (-1 where the
    parent is absent or inactive); ``level`` the org level's key by depth (``level<d>``
    where the level table has none); ``paths`` is empty unless asked for.
    """

    ids: np.ndarray
    parent_ids: np.ndarray
    parent_row: np.ndarray
    depth: np.ndarray
    level: np.ndarray
    codes: np.ndarray
    name_en: np.ndarray
    name_zh: np.ndarray
    paths: np.ndarray

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def orphans(self) -> np.ndarray:
        """Mask of the units whose parent is missing or inactive."""
        return (self.parent_ids >= 0) & (self.parent_row < 0)


def driver_cursor(session: Session) -> tuple[Any, str]:
    """The session connection's raw DBAPI cursor and its parameter marker."""
    connection = session.connection().connection.driver_connection
    marker = "?" if session.bind.dialect.paramstyle == "qmark" else "%s"
    return connection.cursor(), marker


def parent_rows(ids: np.ndarray, parent_ids: np.ndarray) -> np.ndarray:
    """Row of each unit's parent among ``ids`` (-1 where the parent is absent)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], parent_ids)
    pos = np.minimum(pos, len(ids) - 1)
    found = (parent_ids >= 0) & (ids[order][pos] == parent_ids)
    return np.where(found, order[pos], -1)


def level_keys(session: Session) -> dict[int, str]:
    cursor, _ = driver_cursor(session)
    try:
        cursor.execute("SELECT depth, key FROM org_levels")
        return {int(d): str(k) for d, k in cursor.fetchall()}
    finally:
        cursor.close()


def org_columns(session: Session, *, paths: bool = False) -> OrgColumns:
    """Every active unit (id, parent, depth, level, code, names; paths if asked) in one
    query, as numpy columns in id order."""
    width = 7 if paths else 6
    cursor, marker = driver_cursor(session)
    try:
        cursor.execute(
            "SELECT id, COALESCE(parent_id, -1), depth, code, name_en, name_zh"
            f"{', path' if paths else ''} FROM org_units WHERE active = {marker} ORDER BY id",
            (True,))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    n = len(rows)
    numbers = np.fromiter(chain.from_iterable(r[:3] for r in rows), dtype=np.int64,
                          count=3 * n).reshape(n, 3)
    text = np.array([r[3:] for r in rows], dtype=str).reshape(n, width - 3)
    ids, parent_ids, depth = numbers[:, 0].copy(), numbers[:, 1].copy(), numbers[:, 2].copy()
    keys = level_keys(session)
    top = int(depth.max()) + 1 if n else 0
    by_depth = np.array([keys.get(d, f"level{d}") for d in range(top)] or [""], dtype=str)
    return OrgColumns(
        ids=ids, parent_ids=parent_ids, parent_row=parent_rows(ids, parent_ids), depth=depth,
        level=by_depth[depth], codes=text[:, 0], name_en=text[:, 1], name_zh=text[:, 2],
        paths=text[:, 3] if paths else np.zeros(0, dtype=str))


def _pairs(session: Session, period_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids, values) of one stored input column, in unit id order."""
    sql = ("SELECT unit_id, value FROM attribute_values WHERE period_id = {m} AND name = {m} "
           "ORDER BY unit_id")
    connection = session.connection().connection.driver_connection
    if session.bind.dialect.name == "postgresql":
        buffer = bytearray()
        with connection.cursor() as cursor:
            copy_sql = ("COPY (SELECT unit_id::int4, value::float8 FROM attribute_values "
                        "WHERE period_id = %s AND name = %s ORDER BY unit_id) "
                        "TO STDOUT (FORMAT binary)")
            with cursor.copy(copy_sql, (period_id, name)) as copy:
                for block in copy:
                    buffer += block
        body = memoryview(buffer)[_PG_HEADER:len(buffer) - 2]  # the trailer: int16 -1
        pairs = np.frombuffer(body, dtype=_PG_PAIR)
        return pairs["id"].astype(np.int64), pairs["value"].astype(np.float64)
    cursor, marker = driver_cursor(session)
    try:
        cursor.execute(sql.format(m=marker), (period_id, name))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=2 * len(rows))
    return flat[0::2].astype(np.int64), flat[1::2].copy()


def input_column(session: Session, period_id: int, name: str, unit_ids: np.ndarray
                 ) -> np.ndarray:
    """One input of the given units as float64, NaN where no value is stored."""
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    stored_ids, values = _pairs(session, period_id, name)
    if len(stored_ids) == len(unit_ids) and np.array_equal(stored_ids, unit_ids):
        return values  # every unit has a value, in the same order: nothing to place
    column = np.full(len(unit_ids), np.nan)
    if len(stored_ids) == 0 or len(unit_ids) == 0:
        return column
    order = np.argsort(unit_ids, kind="stable")
    sorted_ids = unit_ids[order]
    pos = np.clip(np.searchsorted(sorted_ids, stored_ids), 0, len(sorted_ids) - 1)
    hit = sorted_ids[pos] == stored_ids
    column[order[pos[hit]]] = values[hit]
    return column


def input_columns(session: Session, period_id: int, names: Sequence[str],
                  unit_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Several inputs of the given units: name -> float64 column (NaN: none stored)."""
    return {name: input_column(session, period_id, name, unit_ids) for name in names}
