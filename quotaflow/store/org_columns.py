"""The one loader of the org tree as numpy columns, and of a period's input columns.

Every use case that runs on the whole organisation (plans, what-if, tracking, alert
scans, the spreadsheet round trip) reads the units and their inputs here, through the
raw driver cursor: one SQL statement for the units, one per input column, rows turned
into columns in C (``np.fromiter``), never ORM objects; psycopg sends numbers in binary.
A whole-organisation column comes as values only (its alignment with the units proved
by its row count), half the Python objects of (id, value) pairs.

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


def driver_cursor(session: Session, *, binary: bool = False) -> tuple[Any, str]:
    """The session connection's raw DBAPI cursor and its parameter marker.

    ``binary`` asks psycopg for binary results (numbers arrive without text parsing);
    SQLite has no such choice.
    """
    connection = session.connection().connection.driver_connection
    if session.bind.dialect.name == "postgresql":
        return connection.cursor(binary=binary), "%s"
    return connection.cursor(), "?"


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


def _unit_rows(session: Session, text_columns: tuple[str, ...]
               ) -> tuple[np.ndarray, list[np.ndarray]]:
    """(id, parent id or -1, depth) as an n x 3 int64 matrix and each text column as a
    str array, for every active unit in id order (the rows become one object matrix in
    C, then typed columns)."""
    cursor, marker = driver_cursor(session, binary=True)
    try:
        cursor.execute(f"SELECT id, COALESCE(parent_id, -1), depth, {', '.join(text_columns)} "
                       f"FROM org_units WHERE active = {marker} ORDER BY id", (True,))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    n, width = len(rows), 3 + len(text_columns)
    table = np.fromiter(chain.from_iterable(rows), dtype=object, count=width * n)
    table = table.reshape(n, width)
    return table[:, :3].astype(np.int64), [table[:, k].astype(str) for k in range(3, width)]


def org_columns(session: Session, *, paths: bool = False) -> OrgColumns:
    """Every active unit (id, parent, depth, level, code, names; paths if asked) in one
    query, as numpy columns in id order."""
    text_columns = ("code", "name_en", "name_zh", *(("path",) if paths else ()))
    numbers, texts = _unit_rows(session, text_columns)
    n = len(numbers)
    ids, parent_ids, depth = numbers[:, 0].copy(), numbers[:, 1].copy(), numbers[:, 2].copy()
    keys = level_keys(session)
    top = int(depth.max()) + 1 if n else 0
    by_depth = np.array([keys.get(d, f"level{d}") for d in range(top)] or [""], dtype=str)
    return OrgColumns(
        ids=ids, parent_ids=parent_ids, parent_row=parent_rows(ids, parent_ids), depth=depth,
        level=by_depth[depth], codes=texts[0], name_en=texts[1], name_zh=texts[2],
        paths=texts[3] if paths else np.zeros(0, dtype=str))


def _pairs(session: Session, period_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(unit ids, values) of one stored input column, in unit id order."""
    cursor, marker = driver_cursor(session, binary=True)
    try:
        cursor.execute("SELECT unit_id, value FROM attribute_values "
                       f"WHERE period_id = {marker} AND name = {marker} ORDER BY unit_id",
                       (period_id, name))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=2 * len(rows))
    return flat[0::2].astype(np.int64), flat[1::2].copy()


def inactive_units(session: Session) -> int:
    """How many org units are inactive (none in most organisations)."""
    cursor, marker = driver_cursor(session)
    try:
        cursor.execute(f"SELECT count(*) FROM org_units WHERE active = {marker}", (False,))
        return int(cursor.fetchone()[0])
    finally:
        cursor.close()


def _active_values(session: Session, period_id: int, name: str, n: int,
                   any_inactive: bool) -> np.ndarray | None:
    """The column for every active unit in id order, fetching values only (half the
    Python objects of (id, value) pairs), or None unless every active unit has one.

    The rows are distinct units (the primary key) that exist (the foreign key). Without
    inactive units, as many rows as active units means one per unit, in id order; with
    some, the rows are first narrowed to active units by a join.
    """
    # SQLite reads CROSS JOIN as "this table order": the primary-key range of the column
    # outside, one unit lookup per value inside (PostgreSQL's planner finds that itself).
    join = "CROSS JOIN" if session.bind.dialect.name == "sqlite" else "JOIN"
    cursor, marker = driver_cursor(session, binary=True)
    try:
        if any_inactive:
            cursor.execute(
                f"SELECT a.value FROM attribute_values a {join} org_units u ON u.id = a.unit_id "
                f"WHERE a.period_id = {marker} AND a.name = {marker} AND u.active = {marker} "
                "ORDER BY a.unit_id", (period_id, name, True))
        else:
            cursor.execute("SELECT value FROM attribute_values "
                           f"WHERE period_id = {marker} AND name = {marker} ORDER BY unit_id",
                           (period_id, name))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if len(rows) != n:
        return None
    return np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=n)


def input_column(session: Session, period_id: int, name: str, unit_ids: np.ndarray, *,
                 all_active: bool = False, any_inactive: bool | None = None) -> np.ndarray:
    """One input of the given units as float64, NaN where no value is stored.

    ``all_active`` says ``unit_ids`` are :func:`org_columns`' ids (every active unit, in
    id order, read in this transaction): a complete column then comes without its ids.
    ``any_inactive`` (:func:`inactive_units` > 0) is asked when not given.
    """
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    if all_active:
        if any_inactive is None:
            any_inactive = inactive_units(session) > 0
        values = _active_values(session, period_id, name, len(unit_ids), any_inactive)
        if values is not None:
            return values
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
                  unit_ids: np.ndarray, *, all_active: bool = False) -> dict[str, np.ndarray]:
    """Several inputs of the given units: name -> float64 column (NaN: none stored)."""
    any_inactive = inactive_units(session) > 0 if all_active else False
    return {name: input_column(session, period_id, name, unit_ids, all_active=all_active,
                               any_inactive=any_inactive) for name in names}
