"""Forecast: seasonality-adjusted run rate, its band, group sums and the backtest."""

from __future__ import annotations

import numpy as np
import pytest

from quotaflow.rules import (
    backtest,
    forecast,
    forecast_band,
    group_sum,
    linear_curve,
    run_rate,
    seasonal_curve,
)

SHAPE = np.array([1.0, 2.0, 3.0, 4.0])  # weekly shares 0.1, 0.2, 0.3, 0.4


def test_run_rate_undoes_the_curve() -> None:
    curve = seasonal_curve(SHAPE[:, None])
    assert curve.values.tolist() == pytest.approx([0, 0.1, 0.3, 0.6, 1])
    # A unit that follows the shape exactly towards 500 is forecast at 500 every week.
    cumulative = np.cumsum(SHAPE * 50)
    for week in range(1, 5):
        assert run_rate(cumulative[week - 1], week, curve) == pytest.approx(500)
    assert run_rate(np.array([30.0, 60.0]), 2, curve).tolist() == pytest.approx([100, 200])
    with pytest.raises(ValueError, match=r"within 1\.\.4"):
        run_rate(np.array([1.0]), 5, curve)


def test_run_rate_is_nan_when_nothing_is_due() -> None:
    curve = seasonal_curve(np.array([[0.0], [1.0]]))
    assert np.isnan(run_rate(np.array([5.0]), 1, curve)).all()


def test_band_from_past_quarters() -> None:
    curve = linear_curve(2)
    # Week 1 shares of 0.25 and 0.75: final / run rate at week 1 = 2 and 2/3.
    history = np.array([[1.0, 3.0], [3.0, 1.0]])
    band = forecast_band(history, curve, quantiles=(0.0, 1.0))
    assert band.low.tolist() == pytest.approx([2 / 3, 1])
    assert band.high.tolist() == pytest.approx([2, 1])
    f = forecast(np.array([10.0, 40.0]), 1, curve, band)
    assert f.point.tolist() == pytest.approx([20, 80])
    assert f.low.tolist() == pytest.approx([20 * 2 / 3, 80 * 2 / 3])
    assert f.high.tolist() == pytest.approx([40, 160])
    plain = forecast(np.array([10.0]), 2, curve)
    assert plain.low.tolist() == plain.point.tolist() == plain.high.tolist() == [10]
    with pytest.raises(ValueError, match="quantiles"):
        forecast_band(history, curve, quantiles=(0.9, 0.1))


def test_forecast_for_a_sum_of_units() -> None:
    curve = linear_curve(4)
    cumulative = np.array([10.0, 20.0, 5.0])
    totals = group_sum(cumulative, [0, 0, 1], 2)
    assert totals.tolist() == [30, 5]
    assert forecast(totals, 2, curve).point.tolist() == [60, 10]
    # Sums of units x weeks too.
    assert group_sum(np.ones((3, 2)), [1, 1, 0], 2).tolist() == [[1, 1], [2, 2]]


def test_backtest_is_exact_when_every_quarter_has_the_same_shape() -> None:
    history = np.stack([SHAPE * s for s in (10.0, 20.0, 35.0)], axis=1)  # weeks x quarters
    result = backtest(history, kind="seasonal")
    assert result.weeks.tolist() == [1, 2, 3, 4]
    assert result.wmape.tolist() == pytest.approx([0, 0, 0, 0])
    assert result.forecasts[0, :, 0].tolist() == pytest.approx([100, 200, 350])


def test_backtest_wmape_known_answer() -> None:
    # Two quarters of two weeks, linear curve: forecast at week 1 = 2 x week 1.
    # Q1 weeks (1, 3): F = 2, A = 4; Q2 weeks (3, 1): F = 6, A = 4.
    history = np.array([[1.0, 3.0], [3.0, 1.0]])
    result = backtest(history, kind="linear")
    assert result.wmape.tolist() == pytest.approx([(2 + 2) / 8, 0])
    # Leave-one-out seasonal: Q1 is forecast with Q2's shape (0.75 at week 1) and back.
    seasonal = backtest(history, kind="seasonal")
    f1, f2 = 1 / 0.75, 3 / 0.25
    assert seasonal.wmape[0] == pytest.approx((abs(f1 - 4) + abs(f2 - 4)) / 8)


def test_backtest_over_many_series_pools_the_error() -> None:
    rng = np.random.default_rng(7)
    history = rng.uniform(50, 150, size=(13, 4, 30))
    result = backtest(history, kind="linear")
    assert result.forecasts.shape == (13, 4, 30)
    assert result.wmape[-1] == pytest.approx(0)
    assert result.wmape[0] > result.wmape[11]  # more weeks seen, less error
    with pytest.raises(ValueError, match="two past quarters"):
        backtest(history[:, :1], kind="seasonal")
    with pytest.raises(ValueError, match="kind"):
        backtest(history, kind="cubic")


def test_backtest_on_the_demo_history_per_person() -> None:
    import csv
    from pathlib import Path

    seed = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data"
    with open(seed / "weekly_history.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    people = sorted({r["unit_code"] for r in rows})
    quarters = sorted({r["period"] for r in rows})
    history = np.zeros((13, len(quarters), len(people)))
    p_at = {p: i for i, p in enumerate(people)}
    q_at = {q: i for i, q in enumerate(quarters)}
    for r in rows:
        history[int(r["week"]) - 1, q_at[r["period"]], p_at[r["unit_code"]]] = float(r["sales"])
    seasonal = backtest(history, kind="seasonal")
    linear = backtest(history, kind="linear")
    assert seasonal.wmape[-1] == pytest.approx(0) and linear.wmape[-1] == pytest.approx(0)
    assert (seasonal.wmape[:12] > 0).all() and seasonal.wmape[5] < seasonal.wmape[0]
    # The demo's weeks are seasonal (slow start, end-of-quarter push): the seasonal
    # curve forecasts better than the linear one from the middle of the quarter on.
    assert seasonal.wmape[5] < linear.wmape[5]
