"""The unit tree: ids, parent index and input fields as numpy columns.

The allocation engine never walks the tree unit by unit. A :class:`UnitTree` holds one
row per unit (company, regions, teams, persons...) as columns, plus per-depth index
arrays sorted by parent so every sibling group is a contiguous slice. It is built once
per data set and shared by every allocation and scenario run on it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.model import FactorModel

_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


class TreeError(ValueError):
    """Invalid unit data. ``row`` is the CSV line (header = line 1) when known."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None,
                 unit: str | None = None) -> None:
        self.message, self.row, self.column, self.unit = message, row, column, unit
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        if unit is not None and row is None:
            where.append(f"unit {unit!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, eq=False)
class UnitTree:
    """Units as columns. ``parent[i]`` is the row of i's parent, -1 for the root."""

    ids: np.ndarray
    parent: np.ndarray
    depth: np.ndarray
    level: np.ndarray
    levels: tuple[str, ...]
    fields: Mapping[str, np.ndarray]
    labels: Mapping[str, np.ndarray] = field(default_factory=dict)
    rows: np.ndarray | None = None  # source line per unit, for error messages
    named: bool = True  # False when level names were made up ("level<d>")

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def root(self) -> int:
        return int(np.flatnonzero(self.parent < 0)[0])

    @property
    def max_depth(self) -> int:
        return int(self.depth.max())

    @cached_property
    def index(self) -> dict[str, int]:
        """Unit id -> row (built on first use)."""
        return {u: i for i, u in enumerate(self.ids.tolist())}

    @cached_property
    def id_rank(self) -> np.ndarray:
        """Rank of each id in sorted order: the deterministic tie-break of rounding."""
        rank = np.empty(self.size, dtype=np.int64)
        rank[np.argsort(self.ids, kind="stable")] = np.arange(self.size)
        return rank

    @cached_property
    def by_depth(self) -> tuple[np.ndarray, ...]:
        """Per depth: unit rows sorted by (parent, id), so sibling groups are contiguous."""
        order = np.lexsort((self.id_rank, self.parent, self.depth))
        bounds = np.searchsorted(self.depth[order], np.arange(self.max_depth + 2))
        return tuple(order[bounds[d]:bounds[d + 1]] for d in range(self.max_depth + 1))

    @cached_property
    def sibling_groups(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per depth: (group number of each unit in ``by_depth[d]``, parent row per group)."""
        out = []
        for idx in self.by_depth:
            p = self.parent[idx]
            first = np.r_[True, p[1:] != p[:-1]] if len(p) else np.zeros(0, bool)
            out.append((np.cumsum(first) - 1, p[first]))
        return tuple(out)

    @cached_property
    def n_children(self) -> np.ndarray:
        return np.bincount(self.parent[self.parent >= 0], minlength=self.size)

    @cached_property
    def pos_in_level(self) -> np.ndarray:
        """Each unit's position in its level's ``by_depth`` array."""
        pos = np.empty(self.size, dtype=np.int64)
        for idx in self.by_depth:
            pos[idx] = np.arange(len(idx))
        return pos

    def has_children_at(self, d: int) -> np.ndarray:
        """Per unit of ``by_depth[d]``: does it have children?"""
        return self._has_children[d]

    @cached_property
    def _has_children(self) -> tuple[np.ndarray, ...]:
        return tuple(self.n_children[idx] > 0 for idx in self.by_depth)

    @cached_property
    def bin_parent(self) -> np.ndarray:
        """Parent row, with the root in a bin of its own (row n) for ``np.bincount``."""
        return np.where(self.parent >= 0, self.parent, self.size)

    @cached_property
    def nonroot(self) -> np.ndarray:
        """Rows of every unit but the root (factor measures are taken on these)."""
        return np.flatnonzero(self.parent >= 0)

    @cached_property
    def nonroot_fields(self) -> dict[str, np.ndarray]:
        return {k: v[self.nonroot] for k, v in self.fields.items()}

    def with_levels(self, levels: Sequence[str]) -> UnitTree:
        """This tree with level names by depth (for trees built without them).

        The derived index arrays are shared, and the result is cached per names.
        """
        names = tuple(levels[d] if d < len(levels) else f"level{d}"
                      for d in range(self.max_depth + 1))
        cache = self.__dict__.setdefault("_relabelled", {})
        if names not in cache:
            other = replace(self, level=np.asarray(names, dtype=str)[self.depth], levels=names,
                            named=True)
            for key in ("index", "id_rank", "by_depth", "sibling_groups", "n_children",
                        "_field_slices", "nonroot", "nonroot_fields", "bin_parent",
                        "pos_in_level", "_has_children"):
                if key in self.__dict__:
                    other.__dict__[key] = self.__dict__[key]
            cache[names] = other
        return cache[names]

    def prepare(self) -> UnitTree:
        """Build every derived index now (before sharing the tree between threads)."""
        _ = (self.by_depth, self.sibling_groups, self.id_rank, self.n_children,
             self._field_slices, self.nonroot_fields, self.bin_parent, self.pos_in_level,
             self._has_children)
        return self

    def row_of(self, i: int) -> int | None:
        return None if self.rows is None else int(self.rows[i])

    def at_depth(self, d: int) -> dict[str, np.ndarray]:
        """The input fields of the units at depth ``d`` (ordered as ``by_depth[d]``)."""
        return self._field_slices[d]

    @cached_property
    def _field_slices(self) -> tuple[dict[str, np.ndarray], ...]:
        return tuple({k: v[idx] for k, v in self.fields.items()} for idx in self.by_depth)

    def check_model(self, model: FactorModel) -> None:
        """Raise :class:`TreeError` if a field the model needs is missing or out of range."""
        for f in model.fields:
            col = self.fields.get(f.name)
            if col is None:
                if f.required:
                    raise TreeError(f"missing required field {f.name!r}", column=f.name)
                continue
            bad = f.out_of_range(col)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise TreeError(
                    f"value {col[i]!r} of {f.name!r} is outside "
                    f"[{f.min if f.min is not None else '-inf'}, "
                    f"{f.max if f.max is not None else 'inf'}]",
                    row=self.row_of(i), column=f.name, unit=str(self.ids[i]))


def build_tree(ids: Sequence[str] | np.ndarray, parent: Sequence[int] | np.ndarray,
               fields: Mapping[str, Any], *, level: Sequence[str] | np.ndarray | None = None,
               levels: Sequence[str] = (), labels: Mapping[str, Any] | None = None,
               rows: np.ndarray | None = None) -> UnitTree:
    """Validate and build a tree from columns (``parent``: row index, -1 for the root).

    ``level`` names each unit's level; when omitted, ``levels[depth]`` (or ``level<d>``).
    Units at one depth must share one level, so each sibling group has one policy.
    """
    ids = np.asarray(ids, dtype=str)
    parent = np.asarray(parent, dtype=np.int64)
    n = len(ids)

    def err(msg: str, i: int, column: str | None = None) -> TreeError:
        return TreeError(msg, row=None if rows is None else int(rows[i]), column=column,
                         unit=str(ids[i]))

    if parent.shape != (n,):
        raise TreeError("parent column has the wrong length")
    if n == 0:
        raise TreeError("no units")
    uniq, first = np.unique(ids, return_index=True)
    if len(uniq) != n:
        dup = np.ones(n, bool)
        dup[first] = False
        raise err(f"duplicate unit id {ids[np.flatnonzero(dup)[0]]!r}", int(np.flatnonzero(dup)[0]),
                  "id")
    bad = (parent < -1) | (parent >= n)
    if bad.any():
        raise err("parent index out of range", int(np.flatnonzero(bad)[0]), "parent")
    roots = np.flatnonzero(parent < 0)
    if len(roots) != 1:
        if len(roots) == 0:
            raise TreeError("no root unit (every unit has a parent: a cycle)", column="parent")
        raise err(f"more than one root: {', '.join(map(str, ids[roots[:5]]))}", int(roots[1]),
                  "parent")
    # Depth by walking all units up one step per iteration (a loop over levels, not
    # units); a unit still walking after n steps sits on a cycle.
    depth = np.zeros(n, dtype=np.int64)
    cur = parent.copy()
    for _ in range(n + 1):
        live = cur >= 0
        if not live.any():
            break
        depth += live
        cur[live] = parent[cur[live]]
    else:
        raise err("cycle in the parent links", int(np.flatnonzero(cur >= 0)[0]), "parent")
    maxd = int(depth.max())
    named = level is not None or len(levels) > maxd
    if level is None:
        names = tuple(levels[d] if d < len(levels) else f"level{d}" for d in range(maxd + 1))
        level_arr = np.asarray(names, dtype=str)[depth]
    else:
        level_arr = np.asarray(level, dtype=str)
        names_list = []
        for d in range(maxd + 1):
            at = np.flatnonzero(depth == d)
            here = level_arr[at]
            odd = np.flatnonzero(here != here[0])
            if len(odd):
                raise err(f"level {here[odd[0]]!r} differs from {here[0]!r} used by other units "
                          f"at depth {d}", int(at[odd[0]]), "level")
            names_list.append(str(here[0]))
        names = tuple(names_list)
    cols = {}
    for k, v in fields.items():
        arr = np.asarray(v, dtype=float)
        if arr.shape != (n,):
            raise TreeError(f"field {k!r} has the wrong length", column=k)
        cols[k] = arr
    return UnitTree(ids=ids, parent=parent, depth=depth, level=level_arr, levels=names,
                    fields=cols, labels={k: np.asarray(v, dtype=str)
                                         for k, v in (labels or {}).items()}, rows=rows,
                    named=named)


def tree_from_parent_ids(ids: Sequence[str], parent_ids: Sequence[str | None],
                         fields: Mapping[str, Any], **kw: Any) -> UnitTree:
    """Build a tree whose parent column holds ids ('' or None for the root)."""
    ids_arr = np.asarray(ids, dtype=str)
    index = {u: i for i, u in enumerate(ids_arr.tolist())}
    rows = kw.get("rows")
    parent = np.empty(len(ids_arr), dtype=np.int64)
    for i, p in enumerate(parent_ids):
        if p is None or p == "":
            parent[i] = -1
        elif p in index:
            parent[i] = index[p]
        else:
            raise TreeError(f"unknown parent {p!r}", row=None if rows is None else int(rows[i]),
                            column="parent", unit=str(ids_arr[i]))
    return build_tree(ids_arr, parent, fields, **kw)


def _parse_cell(text: str, ftype: str) -> float:
    t = text.strip()
    if ftype == "boolean":
        low = t.lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
        raise ValueError(f"{text!r} is not a boolean (true/false)")
    try:
        value = float(t.replace(",", "")) if t else math.nan
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if ftype == "integer" and value != int(value):
        raise ValueError(f"{text!r} is not an integer")
    return value


def load_units_csv(source: str | Path | Iterable[str], model: FactorModel,
                   *, levels: Sequence[str] | None = None) -> UnitTree:
    """Read units from CSV (id, parent, [level], the model's fields, any other columns).

    Every problem raises :class:`TreeError` naming the line and the column.
    """
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8-sig", newline="") as fh:
            return load_units_csv(fh, model, levels=levels)
    reader = csv.reader(source)
    header = next(reader, None)
    if not header:
        raise TreeError("empty file: expected a header line", row=1)
    header = [h.strip() for h in header]
    for req in ("id", "parent"):
        if req not in header:
            raise TreeError(f"missing column {req!r}", row=1, column=req)
    for f in model.fields:
        if f.required and f.name not in header:
            raise TreeError(f"missing required field column {f.name!r}", row=1, column=f.name)
    pos = {h: j for j, h in enumerate(header)}
    wanted = [f for f in model.fields if f.name in pos]
    ids: list[str] = []
    parents: list[str] = []
    lvl: list[str] = []
    data: dict[str, list[float]] = {f.name: [] for f in wanted}
    label_cols = [h for h in ("name_en", "name_zh") if h in pos]
    labels: dict[str, list[str]] = {h: [] for h in label_cols}
    rows: list[int] = []
    for rec in reader:
        line_no = reader.line_num
        if not rec or all(not c.strip() for c in rec):
            continue
        if len(rec) != len(header):
            raise TreeError(f"{len(rec)} cells, the header has {len(header)}", row=line_no)
        uid = rec[pos["id"]].strip()
        if not uid:
            raise TreeError("empty id", row=line_no, column="id")
        ids.append(uid)
        parents.append(rec[pos["parent"]].strip())
        if "level" in pos:
            lvl.append(rec[pos["level"]].strip())
        for h in label_cols:
            labels[h].append(rec[pos[h]])
        for f in wanted:
            cell = rec[pos[f.name]]
            try:
                value = _parse_cell(cell, f.type)
            except ValueError as exc:
                raise TreeError(str(exc), row=line_no, column=f.name, unit=uid) from None
            if math.isnan(value):
                if f.required or f.default is None:
                    raise TreeError("empty cell in a required field", row=line_no,
                                    column=f.name, unit=uid)
                value = float(f.default)
            data[f.name].append(value)
        rows.append(line_no)
    if not ids:
        raise TreeError("no units after the header", row=2)
    fields = {k: np.asarray(v, dtype=float) for k, v in data.items()}
    for f in model.fields:
        if f.name not in fields and f.default is not None:
            fields[f.name] = np.full(len(ids), float(f.default))
    known = levels if levels is not None else model.levels
    if lvl and known:
        # A level the model does not know would silently fall back to the default policy.
        for j, name in enumerate(lvl):
            if name not in known:
                raise TreeError(f"unknown level {name!r} (the model's levels: "
                                f"{', '.join(known)})", row=rows[j], column="level", unit=ids[j])
    tree = tree_from_parent_ids(ids, parents, fields, level=lvl or None, levels=known,
                                labels=labels, rows=np.asarray(rows))
    tree.check_model(model)
    return tree
