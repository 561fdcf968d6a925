"""Where the quarter will land: seasonality-adjusted run rate, its band and its backtest.

The run rate at week t is the cumulative result divided by C(t), the pacing curve's
share due by then. The band multiplies it by quantiles of final / run rate at week t
seen in past quarters. The backtest replays past quarters week by week and reports
the weighted mean absolute percentage error (sum |F - A| / sum A) for every t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quotaflow.rules.pacing import PacingCurve, linear_curve, seasonal_curve

DEFAULT_QUANTILES = (0.1, 0.9)


@dataclass(frozen=True, eq=False)
class ForecastBand:
    """Multipliers of the run rate by week (index t - 1): low, high and their quantiles."""

    low: np.ndarray
    high: np.ndarray
    quantiles: tuple[float, float]


@dataclass(frozen=True, eq=False)
class Forecast:
    """Point forecast of the quarter and its band, shaped like the cumulative input."""

    week: int
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True, eq=False)
class Backtest:
    """WMAPE of the forecast made at each week t = 1..T over past quarters and series."""

    weeks: np.ndarray
    wmape: np.ndarray
    forecasts: np.ndarray  # weeks x quarters x series


def run_rate(cumulative: np.ndarray, week: int, curve: PacingCurve) -> np.ndarray:
    """Cumulative result at ``week`` / C(week); NaN where nothing is due yet."""
    if not 1 <= week <= curve.weeks:
        raise ValueError(f"week must be within 1..{curve.weeks}, not {week}")
    a = np.asarray(cumulative, dtype=np.float64)
    c = float(curve.values[week])
    return a / c if c > 0 else np.full(a.shape, np.nan)


def _run_rates(history: np.ndarray, curve_values: np.ndarray) -> np.ndarray:
    """Run rates at every week of weeks x ... histories (weeks first)."""
    c = curve_values[1:].reshape((-1,) + (1,) * (history.ndim - 1))
    cum = np.cumsum(history, axis=0)
    out = np.full(cum.shape, np.nan)
    np.divide(cum, c, out=out, where=c > 0)
    return out


def forecast_band(history: np.ndarray, curve: PacingCurve,
                  quantiles: tuple[float, float] = DEFAULT_QUANTILES) -> ForecastBand:
    """Quantiles over past quarters of final / run rate at each week.

    ``history`` is weeks x quarters (one series, e.g. pooled over units). Quarters whose
    run rate is zero at a week are left out there; with none left the band is 1.
    """
    h = _check_history(history, curve)
    lo_q, hi_q = quantiles
    if not 0 <= lo_q <= hi_q <= 1:
        raise ValueError(f"quantiles must satisfy 0 <= low <= high <= 1, not {quantiles}")
    rates = _run_rates(h, curve.values)
    final = h.sum(axis=0)
    ratios = np.full(rates.shape, np.nan)
    np.divide(final, rates, out=ratios, where=np.isfinite(rates) & (rates > 0))
    known = np.isfinite(ratios).any(axis=1)
    low = np.ones(curve.weeks)
    high = np.ones(curve.weeks)
    if known.any():
        low[known] = np.nanquantile(ratios[known], lo_q, axis=1)
        high[known] = np.nanquantile(ratios[known], hi_q, axis=1)
    return ForecastBand(low, high, (float(lo_q), float(hi_q)))


def forecast(cumulative: np.ndarray, week: int, curve: PacingCurve,
             band: ForecastBand | None = None) -> Forecast:
    """Forecast the quarter from results to date, for units or any sums of them.

    ``cumulative`` is the result to date per unit (or per group: sum units first, see
    :func:`group_sum`). Without a band, low = high = the point forecast.
    """
    point = run_rate(cumulative, week, curve)
    if band is None:
        return Forecast(week, point, point.copy(), point.copy())
    return Forecast(week, point, point * band.low[week - 1], point * band.high[week - 1])


def group_sum(values: np.ndarray, groups: Sequence[int] | np.ndarray, n_groups: int
              ) -> np.ndarray:
    """Sum the rows of a units (x ...) array into ``n_groups`` groups by group index."""
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros((n_groups, *v.shape[1:]))
    np.add.at(out, np.asarray(groups, dtype=np.int64), v)
    return out


def backtest(history: np.ndarray, *, kind: str = "seasonal",
             weeks: int | None = None) -> Backtest:
    """Replay past quarters: forecast each from weeks 1..t and measure WMAPE per t.

    ``history`` is weeks x quarters or weeks x quarters x series (e.g. units). A
    seasonal curve for quarter q is built from the other quarters only (pooled over
    series), so no quarter forecasts itself with its own shape.
    """
    h = np.asarray(history, dtype=np.float64)
    if h.ndim == 2:
        h = h[:, :, None]
    if h.ndim != 3:
        raise ValueError(f"history must be weeks x quarters (x series), not shape {h.shape}")
    n_weeks, n_q, _ = h.shape
    if weeks is not None and weeks != n_weeks:
        raise ValueError(f"history has {n_weeks} weeks, not {weeks}")
    if kind not in ("linear", "seasonal"):
        raise ValueError(f"kind must be 'linear' or 'seasonal', not {kind!r}")
    if kind == "seasonal" and n_q < 2:
        raise ValueError("a seasonal backtest needs at least two past quarters")
    pooled = h.sum(axis=2)
    forecasts = np.empty(h.shape)
    for q in range(n_q):  # a handful of quarters; every series and week at once
        if kind == "linear":
            curve = linear_curve(n_weeks)
        else:
            curve = seasonal_curve(np.delete(pooled, q, axis=1))
        forecasts[:, q, :] = _run_rates(h[:, q, :], curve.values)
    actual = np.broadcast_to(h.sum(axis=0), h.shape)
    err = np.where(np.isfinite(forecasts), np.abs(forecasts - actual), actual)
    total = actual.sum(axis=(1, 2))
    wmape = np.full(n_weeks, np.nan)
    np.divide(err.sum(axis=(1, 2)), total, out=wmape, where=total > 0)
    return Backtest(np.arange(1, n_weeks + 1), wmape, forecasts)


def _check_history(history: np.ndarray, curve: PacingCurve) -> np.ndarray:
    h = np.asarray(history, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != curve.weeks:
        raise ValueError(f"history must be {curve.weeks} weeks x quarters, not shape {h.shape}")
    return h
