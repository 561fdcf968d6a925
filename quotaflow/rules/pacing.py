"""Pacing curves and the red line: where a unit should be by week t of the quarter.

A pacing curve C gives, for t = 0..T weeks, the share of the quarter's result that
should be in by the end of week t (C(0) = 0, C(T) = 1, non-decreasing). It is linear
(t / T) or seasonal: the mean, over past quarters, of each quarter's cumulative share
by week, pooled over units. Every metric here is computed for all units at once on
arrays of shape units x weeks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.specs import SpecError, read_json, schema_issues

DEFAULT_WEEKS = 13


class PacingError(SpecError):
    kind = "pacing curve"


@dataclass(frozen=True, eq=False)
class PacingCurve:
    """C(t) for t = 0..weeks: ``values[t]`` is the share due by the end of week t."""

    kind: str
    values: np.ndarray

    @property
    def weeks(self) -> int:
        return len(self.values) - 1

    def at(self, week: int | np.ndarray) -> np.ndarray:
        """C at the given week(s), 0..weeks."""
        return self.values[np.asarray(week, dtype=np.int64)]


def linear_curve(weeks: int = DEFAULT_WEEKS) -> PacingCurve:
    """C(t) = t / weeks."""
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, not {weeks}")
    return PacingCurve("linear", np.arange(weeks + 1, dtype=np.float64) / weeks)


def seasonal_curve(history: np.ndarray) -> PacingCurve:
    """The curve from past quarters' weekly results, a weeks x quarters matrix.

    Each quarter's cumulative share by week counts equally (a large quarter does not
    outweigh a small one); quarters with no result are left out.
    """
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] < 1:
        raise ValueError(f"history must be a weeks x quarters matrix, not shape {h.shape}")
    if not np.isfinite(h).all() or (h < 0).any():
        raise ValueError("history must hold finite, non-negative weekly results")
    totals = h.sum(axis=0)
    used = totals > 0
    if not used.any():
        raise ValueError("history has no quarter with a result")
    shares = np.cumsum(h[:, used], axis=0) / totals[used]
    values = np.concatenate(([0.0], shares.mean(axis=1)))
    values = np.minimum(np.maximum.accumulate(values), 1.0)
    values[-1] = 1.0
    return PacingCurve("seasonal", values)


def load_pacing_curve(source: str | Path | Mapping[str, Any], *,
                      history: np.ndarray | None = None) -> PacingCurve:
    """Validate a pacing-curve spec and build its curve (seasonal needs ``history``)."""
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("pacing-curve", doc)
    if issues:
        raise PacingError(issues)
    weeks = int(doc.get("weeks", DEFAULT_WEEKS))
    if doc["kind"] == "linear":
        return linear_curve(weeks)
    if history is None:
        raise PacingError("a seasonal curve needs the weekly history", pointer="/source",
                          code="missing_history")
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != weeks:
        raise PacingError(f"the history has shape {h.shape}, expected {weeks} weeks x quarters",
                          pointer="/weeks", code="history_shape")
    try:
        return seasonal_curve(h)
    except ValueError as exc:
        raise PacingError(str(exc), pointer="/source", code="bad_history") from None


def weekly_matrix(weeks: Sequence[int] | np.ndarray, quarters: Sequence[Any] | np.ndarray,
                  sales: Sequence[float] | np.ndarray, n_weeks: int = DEFAULT_WEEKS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Pool long rows (week 1..n, quarter label, sales) into a weeks x quarters matrix.

    Returns the matrix and the sorted quarter labels of its columns.
    """
    w = np.asarray(weeks, dtype=np.int64)
    labels, q = np.unique(np.asarray(quarters), return_inverse=True)
    if ((w < 1) | (w > n_weeks)).any():
        raise ValueError(f"weeks must be within 1..{n_weeks}")
    out = np.zeros((n_weeks, len(labels)))
    np.add.at(out, (w - 1, q), np.asarray(sales, dtype=np.float64))
    return out, labels


