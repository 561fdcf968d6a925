"""Factor scoring: measures per unit and their shares among siblings.

Every factor expression is evaluated once over all units (a numpy column each); shares
are taken within sibling groups with ``np.bincount`` over the parent index, for every
level at once. Scores depend only on the model's factors and the tree, so scenarios that
only tilt weights or bounds reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quotaflow.rules.expressions import ExpressionError
from quotaflow.rules.model import FactorModel, FactorSpec
from quotaflow.rules.tree import UnitTree

SCORE_MAX = 100.0


class AllocationError(ValueError):
    """Data the model cannot run on (a negative measure, a score out of range, ...)."""

    def __init__(self, message: str, *, unit: str | None = None, factor: str | None = None,
                 row: int | None = None) -> None:
        self.message, self.unit, self.factor, self.row = message, unit, factor, row
        where = []
        if factor:
            where.append(f"factor {factor!r}")
        if unit is not None:
            where.append(f"unit {unit!r}" + (f" (row {row})" if row is not None else ""))
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, eq=False)
class Scores:
    """Per unit and factor (columns in factor order): measure, share, equal-share flag."""

    measures: np.ndarray  # (n, F) the value shared: measure, score x scale, or rank
    raw: np.ndarray  # (n, F) the expression's own value (the score before scaling)
    shares: np.ndarray  # (n, F) share of the parent's group; the root has 1
    fallback: np.ndarray  # (n, F) True where the sibling group summed to 0: equal shares

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """Each unit's share of its parent: sum over factors of weight x factor share."""
        return self.shares @ weights


def evaluate_column(expr, tree: UnitTree, what: str, factor: str | None = None,
                    fields: dict[str, np.ndarray] | None = None,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Evaluate a compiled expression over units; runtime errors name the unit."""
    cols = tree.fields if fields is None else fields
    try:
        out = expr.evaluate({k: cols[k] for k in expr.names},
                            size=len(next(iter(cols.values()))) if cols else tree.size)
    except ExpressionError as exc:
        i = getattr(exc, "row", None)
        if i is not None and rows is not None:
            i = int(rows[i])
        raise AllocationError(f"{what}: {exc.message}", factor=factor,
                              unit=None if i is None else str(tree.ids[i]),
                              row=None if i is None else tree.row_of(i)) from exc
    out = np.asarray(out, dtype=float)
    if out.ndim == 0:
        out = np.full(len(next(iter(cols.values()))) if cols else tree.size, float(out))
    return out


def _first_bad(tree: UnitTree, bad: np.ndarray, factor: str, message: str) -> AllocationError:
    i = int(np.flatnonzero(bad)[0])
    return AllocationError(message, unit=str(tree.ids[i]), factor=factor, row=tree.row_of(i))


def _ranks(parent: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rank of each measure among its siblings, 1 = lowest, ties share the average rank."""
    n = len(m)
    order = np.lexsort((m, parent))
    ps, ms = parent[order], m[order]
    new_group = np.r_[True, ps[1:] != ps[:-1]]
    new_run = new_group | np.r_[True, ms[1:] != ms[:-1]]
    pos = np.arange(n)
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    run_id = np.cumsum(new_run) - 1
    run_first = pos[new_run]
    run_last = np.r_[run_first[1:] - 1, n - 1]
    avg = (run_first + run_last) / 2.0 - group_start[run_first] + 1.0
    out = np.empty(n)
    out[order] = avg[run_id]
    return out


def factor_measures(factor: FactorSpec, tree: UnitTree) -> tuple[np.ndarray, np.ndarray]:
    """(value to share, expression value) of one factor over every unit."""
    raw = evaluate_column(factor.expression, tree, "measure", factor.key)
    if (bad := raw < 0).any():
        raise _first_bad(tree, bad, factor.key, "measure is negative; factor measures must be "
                         ">= 0")
    m = raw
    if factor.normalisation == "score":
        if (bad := raw > SCORE_MAX).any():
            raise _first_bad(tree, bad, factor.key, "score is above 100")
        if factor.scale is not None:
            scale = evaluate_column(factor.scale, tree, "scale", factor.key)
            if (bad := scale < 0).any():
                raise _first_bad(tree, bad, factor.key, "scale is negative")
            m = raw * scale
    elif factor.normalisation == "rank":
        m = _ranks(tree.parent, raw)
    return m, raw


def score(model: FactorModel, tree: UnitTree) -> Scores:
    """Measures and sibling shares of every factor for every unit."""
    n, nf = tree.size, len(model.factors)
    parent = tree.parent
    child = parent >= 0
    pidx = np.where(child, parent, 0)  # the root's own "group" is itself: share 1
    count = tree.n_children.astype(float)
    measures = np.empty((n, nf))
    raw = np.empty((n, nf))
    shares = np.ones((n, nf))
    fallback = np.zeros((n, nf), dtype=bool)
    for j, f in enumerate(model.factors):
        m, r = factor_measures(f, tree)
        measures[:, j], raw[:, j] = m, r
        sums = np.bincount(parent[child], weights=m[child], minlength=n)
        gsum = sums[pidx]
        # A sibling group whose measures are all 0 has no information: equal shares.
        zero = child & (gsum <= 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.where(zero, 1.0 / np.maximum(count[pidx], 1.0), m / gsum)
        shares[:, j] = np.where(child, s, 1.0)
        fallback[:, j] = zero
    return Scores(measures=measures, raw=raw, shares=shares, fallback=fallback)
