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
   carry. When a unit's own bounds or lock and its children's limits do not meet, the
   unit's own come first and the sibling group below is reported as infeasible.
3. **Total.** The plan total is the company total clipped into the root's interval;
   any difference is the plan's shortfall (or excess), reported, never hidden.
4. **Split, top-down, exactly.** For all sibling groups of a level at once, solve
   ``x = clip(lambda_g * share, lower, upper)`` with ``sum x = parent`` for each
   group's ``lambda_g`` by a sorted-breakpoint search (piecewise-linear, monotone),
   then re-spread any remainder over the units with room. Locked units are fixed.
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
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from quotaflow.rules.model import DEFAULT_POLICY, FactorModel
from quotaflow.rules.rounding import round_groups, round_rows
from quotaflow.rules.scoring import AllocationError, Scores, evaluate_column, score
from quotaflow.rules.tree import UnitTree

#: Plan columns that risk rules (and exports) may read besides the input fields.
PLAN_COLUMNS = ("target", "lower", "upper", "parent_target", "share_of_parent",
                "weighted_share", "unbounded", "locked", "depth")


@dataclass(frozen=True)
class Infeasibility:
    """A place where the bounds could not all hold, and by how much (yuan, >= 0).

    kinds: ``total_short`` (the units' upper bounds cannot take the company total),
    ``total_excess`` (their lower bounds add up to more than it), ``above_upper`` /
    ``below_lower`` (a parent's target is above/below what its children's bounds allow:
    the children were pushed past their bounds by ``shortfall`` in total),
    ``bounds_conflict`` (a unit's own lower bound is above its upper bound; the upper
    bound was used).
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
    infeasible: tuple[Infeasibility, ...]
    weight_percent: tuple[float, ...]
    scenario: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

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

    @property
    def unbounded(self) -> np.ndarray:
        """Float yuan the factors alone would give (parent target x weighted share)."""
        return self._explanation["unbounded"]

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
            "lower": self.lower, "upper": self.upper,
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

    issues: list[Infeasibility] = []
    own_lo, own_hi, lo, hi = _bounds(model, tree, locked, lock_val, issues)

    # Root: the plan total is the company total clipped into what the units can take.
    root = tree.root
    target = np.zeros(n, dtype=np.int64)
    cont = np.zeros(n)
    planned = float(np.clip(total_int, lo[root], hi[root]))
    target[root] = int(planned)
    cont[root] = planned
    if planned != total_int:
        kind = "total_short" if planned < total_int else "total_excess"
        issues.insert(0, Infeasibility(str(tree.ids[root]), str(tree.level[root]), kind,
                                       total_int, lo[root], hi[root],
                                       abs(total_int - int(planned))))

    for d in range(1, tree.max_depth + 1):
        idx = tree.by_depth[d]
        g, gparent = tree.sibling_groups[d]
        r = model.policy(tree.levels[d]).rounding_unit
        P = target[gparent].astype(float)
        x, feasible, lo_sum, hi_sum = _split(g, len(gparent), w[idx], lo[idx], hi[idx], P,
                                             locked[idx])
        for gi in np.flatnonzero(~feasible):
            over = P[gi] > hi_sum[gi]
            pr = int(gparent[gi])
            issues.append(Infeasibility(
                str(tree.ids[pr]), str(tree.level[pr]), "above_upper" if over else "below_lower",
                int(P[gi]), float(lo_sum[gi]), float(hi_sum[gi]),
                int(round(P[gi] - hi_sum[gi] if over else lo_sum[gi] - P[gi]))))
        # Locks stay exact where the group could keep them (see _split).
        fixed = np.where(feasible[g], lo[idx] == hi[idx], locked[idx] & (x == lo[idx]))
        target[idx] = round_groups(x, g, P, r, lo[idx], hi[idx], fixed, tree.id_rank[idx],
                                   feasible)
        cont[idx] = x

    return Plan(model=model, tree=tree, total=total_int, target=target, continuous=cont,
                weighted_share=w, scores=scores, lower=lo, upper=hi, own_lower=own_lo,
                own_upper=own_hi, locked=locked, infeasible=tuple(issues),
                weight_percent=model.weight_percent, scenario=scenario)


def _bounds(model: FactorModel, tree: UnitTree, locked: np.ndarray, lock_val: np.ndarray,
            issues: list[Infeasibility]) -> tuple[np.ndarray, ...]:
    """Own bounds per unit and effective bounds (intersected with the children's sums)."""
    n = tree.size
    own_lo = np.zeros(n)
    own_hi = np.full(n, np.inf)
    units = np.ones(n)
    for d in range(1, tree.max_depth + 1):
        idx = tree.by_depth[d]
        pol = model.policy(tree.levels[d])
        r = float(pol.rounding_unit)
        units[idx] = r
        cols = tree.at_depth(d)
        lo = np.zeros(len(idx)) if pol.lower is None else \
            evaluate_column(pol.lower, tree, "lower bound", fields=cols, rows=idx)
        hi = np.full(len(idx), np.inf) if pol.upper is None else \
            evaluate_column(pol.upper, tree, "upper bound", fields=cols, rows=idx)
        # Inward to whole yuan; targets are never negative.
        lo = np.maximum(np.ceil(lo), 0.0)
        hi = np.maximum(np.floor(hi), 0.0)
        conflict = (lo > hi) & ~locked[idx]
        for k in np.flatnonzero(conflict):
            i = int(idx[k])
            issues.append(Infeasibility(str(tree.ids[i]), str(tree.level[i]), "bounds_conflict",
                                        0, float(lo[k]), float(hi[k]), int(lo[k] - hi[k])))
        own_lo[idx], own_hi[idx] = lo, hi
    # Effective bounds, deepest level first, so parents see their children's limits.
    # A conflicting unit's upper bound wins (own_lower keeps what the policy said).
    lo, hi = np.minimum(own_lo, own_hi), own_hi.copy()
    child_lo = np.zeros(n)
    child_hi = np.zeros(n)
    has_children = tree.n_children > 0
    for d in range(tree.max_depth, -1, -1):
        idx = tree.by_depth[d]
        r = units[idx]
        a, b = lo[idx], hi[idx]
        if d > 0:
            # Inward to the rounding unit; too narrow for any multiple: pin to the top.
            a2, b2 = np.ceil(a / r) * r, np.floor(b / r) * r
            pin = a2 > b2
            a, b = np.where(pin, b, a2), np.where(pin, b, b2)
            lk = locked[idx]
            a = np.where(lk, lock_val[idx], a)
            b = np.where(lk, lock_val[idx], b)
        else:
            a, b = np.zeros(len(idx)), np.full(len(idx), np.inf)
        hc = has_children[idx]
        cl, ch = child_lo[idx], child_hi[idx]
        ia = np.where(hc, np.maximum(a, cl), a)
        ib = np.where(hc, np.minimum(b, ch), b)
        # Own limits first: if they miss the children's interval, stay at the nearest
        # own end (the group below is then reported infeasible).
        miss = ia > ib
        ia = np.where(miss, np.where(ch < a, a, b), ia)
        ib = np.where(miss, ia, ib)
        if d > 0:
            # The intersection may hold no multiple of the unit again: pin to its top.
            a2, b2 = np.ceil(ia / r) * r, np.floor(ib / r) * r
            ok = (a2 <= b2) | ~hc
            keep = hc & ~miss & ~locked[idx]
            ia = np.where(keep & ok, a2, np.where(keep, ib, ia))
            ib = np.where(keep & ok, b2, ib)
        lo[idx], hi[idx] = ia, ib
        if d > 0:
            par = tree.parent[idx]
            child_lo += np.bincount(par, weights=ia, minlength=n)
            child_hi += np.bincount(par, weights=ib, minlength=n)
    return own_lo, own_hi, lo, hi


def _split(g: np.ndarray, ng: int, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
           P: np.ndarray, locked: np.ndarray) -> tuple[np.ndarray, ...]:
    """Continuous split of every sibling group of one level; see the module docstring.

    Returns (x, feasible per group, sum of lower bounds, sum of upper bounds).
    """
    lo_sum = np.bincount(g, weights=lo, minlength=ng)
    hi_sum = np.bincount(g, weights=hi, minlength=ng)
    feasible = (lo_sum <= P) & (P <= hi_sum)
    lam = _solve_scale(g, ng, w, lo, hi, P)
    x = np.where((lo < hi) & (w > 0), np.clip(lam[g] * w, lo, hi), lo)
    x = _respread(x, g, ng, lo, hi, P)

    if not feasible.all():
        x = _split_infeasible(x, g, ng, w, lo, hi, P, locked, lo_sum, hi_sum, feasible)
    return x, feasible, lo_sum, hi_sum


def _solve_scale(g: np.ndarray, ng: int, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 P: np.ndarray) -> np.ndarray:
    """Per group, lambda with sum(clip(lambda * w, lo, hi)) = P (sorted breakpoints).

    f(lambda) is piecewise linear and non-decreasing: a unit adds slope w between
    lambda = lo/w and hi/w. Sorting those events by (group, lambda) and integrating the
    slope gives f at every event; the root lies on the first segment reaching P.
    """
    free = np.flatnonzero((lo < hi) & (w > 0))
    base = np.bincount(g, weights=lo, minlength=ng)
    lam = np.zeros(ng)
    if len(free) == 0:
        return lam
    wf, gf = w[free], g[free]
    a = lo[free] / wf
    b = hi[free] / wf
    fin = np.isfinite(b)
    ev_lam = np.concatenate([a, b[fin]])
    ev_g = np.concatenate([gf, gf[fin]])
    ev_d = np.concatenate([wf, -wf[fin]])
    order = np.lexsort((ev_lam, ev_g))
    lam_e, g_e, d_e = ev_lam[order], ev_g[order], ev_d[order]
    ne = len(lam_e)
    pos = np.arange(ne)
    first = np.r_[True, g_e[1:] != g_e[:-1]]
    start = np.maximum.accumulate(np.where(first, pos, 0))
    cs = np.cumsum(d_e)
    slope = cs - (cs - d_e)[start]  # slope just after each event, within its group
    inc = np.zeros(ne)
    inc[1:] = slope[:-1] * (lam_e[1:] - lam_e[:-1])
    inc[first] = 0.0
    ci = np.cumsum(inc)
    f = base[g_e] + ci - ci[start]  # f(lambda) at each event
    target = P[g_e]
    cnt = np.bincount(g_e, weights=f < target, minlength=ng).astype(np.int64)
    nev = np.bincount(g_e, minlength=ng)
    gstart = np.searchsorted(g_e, np.arange(ng))
    has = (cnt > 0) & (nev > 0)
    j = np.where(has, gstart + cnt - 1, 0)  # last event with f < P
    sj = slope[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(sj > 0, (P - f[j]) / sj, 0.0)
    nxt = np.minimum(j + 1, ne - 1)
    # Do not run past the next event: f is linear only up to it.
    limit = np.where((cnt < nev) & has, lam_e[nxt], np.inf)
    lam = np.where(has, np.minimum(lam_e[j] + step, limit), 0.0)
    return lam


def _respread(x: np.ndarray, g: np.ndarray, ng: int, lo: np.ndarray, hi: np.ndarray,
              P: np.ndarray) -> np.ndarray:
    """Spread what is left of each parent over the units with room (float dust, or
    units with zero share once everyone else is at the upper bound)."""
    res = P - np.bincount(g, weights=x, minlength=ng)
    rg = res[g]
    up = np.where(lo < hi, np.minimum(hi, x + np.maximum(rg, 0)) - x, 0.0)
    down = np.where(lo < hi, x - np.maximum(lo, x + np.minimum(rg, 0)), 0.0)
    room = np.where(rg > 0, up, down)
    room_sum = np.bincount(g, weights=room, minlength=ng)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(room_sum[g] > 0, room / room_sum[g], 0.0)
    return np.clip(x + rg * np.minimum(frac, 1.0), lo, hi)


def _split_infeasible(x: np.ndarray, g: np.ndarray, ng: int, w: np.ndarray, lo: np.ndarray,
                      hi: np.ndarray, P: np.ndarray, locked: np.ndarray, lo_sum: np.ndarray,
                      hi_sum: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Closest split when bounds cannot reach the parent: all at the violated bound,
    the gap over unlocked units (by share; equally if their shares are 0). Locks move
    only when nothing else can."""
    over = (P > hi_sum)[g] & ~feasible[g]
    under = (P < lo_sum)[g] & ~feasible[g]
    free = ~locked
    n_free = np.bincount(g, weights=free, minlength=ng)
    # Over: hi + excess by share among free units.
    movers = np.where(n_free[g] > 0, free, True)
    wm = np.where(movers, w, 0.0)
    wsum = np.bincount(g, weights=wm, minlength=ng)
    cnt = np.bincount(g, weights=movers, minlength=ng)
    frac = np.where(wsum[g] > 0, wm / np.where(wsum[g] > 0, wsum[g], 1.0),
                    movers / np.maximum(cnt[g], 1.0))
    hi_f = np.where(np.isfinite(hi), hi, 0.0)
    excess = np.where(np.isfinite(hi_sum), P - hi_sum, 0.0)
    x_over = hi_f + excess[g] * frac
    # Under: locks kept when the rest can absorb the cut, lower bounds scaled down.
    lock_sum = np.bincount(g, weights=np.where(locked, lo, 0.0), minlength=ng)
    free_lo = np.bincount(g, weights=np.where(free, lo, 0.0), minlength=ng)
    keep_locks = (P >= lock_sum) & (free_lo > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_free = np.where(free_lo > 0, (P - lock_sum) / free_lo, 0.0)
        s_all = np.where(lo_sum > 0, P / lo_sum, 0.0)
    x_under = np.where(keep_locks[g], np.where(locked, lo, lo * s_free[g]), lo * s_all[g])
    return np.where(over, x_over, np.where(under, x_under, x))


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
    return {"factor_amounts": amounts, "unbounded": unbounded, "bounds_adjustment": bounds,
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
