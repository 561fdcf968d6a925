"""The exact split of every sibling group of one level (see allocation.py, step 4).

For each group g, find ``lambda_g`` with ``sum(clip(lambda_g * w, lo, hi)) = P_g`` and
return ``x = clip(lambda_g * w, lo, hi)``; groups whose bounds cannot reach their
parent's target get the closest split instead. All groups are solved at once over
numpy columns (``g`` sorted, so each group is a contiguous run).
"""

from __future__ import annotations

import numpy as np

MIN_SHARE = 1e-12  # smaller weighted shares count as 0 in the scale solve
NEWTON_STEPS = 3  # per level, before the exact breakpoint phase


def split_level(g: np.ndarray, ng: int, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                P: np.ndarray, locked: np.ndarray) -> tuple[np.ndarray, ...]:
    """Continuous split of every sibling group of one level; see the module docstring.

    ``g`` is each unit's group (sorted), ``w`` its weighted share, ``lo``/``hi`` its
    effective bounds (``lo == hi`` for fixed units), ``P`` each group's parent target.
    Returns (x, feasible per group, sum of lower bounds, sum of upper bounds).
    """
    lo_sum = np.bincount(g, weights=lo, minlength=ng)
    hi_sum = np.bincount(g, weights=hi, minlength=ng)
    feasible = (lo_sum <= P) & (hi_sum >= P)
    # Shares sum to 1 in every group, so at least one unit has w >= 1/n; a share this
    # small would only overflow the breakpoints (lo / w) and is re-spread instead.
    w = np.where(w > MIN_SHARE, w, 0.0)
    lam = _solve_scale(g, ng, w, lo, hi, P)
    with np.errstate(invalid="ignore"):  # lambda = inf (all at the upper bound) x w = 0
        x = np.where((lo < hi) & (w > 0), np.clip(lam[g] * w, lo, hi), lo)
    x = _respread(x, g, ng, lo, hi, P)

    if not feasible.all():
        x = _split_infeasible(x, g, ng, w, lo, hi, P, locked, lo_sum, hi_sum, feasible)
    return x, feasible, lo_sum, hi_sum