def safe_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, with 0 where b is 0 (no red line yet means nothing is due)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


@dataclass(frozen=True, eq=False)
class WeeklyMetrics:
    """Per-unit metrics by week: every column has shape units x weeks (week 1 first).

    ``codes`` and ``levels`` name the rows; ``names_en``/``names_zh`` are optional
    display names. Columns: target, week, curve, red_line, week_actual, actual
    (cumulative), gap, attainment, pace, streak (consecutive weeks under the red line,
    up to and including that week), plus any extra columns given.
    """

    codes: np.ndarray
    levels: np.ndarray
    columns: dict[str, np.ndarray]
    names_en: np.ndarray | None = None
    names_zh: np.ndarray | None = None
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.index:
            self.index.update({str(c): i for i, c in enumerate(self.codes.tolist())})

    @property
    def weeks(self) -> int:
        return next(iter(self.columns.values())).shape[1]

    def at(self, week: int) -> dict[str, np.ndarray]:
        """Every column at one week (1-based): name -> array over units."""
        return {k: v[:, week - 1] for k, v in self.columns.items()}


def run_lengths(flags: np.ndarray) -> np.ndarray:
    """For a units x weeks boolean array: how many consecutive True end at each week."""
    f = np.asarray(flags, dtype=bool)
    counts = np.cumsum(f, axis=1, dtype=np.int64)
    # At every False the count so far is a reset point; subtract the latest reset.
    resets = np.maximum.accumulate(np.where(f, 0, counts), axis=1)
    return counts - resets


def pacing_metrics(codes: Sequence[str] | np.ndarray, levels: Sequence[str] | np.ndarray,
                   targets: Sequence[float] | np.ndarray, weekly_actuals: np.ndarray,
                   curve: PacingCurve, *, names_en: Sequence[str] | None = None,
                   names_zh: Sequence[str] | None = None,
                   extra: Mapping[str, np.ndarray] | None = None) -> WeeklyMetrics:
    """Red line, gap, attainment and pace for every unit and week so far.

    ``weekly_actuals`` is units x weeks (each week's own result, weeks 1..t, t <= T);
    ``extra`` columns are units (broadcast over weeks) or units x weeks.
    """
    actual_week = np.asarray(weekly_actuals, dtype=np.float64)
    n_units = len(codes)
    if actual_week.ndim != 2 or actual_week.shape[0] != n_units:
        raise ValueError(f"weekly_actuals must be {n_units} units x weeks, "
                         f"not shape {actual_week.shape}")
    n_weeks = actual_week.shape[1]
    if n_weeks > curve.weeks:
        raise ValueError(f"{n_weeks} weeks of actuals but the curve has {curve.weeks}")
    target = np.broadcast_to(np.asarray(targets, dtype=np.float64)[:, None], actual_week.shape)
    week = np.broadcast_to(np.arange(1, n_weeks + 1, dtype=np.float64), actual_week.shape)
    c = np.broadcast_to(curve.values[1:n_weeks + 1], actual_week.shape)
    actual = np.cumsum(actual_week, axis=1)
    red_line = target * c
    gap = red_line - actual
    columns = {
        "target": np.array(target), "week": np.array(week), "curve": np.array(c),
        "red_line": red_line, "week_actual": actual_week, "actual": actual, "gap": gap,
        "attainment": safe_ratio(actual, target), "pace": safe_ratio(actual, red_line),
        "streak": run_lengths(gap > 0).astype(np.float64),
    }
    for name, values in (extra or {}).items():
        v = np.asarray(values, dtype=np.float64)
        columns[name] = np.array(np.broadcast_to(v[:, None] if v.ndim == 1 else v,
                                                 actual_week.shape))
    return WeeklyMetrics(np.asarray(codes, dtype=object), np.asarray(levels, dtype=object),
                         columns,
                         None if names_en is None else np.asarray(names_en, dtype=object),
                         None if names_zh is None else np.asarray(names_zh, dtype=object))
