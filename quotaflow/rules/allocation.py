"""The allocation cascade: company -> region -> team -> person (any depth).

How a target is made (DESIGN.md, "The allocation model"):

1. **Shares.** A unit's share of its parent is the weighted sum of its factor shares
   (see :mod:`quotaflow.rules.scoring`).
2. **Bounds, bottom-up.** Each unit's own bounds come from its level's policy
   expressions, rounded *inward* to yuan and then to the level's rounding unit, so that
   rounding can never break them (an interval too narrow to hold a multiple is pinned
   to its upper end). A lock replaces a unit's bounds with its agreed value. Then every
   parent's interval is intersected with what its children can take together (sum of
   their lower and upper bounds), so a region is never given more than its people can
   carry. When a unit's own bounds and its children's limits do not meet, the
   children's limits win (one bound broken, at the unit, reported with the gap); a
   lock wins instead, and the sibling group below it is reported as infeasible.
3. **Total.** The plan total is the company total clipped into the root's interval;
   any difference is the plan's shortfall (or excess), reported, never hidden.
4. **Split, top-down, exactly.** For all sibling groups of a level at once, solve
   ``x = clip(lambda_g * share, lower, upper)`` with ``sum x = parent`` for each
   group's ``lambda_g`` (f is piecewise linear and monotone: a few Newton steps, then
   an exact search over the sorted breakpoints left in the bracket), then re-spread any
   remainder over the units with room. Locked units are fixed.
   A group whose bounds cannot reach its parent's target (sum of lower bounds above it,
   or upper bounds below) is reported with the shortfall and split as closely as
   possible: everyone at the violated bound, the gap spread by share over unlocked units.
5. **Round** by largest remainder (:mod:`quotaflow.rules.rounding`).
6. **Explain**: per unit, integer yuan per factor, then the bounds adjustment, then the
   rounding adjustment, adding up exactly to the target.

All arithmetic is on numpy columns; Python loops run over levels and factors only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from quotaflow.rules.model import DEFAULT_POLICY, FactorModel
from quotaflow.rules.rounding import round_groups, round_rows
from quotaflow.rules.scoring import AllocationError, Scores, evaluate_column, score
from quotaflow.rules.solver import split_level
from quotaflow.rules.tree import UnitTree

#: Plan columns that risk rules (and exports) may read besides the input fields.
PLAN_COLUMNS = ("target", "lower", "upper", "parent_target", "share_of_parent",
                "weighted_share", "unbounded", "locked", "depth")


NO_UPPER = 1e18  # the "upper" plan column of a unit without an upper bound


@dataclass(frozen=True)
class Infeasibility:
    """A place where the bounds could not all hold, and by how much (yuan, >= 0).

    kinds: ``total_short`` (the units' upper bounds cannot take the company total),
    ``total_excess`` (their lower bounds add up to more than it), ``above_upper`` /
    ``below_lower`` (a parent's target, fixed by a lock, is above/below what its
    children's bounds allow: the children were pushed past their bounds by
    ``shortfall`` in total), ``children_short`` / ``children_excess`` (a unit's own
    lower bound is above what its children can take together, or its upper bound below
    what they must: the children's limits were used, missing the unit's own bound by
    ``shortfall``; ``lower``/``upper`` are the unit's own bounds), ``bounds_conflict``
    (a unit's own lower bound is above its upper bound; the upper bound was used).
    """

    unit: str
    level: str
    kind: str
    target: int
    lower: float
    upper: float
    shortfall: int

    def as_dict(self) -> dict[str, Any]:
        return {"unit": self.unit, "level": self.level, "kind": self.kind,
                "target": self.target, "lower": _num(self.lower), "upper": _num(self.upper),
                "shortfall": self.shortfall}


def _num(v: float) -> int | None:
    return None if not np.isfinite(v) else int(v)


@dataclass(frozen=True, eq=False)
class Plan:
    """An allocation: one target per unit (int64 yuan) plus everything that explains it.

    Arrays are in the tree's row order. ``explain(unit)`` gives one unit's story.
    """

    model: FactorModel
    tree: UnitTree
    total: int
    target: np.ndarray
    continuous: np.ndarray
    weighted_share: np.ndarray
    scores: Scores
    lower: np.ndarray
    upper: np.ndarray
    own_lower: np.ndarray
    own_upper: np.ndarray
    locked: np.ndarray
    conflict: np.ndarray  # units whose own lower bound is above their upper bound
    children_gap: np.ndarray  # > 0 children short of the unit's lower, < 0 over its upper
    weight_percent: tuple[float, ...]
    scenario: str | None = None
    # Per level, the sibling groups that could not meet their parent's target:
    # (parent rows, parent targets, sums of lower bounds, sums of upper bounds).
    group_issues: tuple[tuple[np.ndarray, ...], ...] = ()

    @cached_property
    def infeasible(self) -> tuple[Infeasibility, ...]:
        """Every place the bounds could not all hold: the total first, then sibling
        groups (top-down), then units whose own bounds conflict. Built on first use."""
        tree = self.tree
        ids, level = tree.ids, tree.level
        out = []
        root = tree.root
        if self.planned_total != self.total:
            kind = "total_short" if self.planned_total < self.total else "total_excess"
            out.append(Infeasibility(str(ids[root]), str(level[root]), kind, self.total,
                                     float(self.lower[root]), float(self.upper[root]),
                                     abs(self.total - self.planned_total)))
        for rows, P, lo_sum, hi_sum in self.group_issues:
            for pr, p, ls, hs in zip(rows.tolist(), P.tolist(), lo_sum.tolist(),
                                     hi_sum.tolist(), strict=True):
                over = p > hs
                out.append(Infeasibility(str(ids[pr]), str(level[pr]),
                                         "above_upper" if over else "below_lower", int(p),
                                         ls, hs, round(p - hs if over else ls - p)))
        for i in np.flatnonzero(self.children_gap).tolist():
            gap = float(self.children_gap[i])
            out.append(Infeasibility(str(ids[i]), str(level[i]),
                                     "children_short" if gap > 0 else "children_excess",
                                     int(self.target[i]), float(self.own_lower[i]),
                                     float(self.own_upper[i]), round(abs(gap))))
        for i in np.flatnonzero(self.conflict).tolist():
            lo, hi = float(self.own_lower[i]), float(self.own_upper[i])
            out.append(Infeasibility(str(ids[i]), str(level[i]), "bounds_conflict", 0, lo, hi,
                                     int(lo - hi)))
        return tuple(out)

    @property
    def infeasible_count(self) -> int:
        """How many places bounds could not hold, not counting the total itself."""
        return (sum(len(x[0]) for x in self.group_issues) + int(self.conflict.sum())
                + int(np.count_nonzero(self.children_gap)))

    @property
    def planned_total(self) -> int:
        return int(self.target[self.tree.root])

    @property
    def shortfall(self) -> int:
        """Company total minus what the plan allocates (negative: over-allocated)."""
        return self.total - self.planned_total

    @cached_property
    def parent_target(self) -> np.ndarray:
        p = self.tree.parent
        return np.where(p >= 0, self.target[np.maximum(p, 0)], self.total).astype(np.int64)

    # Explanation columns are computed on first use: a page asking "why" needs them, a
    # what-if slider only needs targets.
    @cached_property
    def _explanation(self) -> dict[str, np.ndarray]:
        return _explain_columns(self)

    @property
    def factor_amounts(self) -> np.ndarray:
        """(n, F) int64 yuan each factor contributed (root: zeros)."""
        return self._explanation["factor_amounts"]

    @cached_property
    def unbounded(self) -> np.ndarray:
        """Float yuan the factors alone would give (parent target x weighted share)."""
        return np.where(self.tree.parent >= 0, self.parent_target * self.weighted_share, 0.0)

    @property
    def bounds_adjustment(self) -> np.ndarray:
        """int64 yuan the bounds (and locks, and re-spreading) moved the unit."""
        return self._explanation["bounds_adjustment"]

    @property
    def rounding_adjustment(self) -> np.ndarray:
        """int64 yuan rounding moved the unit (|.| < its rounding unit)."""
        return self._explanation["rounding_adjustment"]

    @property
    def requested(self) -> np.ndarray:
        """int64: the company total at the root, 0 elsewhere (closes the root's sum)."""
        return self._explanation["requested"]

    def columns(self) -> dict[str, np.ndarray]:
        """Input fields plus plan columns, as risk rules and exports read them."""
        cols = dict(self.tree.fields)
        pt = self.parent_target.astype(float)
        cols.update({
            "target": self.target.astype(float),
            "lower": self.lower,
            # Expressions take finite numbers only: "no upper bound" reads as NO_UPPER.
            "upper": np.where(np.isfinite(self.upper), self.upper, NO_UPPER),
            "parent_target": pt,
            "share_of_parent": np.divide(self.target, pt, out=np.zeros(len(pt)), where=pt > 0),
            "weighted_share": self.weighted_share,
            "unbounded": self.unbounded,
            "locked": self.locked,
            "depth": self.tree.depth.astype(float),
        })
        return cols

    def explain(self, unit: str) -> dict[str, Any]:
        """One unit's explanation: factor amounts, bounds, rounding (they add up exactly)."""
        tree = self.tree
        i = tree.index[unit]
        p = int(tree.parent[i])
        factors = []
        for j, f in enumerate(self.model.factors):
            factors.append({
                "key": f.key, "label_en": f.label_en, "label_zh": f.label_zh,
                "weight_percent": self.weight_percent[j], "normalisation": f.normalisation,
                "value": float(self.scores.raw[i, j]), "measure": float(self.scores.measures[i, j]),
                "share": float(self.scores.shares[i, j]),
                "equal_share_fallback": bool(self.scores.fallback[i, j]),
                "amount": int(self.factor_amounts[i, j]),
            })
        notes = [f"{f['key']}: every sibling measured 0, so equal shares were used"
                 for f in factors if f["equal_share_fallback"]]
        if self.locked[i]:
            notes.append("locked: the agreed target is kept")
        gap = float(self.children_gap[i])
        if gap > 0:
            notes.append(f"its children can take {gap:,.0f} less than its own lower bound; "
                         "their limit was used")
        elif gap < 0:
            notes.append(f"its children must take {-gap:,.0f} more than its own upper bound; "
                         "their limit was used")
        if self.conflict[i]:
            notes.append("its lower bound is above its upper bound; the upper bound was used")
        if p >= 0 and any(int(p) in rows.tolist() for rows, *_ in self.group_issues):
            notes.append("its siblings' bounds could not meet their parent's target (see "
                         "the infeasible list); bounds were stretched")
        out = {
            "unit": unit, "level": str(tree.level[i]),
            "parent": None if p < 0 else str(tree.ids[p]),
            "parent_target": int(self.parent_target[i]),
            "target": int(self.target[i]),
            "weighted_share": float(self.weighted_share[i]),
            "factors": factors,
            "unbounded": float(self.unbounded[i]),
            "bounds_adjustment": int(self.bounds_adjustment[i]),
            "rounding_adjustment": int(self.rounding_adjustment[i]),
            "lower": _num(self.lower[i]), "upper": _num(self.upper[i]),
            "locked": bool(self.locked[i]),
            "notes": notes,
        }
        if p < 0:
            out["requested"] = int(self.requested[i])
            if self.shortfall:
                out["notes"].append(f"the units' bounds cannot take the company total: "
                                    f"shortfall {self.shortfall}")
        return out


def collect_locks(model: FactorModel, tree: UnitTree,
                  extra: Mapping[str, int] | None = None) -> dict[int, int]:
    """Row -> locked yuan, from the model's policies and ``extra`` (which wins)."""
    out: dict[int, int] = {}
    sources = [(lvl, pol.locks) for lvl, pol in model.policies.items()]
    sources.append((None, extra or {}))
    for lvl, locks in sources:
        for uid, value in locks.items():
            i = tree.index.get(uid)
            if i is None:
                raise AllocationError(f"locked unit {uid!r} is not in the data", unit=uid)
            if lvl not in (None, DEFAULT_POLICY) and tree.level[i] != lvl:
                raise AllocationError(f"locked under the {lvl!r} policy but the unit is at "
                                      f"level {tree.level[i]!r}", unit=uid)
            if tree.parent[i] < 0:
                raise AllocationError("the root cannot be locked: its target is the total",
                                      unit=uid)
            if value < 0 or value != int(value):
                raise AllocationError("a lock must be a non-negative whole number of yuan",
                                      unit=uid)
            out[i] = int(value)
    return out


def allocate(model: FactorModel, tree: UnitTree, total: float, *,
             locks: Mapping[str, int] | None = None, scores: Scores | None = None,
             scenario: str | None = None) -> Plan:
    """Split ``total`` (yuan) down the tree by the model; see the module docstring.

    ``locks`` (unit id -> yuan) add to / override the model's locks; ``scores`` may be
    passed to reuse factor scoring across runs on the same model factors and tree.
    """
    if not np.isfinite(total) or total < 0:
        raise AllocationError(f"the total must be a non-negative amount, got {total!r}")
    total_int = int(np.floor(float(total) + 0.5))
    if not tree.named and model.levels:
        tree = tree.with_levels(model.levels)
    if scores is None:
        tree.check_model(model)
        scores = score(model, tree)
    w = scores.weighted(model.weights)
    n = tree.size
    lock_map = collect_locks(model, tree, locks)
    locked = np.zeros(n, dtype=bool)
    lock_val = np.zeros(n)
    if lock_map:
        rows = np.fromiter(lock_map.keys(), dtype=np.int64, count=len(lock_map))
        locked[rows] = True
        lock_val[rows] = np.fromiter(lock_map.values(), dtype=float, count=len(lock_map))

    own_lo, own_hi, lo, hi, conflict, gap = _bounds(model, tree, locked, lock_val)

    # Root: the plan total is the company total clipped into what the units can take.
    root = tree.root
    target = np.zeros(n, dtype=np.int64)
    cont = np.zeros(n)
    planned = float(np.clip(total_int, lo[root], hi[root]))
    target[root] = int(planned)
    cont[root] = planned
    bad_groups: list[tuple[np.ndarray, ...]] = []
    for d in range(1, tree.max_depth + 1):
        idx = tree.by_depth[d]
        g, gparent = tree.sibling_groups[d]
        r = model.policy(tree.levels[d]).rounding_unit
        P = target[gparent].astype(float)
        lo_d, hi_d, lk = lo[idx], hi[idx], locked[idx]
        x, feasible, lo_sum, hi_sum = split_level(g, len(gparent), w[idx], lo_d, hi_d, P, lk)
        if not feasible.all():
            bad = ~feasible
            bad_groups.append((gparent[bad], P[bad], lo_sum[bad], hi_sum[bad]))
        # Locks stay exact where the group could keep them (see split_level).
        fixed = np.where(feasible[g], lo_d == hi_d, lk & (x == lo_d))
        target[idx] = round_groups(x, g, P, r, lo_d, hi_d, fixed, feasible)
        cont[idx] = x

    return Plan(model=model, tree=tree, total=total_int, target=target, continuous=cont,
                weighted_share=w, scores=scores, lower=lo, upper=hi, own_lower=own_lo,
                own_upper=own_hi, locked=locked, conflict=conflict, children_gap=gap,
                weight_percent=model.weight_percent, scenario=scenario,
                group_issues=tuple(bad_groups))


def _bounds(model: FactorModel, tree: UnitTree, locked: np.ndarray, lock_val: np.ndarray
            ) -> tuple[np.ndarray, ...]:
    """Own bounds per unit and effective bounds (intersected with the children's sums).

    Works level by level on arrays in ``tree.by_depth`` order, deepest level first, so
    each level hands its parents the sums of its effective bounds.
    """
    n = tree.size
    own_lo = np.zeros(n)
    own_hi = np.full(n, np.inf)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    conflict = np.zeros(n, dtype=bool)
    gap = np.zeros(n)  # > 0: children cannot reach the unit's lower; < 0: nor get under its upper
    child_lo = child_hi = None  # sums of the level below, in this level's order
    for d in range(tree.max_depth, -1, -1):
        idx = tree.by_depth[d]
        if d == 0:
            if child_lo is not None:  # the root: what its children can take
                lo[idx], hi[idx] = child_lo, child_hi
            break
        pol = model.policy(tree.levels[d])
        r = float(pol.rounding_unit)
        cols = tree.at_depth(d)
        size = len(idx)
        l_own = np.zeros(size) if pol.lower is None else \
            evaluate_column(pol.lower, tree, "lower bound", fields=cols, rows=idx)
        u_own = np.full(size, np.inf) if pol.upper is None else \
            evaluate_column(pol.upper, tree, "upper bound", fields=cols, rows=idx)
        # Inward to whole yuan; targets are never negative.
        l_own = np.maximum(np.ceil(l_own), 0.0)
        u_own = np.maximum(np.floor(u_own), 0.0)
        own_lo[idx], own_hi[idx] = l_own, u_own
        lk = locked[idx]
        bad = (l_own > u_own) & ~lk
        if bad.any():
            conflict[idx] = bad
        # A conflicting unit's upper bound wins (own_lower keeps what the policy said).
        a = np.minimum(l_own, u_own)
        b = u_own
        # Inward to the rounding unit; too narrow for any multiple: pin to the top.
        a2, b2 = np.ceil(a / r) * r, np.floor(b / r) * r
        pin = a2 > b2
        a, b = np.where(pin, b, a2), np.where(pin, b, b2)
        if lk.any():
            a = np.where(lk, lock_val[idx], a)
            b = np.where(lk, lock_val[idx], b)
        if child_lo is not None:
            hc = tree.has_children_at(d)
            ia = np.where(hc, np.maximum(a, child_lo), a)
            ib = np.where(hc, np.minimum(b, child_hi), b)
            # Own limits that miss the children's interval: what the children can take
            # wins (one broken bound here, not one per child), reported with the gap;
            # a lock wins instead (the group below is then reported infeasible).
            miss = ia > ib
            if miss.any():
                short = child_hi < a
                nearest = np.where(short, child_hi, child_lo)
                # The gap to the unit's own bound as the policy said it (a miss caused
                # only by rounding that bound inward is no conflict).
                raw_gap = np.where(short, np.minimum(l_own, u_own) - child_hi,
                                   u_own - child_lo)
                gap[idx] = np.where(miss & ~lk & (raw_gap != 0) & (short == (raw_gap > 0)),
                                    raw_gap, 0.0)
                ia = np.where(miss, np.where(lk, a, nearest), ia)
                ib = np.where(miss, ia, ib)
            # The intersection may hold no multiple of the unit again: pin to its top.
            a2, b2 = np.ceil(ia / r) * r, np.floor(ib / r) * r
            keep = hc & ~miss & ~lk
            ok = keep & (a2 <= b2)
            ia = np.where(ok, a2, np.where(keep, ib, ia))
            ib = np.where(ok, b2, ib)
            a, b = ia, ib
        lo[idx], hi[idx] = a, b
        # Sums for the parents, in the parent level's order.
        g, gparent = tree.sibling_groups[d]
        pos = tree.pos_in_level[gparent]
        size_up = len(tree.by_depth[d - 1])
        child_lo = np.zeros(size_up)
        child_hi = np.zeros(size_up)
        child_lo[pos] = np.bincount(g, weights=a, minlength=len(gparent))
        child_hi[pos] = np.bincount(g, weights=b, minlength=len(gparent))
    return own_lo, own_hi, lo, hi, conflict, gap


def _explain_columns(plan: Plan) -> dict[str, np.ndarray]:
    """Integer explanation columns: factor amounts, bounds and rounding adjustments."""
    tree = plan.tree
    nonroot = tree.parent >= 0
    P = np.where(nonroot, plan.parent_target, 0).astype(float)
    parts = P[:, None] * plan.scores.shares * np.asarray(plan.weight_percent)[None, :] / 100.0
    unbounded = parts.sum(axis=1)
    base = np.floor(unbounded + 0.5)
    amounts = round_rows(parts, base)
    x, t = plan.continuous, plan.target
    # The continuous value in whole yuan: nearest, unless that would make the rounding
    # adjustment a full unit (then toward the target, which is always within one unit).
    units = _rounding_units(plan)
    y = np.floor(x + 0.5)
    y = np.where(np.abs(t - y) < units, y, np.where(t <= x, np.floor(x), np.ceil(x)))
    requested = np.where(nonroot, 0, plan.total).astype(np.int64)
    y = np.where(nonroot, y, t)
    bounds = (y - np.where(nonroot, base, plan.total)).astype(np.int64)
    rounding = (t - y).astype(np.int64)
    return {"factor_amounts": amounts, "bounds_adjustment": bounds,
            "rounding_adjustment": rounding, "requested": requested}


def _rounding_units(plan: Plan) -> np.ndarray:
    """Each unit's rounding unit (1 at the root)."""
    tree = plan.tree
    per_depth = np.array([1] + [plan.model.policy(lv).rounding_unit for lv in tree.levels[1:]],
                         dtype=float)
    return per_depth[tree.depth]


def scores_for(model: FactorModel, tree: UnitTree) -> Scores:
    """Check the data against the model and score it (reusable across scenarios)."""
    tree.check_model(model)
    return score(model, tree)