def _solve_scale(g: np.ndarray, ng: int, w: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 P: np.ndarray) -> np.ndarray:
    """Per group, lambda with sum(clip(lambda * w, lo, hi)) = P (``g`` sorted).

    f(lambda) is piecewise linear and non-decreasing: unit i adds slope w_i between its
    breakpoints lo_i/w_i and hi_i/w_i. Two phases, both over all groups of a level at
    once: a few Newton steps narrow each group's bracket [lambda_lo, lambda_hi] (f below
    P at one end, above at the other); then the breakpoints left inside the bracket are
    sorted and f is integrated along them from lambda_lo, which finds the exact piece.
    """
    active = (lo < hi) & (w > 0)
    wa = np.where(active, w, 0.0)
    lo_a = np.where(active, lo, 0.0)
    hi_a = np.where(active, hi, 0.0)
    base = np.bincount(g, weights=lo - lo_a, minlength=ng)  # units that cannot move
    fmin = base + np.bincount(g, weights=lo_a, minlength=ng)
    fmax = base + np.bincount(g, weights=hi_a, minlength=ng)
    lam = np.where(fmin >= P, 0.0, np.where(fmax <= P, np.inf, P))  # start: lambda = P
    todo = (fmin < P) & (fmax > P)
    tol = 1e-12 * np.abs(P) + 1e-6
    # Bracket, with f and the slope to the right at its low end (at 0: units whose lower
    # bound is 0 start moving at once).
    lam_lo = np.zeros(ng)
    lam_hi = np.full(ng, np.inf)
    f_lo = fmin.copy()
    s_lo = np.bincount(g, weights=np.where(lo_a <= 0, wa, 0.0), minlength=ng)
    units = np.flatnonzero(todo[g] & active)
    newton = todo.copy()  # groups still taking Newton steps
    for _ in range(NEWTON_STEPS):
        if len(units) == 0:
            break
        # Only the groups still stepping are evaluated (``units`` holds exactly theirs):
        # a group that left the Newton phase keeps its bracket, whatever its neighbours do.
        stepping = newton.copy()
        gu, wu, lu, hu = g[units], wa[units], lo_a[units], hi_a[units]
        xl = lam[gu] * wu
        f = base + np.bincount(gu, weights=np.clip(xl, lu, hu), minlength=ng)
        r = P - f
        todo &= ~stepping | (np.abs(r) > tol)
        up = r > 0
        # One-sided slope, on the side the step goes: a unit exactly at a bound counts
        # as free when moving away from it.
        free = np.where(up[gu], (xl >= lu) & (xl < hu), (xl > lu) & (xl <= hu))
        slope = np.bincount(gu, weights=np.where(free, wu, 0.0), minlength=ng)
        new_lo = stepping & todo & up
        lam_lo = np.where(new_lo, lam, lam_lo)
        f_lo = np.where(new_lo, f, f_lo)
        s_lo = np.where(new_lo, slope, s_lo)
        lam_hi = np.where(stepping & todo & ~up, lam, lam_hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = lam + r / slope
        # A flat piece or a step out of the bracket: the exact phase takes that group.
        newton &= todo & (slope > 0) & (step > lam_lo) & (step < lam_hi)
        lam = np.where(newton, step, lam)
        units = units[newton[gu]]
    if not todo.any():
        return lam
    # Exact phase on the breakpoints strictly inside each open bracket.
    units = np.flatnonzero(todo[g] & active)
    gu, wu = g[units], wa[units]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = lo_a[units] / wu
        b = hi_a[units] / wu
    inside_a = (a > lam_lo[gu]) & (a < lam_hi[gu])
    inside_b = (b > lam_lo[gu]) & (b < lam_hi[gu])
    ev_lam = np.concatenate([a[inside_a], b[inside_b]])
    ev_g = np.concatenate([gu[inside_a], gu[inside_b]])
    ev_d = np.concatenate([wu[inside_a], -wu[inside_b]])
    order = np.lexsort((ev_lam, ev_g))
    lam_e, g_e, d_e = ev_lam[order], ev_g[order], ev_d[order]
    ne = len(lam_e)
    pos = np.arange(ne)
    first = np.r_[True, g_e[1:] != g_e[:-1]] if ne else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, pos, 0)) if ne else pos
    cs = np.cumsum(d_e)
    slope_after = s_lo[g_e] + cs - (cs - d_e)[start]  # slope just after each event
    prev_lam = np.where(first, lam_lo[g_e], np.r_[0.0, lam_e[:-1]])
    prev_slope = np.where(first, s_lo[g_e], np.r_[0.0, slope_after[:-1]])
    inc = prev_slope * (lam_e - prev_lam)
    ci = np.cumsum(inc)
    f_e = f_lo[g_e] + ci - (ci - inc)[start]  # f at each event
    below = np.bincount(g_e, weights=f_e < P[g_e], minlength=ng).astype(np.int64)
    nev = np.bincount(g_e, minlength=ng)
    gstart = np.searchsorted(g_e, np.arange(ng))
    # The root lies after the last event still below P (or after lambda_lo if none).
    j = gstart + below - 1
    has = below > 0
    jj = np.where(has, j, 0) if ne else np.zeros(ng, np.int64)
    from_lam = np.where(has, lam_e[jj] if ne else 0.0, lam_lo)
    from_f = np.where(has, f_e[jj] if ne else 0.0, f_lo)
    from_s = np.where(has, slope_after[jj] if ne else 0.0, s_lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = from_lam + (P - from_f) / from_s
    nxt = np.where(below < nev, gstart + below, 0)
    limit = np.where(below < nev, lam_e[nxt] if ne else np.inf, lam_hi)
    exact = np.minimum(np.where(from_s > 0, exact, from_lam), limit)
    open_groups = np.zeros(ng, dtype=bool)
    open_groups[gu] = True
    return np.where(open_groups & todo, exact, lam)


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
    over = (hi_sum < P)[g] & ~feasible[g]
    under = (lo_sum > P)[g] & ~feasible[g]
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
    keep_locks = (lock_sum <= P) & (free_lo > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_free = np.where(free_lo > 0, (P - lock_sum) / free_lo, 0.0)
        s_all = np.where(lo_sum > 0, P / lo_sum, 0.0)
    x_under = np.where(keep_locks[g], np.where(locked, lo, lo * s_free[g]), lo * s_all[g])
    return np.where(over, x_over, np.where(under, x_under, x))
