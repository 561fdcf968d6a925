"""Factor scoring: measures per unit and their shares among siblings.

Every factor expression is evaluated once over all units (a numpy column each); shares
are taken within sibling groups with ``np.bincount`` over the parent index, for every
level at once. Scores depend only on the model's factors and the tree, so scenarios that
only tilt weights or bounds reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quotaflow.rules.expressions import CompiledExpression, ExpressionError
from quotaflow.rules.model import FactorModel, FactorSpec
from quotaflow.rules.parallel import parallel_map
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
    """Per factor and unit (rows in factor order): measure, share, equal-share flag.

    Stored factor-major (F x n) so each factor is one contiguous column of units; the
    ``measures``/``shares``/... properties give the (n x F) views.
    """

    measures_by_factor: np.ndarray  # the value shared: measure, score x scale, or rank
    raw_by_factor: np.ndarray  # the expression's own value (the score before scaling)
    shares_by_factor: np.ndarray  # share of the parent's group; the root has 1
    fallback_by_factor: np.ndarray  # True where the sibling group summed to 0: equal shares

    @property
    def measures(self) -> np.ndarray:
        return self.measures_by_factor.T

    @property
    def raw(self) -> np.ndarray:
        return self.raw_by_factor.T

    @property
    def shares(self) -> np.ndarray:
        return self.shares_by_factor.T

    @property
    def fallback(self) -> np.ndarray:
        return self.fallback_by_factor.T

    def weighted(self, weights: np.ndarray) -> np.ndarray:
        """Each unit's share of its parent: sum over factors of weight x factor share."""
        # einsum, not @: BLAS threads cost more than they save on a busy 2-core box.
        return np.einsum("f,fn->n", np.asarray(weights, dtype=float), self.shares_by_factor)


def evaluate_column(expr: CompiledExpression, tree: UnitTree, what: str, factor: str | None = None,
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


def _ranks(bin_parent: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Rank of each measure among its siblings, 1 = lowest, ties share the average rank."""
    n = len(m)
    # Two int64 sorts beat a two-key lexsort: dense-rank the values once, then sort by
    # (parent, dense rank) packed in one integer (equal values stay equal).
    o = np.argsort(m)
    ms = m[o]
    dense = np.empty(n, dtype=np.int64)
    dense[o] = np.cumsum(np.r_[True, ms[1:] != ms[:-1]]) - 1
    key = (bin_parent.astype(np.int64) << 32) | dense
    order = np.argsort(key)
    ks = key[order]
    new_group = np.r_[True, (ks[1:] >> 32) != (ks[:-1] >> 32)]
    new_run = np.r_[True, ks[1:] != ks[:-1]]
    pos = np.arange(n)
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    run_id = np.cumsum(new_run) - 1
    run_first = pos[new_run]
    run_last = np.r_[run_first[1:] - 1, n - 1]
    avg = (run_first + run_last) / 2.0 - group_start[run_first] + 1.0
    out = np.empty(n)
    out[order] = avg[run_id]
    return out


def _below_root(expr: CompiledExpression, tree: UnitTree, what: str, factor: str) -> np.ndarray:
    """Evaluate on every unit; the root's value is not used (its share is 1), so an
    error there is retried without the root, and the root reads 0."""
    try:
        out = expr.evaluate({k: tree.fields[k] for k in expr.names}, size=tree.size)
        return np.asarray(out, dtype=float)
    except ExpressionError as exc:
        if exc.row != tree.root:
            return evaluate_column(expr, tree, what, factor)  # raises, naming the unit
    out = np.zeros(tree.size)
    out[tree.nonroot] = evaluate_column(expr, tree, what, factor, fields=tree.nonroot_fields,
                                        rows=tree.nonroot)
    return out


def _check(tree: UnitTree, bad: np.ndarray, factor: str, message: str) -> None:
    if bad.any():
        bad[tree.root] = False  # the root's measure is not used
        if bad.any():
            raise _first_bad(tree, bad, factor, message)


def factor_measures(factor: FactorSpec, tree: UnitTree) -> tuple[np.ndarray, np.ndarray]:
    """(value to share, expression value) of one factor over every unit."""
    raw = _below_root(factor.expression, tree, "measure", factor.key)
    _check(tree, raw < 0, factor.key, "measure is negative; factor measures must be >= 0")
    m = raw
    if factor.normalisation == "score":
        _check(tree, raw > SCORE_MAX, factor.key, "score is above 100")
        if factor.scale is not None:
            scale = _below_root(factor.scale, tree, "scale", factor.key)
            _check(tree, scale < 0, factor.key, "scale is negative")
            m = raw * scale
    elif factor.normalisation == "rank":
        m = _ranks(tree.bin_parent, raw)
    return m, raw


def score(model: FactorModel, tree: UnitTree) -> Scores:
    """Measures and sibling shares of every factor for every unit."""
    n, nf = tree.size, len(model.factors)
    bp = tree.bin_parent  # the root sits alone in bin n
    root = tree.root
    siblings = np.append(tree.n_children, 1).astype(float)[bp]
    _ = tree.nonroot_fields  # shared caches are built before the jobs start
    measures = np.empty((nf, n))
    raw = np.empty((nf, n))
    shares = np.empty((nf, n))
    fallback = np.zeros((nf, n), dtype=bool)

    def one(j: int) -> None:
        # Each job writes its own row: factors run side by side (numpy frees the GIL).
        m, r = factor_measures(model.factors[j], tree)
        measures[j], raw[j] = m, r
        gsum = np.bincount(bp, weights=m, minlength=n + 1)[bp]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            s = np.divide(m, gsum, out=shares[j])
        # A sibling group whose measures are all 0 has no information: equal shares.
        zero = gsum <= 0
        if zero.any():
            zero[root] = False
            np.copyto(s, 1.0 / siblings, where=zero)
            fallback[j] = zero
        s[root] = 1.0

    parallel_map(one, range(nf))
    return Scores(measures, raw, shares, fallback)
