"""Largest-remainder rounding that keeps sums exact, vectorised over groups.

Rule (documented, binding): within a sibling group every free unit is first floored to
a multiple of the rounding unit ``r`` (kept inside its bounds). The group's remaining
yuan ``R = parent - sum(floors)`` is handed out in order of largest remainder (ties:
lower id rank first): ``R // r`` units get one more ``r``, and when the parent is not a
multiple of ``r`` the last ``R % r`` yuan go to the next unit in that order. So every
parent equals the sum of its children exactly, bounds that are multiples of ``r`` hold,
and no value moves by ``r`` or more. Locked (fixed) units keep their exact value.
"""

from __future__ import annotations

import numpy as np

#: Remainders are compared at 2**-20 of the rounding unit (0.001 yuan for 1,000): closer
#: ones count as equal and go by id. At this resolution a unit whose remainder is 0 can
#: never be picked before one with a positive remainder in groups under 2**20 units.
REM_BITS = 20
_POS_BITS = 21  # position within a group (groups up to 2 million units)
_GROUP_BITS = 63 - 1 - REM_BITS - _POS_BITS  # 21: up to 2 million groups per level


def _order_within_groups(g: np.ndarray, starts: np.ndarray, rem: np.ndarray, r: float,
                         can_step: np.ndarray) -> np.ndarray:
    """Rank of each unit in its group: steppable first, then largest remainder, then
    input position (the caller's id order). One int64 sort, no argsort."""
    n = len(g)
    pos = np.arange(n) - starts[g]
    if len(starts) >= 1 << _GROUP_BITS or (n and pos.max() >= 1 << _POS_BITS):
        order = np.lexsort((pos, -rem, ~can_step, g))  # huge levels: the general sort
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - starts[g[order]]
        return rank
    top = (1 << REM_BITS) - 1
    q = np.clip(np.floor(rem / r * (1 << REM_BITS)), 0, top).astype(np.int64)
    key = (g.astype(np.int64) << (63 - _GROUP_BITS)) \
        | ((~can_step).astype(np.int64) << (REM_BITS + _POS_BITS)) \
        | ((top - q) << _POS_BITS) | pos
    key.sort()
    gs = key >> (63 - _GROUP_BITS)
    unit = starts[gs] + (key & ((1 << _POS_BITS) - 1))
    rank = np.empty(n, dtype=np.int64)
    rank[unit] = np.arange(n) - starts[gs]
    return rank


def round_groups(x: np.ndarray, g: np.ndarray, parent_total: np.ndarray, r: int,
                 lo: np.ndarray, hi: np.ndarray, fixed: np.ndarray,
                 strict: np.ndarray) -> np.ndarray:
    """Round ``x`` to integers summing to ``parent_total[g]`` in every group.

    ``g`` must be sorted (groups contiguous); within a group the input order breaks
    ties (callers pass units in id order). ``lo``/``hi`` are integer-valued bounds
    (multiples of ``r`` unless pinned), ``fixed`` units keep ``lo``, and ``strict[g]``
    is False for infeasible groups, where bounds cannot all hold and do not restrict
    which unit takes a step. Returns int64 yuan.
    """
    ng = len(parent_total)
    starts = np.searchsorted(g, np.arange(ng))
    strict_u = strict[g]
    base = np.floor(x / r) * r
    base = np.where(strict_u, np.clip(base, lo, hi), base)
    base = np.where(fixed, lo, base)
    rem = x - base
    need = parent_total - np.bincount(g, weights=base, minlength=ng)
    need = np.rint(need)  # integer-valued already; rint removes float dust
    # A group whose units are all fixed but still short (an infeasible lock) must move
    # fixed units too, or the sum would break.
    n_free = np.bincount(g, weights=~fixed, minlength=ng)
    movable = ~fixed | ((n_free[g] == 0) & (need[g] != 0))
    # Room to take one more unit, so feasible groups never push a unit over its bound.
    can_step = movable & (~strict_u | (base + r <= hi))
    rank = _order_within_groups(g, starts, rem, float(r), can_step)
    k = np.floor(need / r)
    left = need - k * r
    k_u, left_u = k[g], left[g]
    add = np.where(can_step & (rank < k_u), r, 0.0)
    last = movable & (rank == k_u) & (left_u > 0)
    add = add + np.where(last, left_u, 0.0)
    out = base + add
    # Safety net for float edge cases (never expected): fix any group whose sum is off,
    # one group at a time; this loops over broken groups, never over all units.
    diff = parent_total - np.bincount(g, weights=out, minlength=ng)
    for gi in np.flatnonzero(np.abs(diff) > 0.5):
        members = np.flatnonzero(g == gi)
        free = members[movable[members]]
        target = free if len(free) else members
        out[target[np.argmax(rem[target])]] += diff[gi]
    return out.astype(np.int64)


def round_rows(parts: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Round each row of ``parts`` (n x F, >= 0) to integers summing to ``totals`` (n).

    Largest remainder within the row; ties go to the earlier column.
    """
    if parts.shape[1] == 0:
        return np.zeros(parts.shape, dtype=np.int64)
    base = np.floor(parts)
    frac = parts - base
    need = totals - base.sum(axis=1)
    # A stable sort keeps column order among equal remainders: the earlier factor wins.
    order = np.argsort(-frac, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(parts.shape[1])[None, :].repeat(len(parts), 0),
                      axis=1)
    nf = parts.shape[1]
    # need is within [0, F] for non-negative parts and totals = round(sum(parts)); clamp
    # anyway and give any excess to the largest column so the identity is exact.
    k = np.clip(need, 0, nf)
    out = base + (rank < k[:, None])
    extra = need - k
    if np.any(extra):
        out[np.arange(len(parts)), np.argmax(parts, axis=1)] += extra
    return out.astype(np.int64)
