"""The split of one level's sibling groups (rules/solver.py) keeps its contract for every
group, whatever is solved beside it (issue 12 §1).

The contract, per group with a feasible parent target P: ``x = clip(lambda * w, lo, hi)``
with ``sum(x) = P``. Checked three ways on generated levels (ties, zero shares, narrow
and pinned intervals, open upper bounds, locks, many groups):

* solving all groups together equals solving each group alone;
* optimality (KKT): the free units share one ``lambda * w``, a unit at its upper bound
  has ``lambda * w >= hi`` and one at its lower bound ``lambda * w <= lo``;
* an independent per-group reference (bisection on lambda) gives the same split.

The level in tests/rules/data/solver_level.npz is the reported defect: 78 people in 12
teams, where team 10 got another answer when solved together than alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quotaflow.rules.solver import MIN_SHARE, split_level

REPRO = Path(__file__).with_name("data") / "solver_level.npz"
# Tolerances: the solver works in floating point on yuan amounts up to ~1e9.
ABS = 1e-3


def _alone(g, w, lo, hi, P, locked, group: int) -> np.ndarray:
    rows = np.flatnonzero(g == group)
    x, *_ = split_level(np.zeros(len(rows), dtype=np.int64), 1, w[rows], lo[rows], hi[rows],
                        P[group:group + 1], locked[rows])
    return x


def _reference(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, P: float) -> np.ndarray:
    """One group by bisection on lambda: independent of the solver's breakpoint search."""
    movable = (lo < hi) & (w > MIN_SHARE)
    fixed = np.where(movable, 0.0, lo)

    def total(lam: float) -> float:
        return float(np.sum(np.where(movable, np.clip(lam * w, lo, hi), fixed)))

    low, high = 0.0, 1.0
    while total(high) < P and high < 1e30:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if total(mid) < P:
            low = mid
        else:
            high = mid
    return np.where(movable, np.clip(high * w, lo, hi), fixed)


@st.composite
def levels(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Sibling groups of one level with shares, bounds, locks and feasible parent targets."""
    ng = draw(st.integers(1, 14))
    sizes = [draw(st.integers(1, 8)) for _ in range(ng)]
    g = np.repeat(np.arange(ng), sizes)
    n = len(g)
    raw = np.array([draw(st.sampled_from([0.0, 1.0, 1.0, 2.0, 3.0, 7.5, 10.0, 0.001]))
                    for _ in range(n)])
    sums = np.bincount(g, weights=raw, minlength=ng)
    raw = np.where(sums[g] > 0, raw, 1.0)  # every group has some share
    w = raw / np.bincount(g, weights=raw, minlength=ng)[g]
    lo = np.array([draw(st.sampled_from([0.0, 0.0, 100_000.0, 384_000.0, 650_000.0]))
                   for _ in range(n)])
    width = np.array([draw(st.sampled_from([0.0, 1.0, 15_000.0, 30_000.0, 200_000.0,
                                            1_000_000.0, np.inf])) for _ in range(n)])
    hi = lo + width
    locked = np.array([draw(st.booleans()) for _ in range(n)]) & (width == 0)
    lo_sum = np.bincount(g, weights=lo, minlength=ng)
    hi_sum = np.bincount(g, weights=np.where(np.isfinite(hi), hi, lo + 5e6), minlength=ng)
    where = np.array([draw(st.floats(0, 1)) for _ in range(ng)])
    P = np.round(lo_sum + where * (hi_sum - lo_sum))
    return g, ng, w, lo, hi, P, locked


def _kkt_holds(x: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> bool:
    """Whether one lambda gives every movable unit its amount as clip(lambda * w, lo, hi):
    the free units share lambda * w, a unit at its upper bound has lambda * w >= hi and one
    at its lower bound lambda * w <= lo (within float dust of the group's scale)."""
    movable = (lo < hi) & (w > MIN_SHARE)
    if not movable.any():
        return True
    scale = max(1.0, float(np.max(np.abs(x))))
    tol = 1e-9 * scale
    inside = movable & (x > lo + tol) & (x < hi - tol)
    if inside.any():
        lam = float(np.median(x[inside] / w[inside]))
    else:  # every unit at a bound: the smallest lambda that puts the upper ones there
        at_hi = movable & (x >= hi - tol) & np.isfinite(hi)
        lam = float((hi[at_hi] / w[at_hi]).max(initial=0.0))
    with np.errstate(invalid="ignore"):
        expected = np.clip(lam * w[movable], lo[movable], hi[movable])
    return bool(np.all(np.abs(expected - x[movable]) <= 1e-7 * scale))


def test_the_reported_level_gets_the_water_filling_answer() -> None:
    data = np.load(REPRO)
    g, ng, w, lo, hi, P, locked = (data[k] for k in ("g", "ng", "w", "lo", "hi", "P", "locked"))
    x, feasible, *_ = split_level(g, int(ng), w, lo, hi, P, locked)
    assert feasible.all()
    np.testing.assert_allclose(np.round(x[g == 10]), [399_000, 650_000, 400_545, 470_455])
    for group in range(int(ng)):
        rows = g == group
        np.testing.assert_allclose(x[rows], _alone(g, w, lo, hi, P, locked, group),
                                   rtol=1e-9, atol=ABS)
        assert _kkt_holds(x[rows], w[rows], lo[rows], hi[rows]), group


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels())
def test_together_equals_alone(level) -> None:
    g, ng, w, lo, hi, P, locked = level
    x, *_ = split_level(g, ng, w, lo, hi, P, locked)
    for group in range(ng):
        rows = g == group
        np.testing.assert_allclose(x[rows], _alone(g, w, lo, hi, P, locked, group),
                                   rtol=1e-9, atol=ABS)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels())
def test_each_group_is_optimal_and_exact(level) -> None:
    g, ng, w, lo, hi, P, locked = level
    x, feasible, *_ = split_level(g, ng, w, lo, hi, P, locked)
    assert feasible.all()
    sums = np.bincount(g, weights=x, minlength=ng)
    np.testing.assert_allclose(sums, P, rtol=1e-9, atol=ABS)
    assert np.all(x >= lo - ABS) and np.all(x <= hi + ABS)
    for group in range(ng):
        rows = g == group
        assert _kkt_holds(x[rows], w[rows], lo[rows], hi[rows]), (group, x[rows])


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels())
def test_an_independent_reference_agrees(level) -> None:
    g, ng, w, lo, hi, P, locked = level
    x, *_ = split_level(g, ng, w, lo, hi, P, locked)
    for group in range(ng):
        rows = g == group
        expected = _reference(w[rows], lo[rows], hi[rows], float(P[group]))
        if abs(expected.sum() - P[group]) > ABS:
            continue  # only zero-share units could take the rest: the solver re-spreads it
        np.testing.assert_allclose(x[rows], expected, rtol=1e-6, atol=1.0)
