"""Pacing curves and the red line: linear, seasonal from the demo history, metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from quotaflow.rules import (
    PacingError,
    linear_curve,
    load_pacing_curve,
    pacing_metrics,
    seasonal_curve,
    weekly_matrix,
)
from quotaflow.rules.pacing import run_lengths

SEED = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data"


def demo_weekly_history() -> np.ndarray:
    with open(SEED / "weekly_history.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    matrix, labels = weekly_matrix([int(r["week"]) for r in rows], [r["period"] for r in rows],
                                   [float(r["sales"]) for r in rows])
    assert labels.tolist() == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    return matrix


def test_linear_curve() -> None:
    c = linear_curve(13)
    assert c.weeks == 13
    assert c.values[0] == 0 and c.values[-1] == 1
    assert c.at(6) == pytest.approx(6 / 13)
    assert np.allclose(np.diff(c.values), 1 / 13)


def test_seasonal_curve_from_demo_history_is_monotone_and_ends_at_one() -> None:
    curve = load_pacing_curve(SEED / "specs" / "pacing_curve.json",
                              history=demo_weekly_history())
    assert curve.kind == "seasonal" and curve.weeks == 13
    assert curve.values[0] == 0 and curve.values[-1] == 1
    assert (np.diff(curve.values) >= 0).all()
    # The demo's quarters start slow and push at the end.
    assert curve.values[1] < 1 / 13
    assert curve.values[13] - curve.values[12] > 1 / 13


def test_seasonal_curve_weights_quarters_equally() -> None:
    # Quarter A puts everything in week 1, quarter B (10x larger) spreads evenly.
    h = np.array([[5.0, 10.0], [0.0, 10.0]])
    c = seasonal_curve(h)
    assert c.values.tolist() == pytest.approx([0, 0.75, 1])
    assert seasonal_curve(np.c_[h, np.zeros(2)]).values.tolist() == pytest.approx([0, 0.75, 1])


def test_seasonal_curve_rejects_bad_history() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        seasonal_curve(np.array([[1.0], [-1.0]]))
    with pytest.raises(ValueError, match="no quarter"):
        seasonal_curve(np.zeros((13, 2)))


def test_spec_errors_carry_pointers() -> None:
    with pytest.raises(PacingError) as err:
        load_pacing_curve({"kind": "seasonal"})
    assert err.value.pointer == "" and "source" in err.value.message
    with pytest.raises(PacingError) as err:
        load_pacing_curve({"kind": "linear", "weeks": 0})
    assert err.value.pointer == "/weeks"
    with pytest.raises(PacingError) as err:
        load_pacing_curve({"kind": "seasonal", "source": "history"})
    assert err.value.code == "missing_history"
    with pytest.raises(PacingError) as err:
        load_pacing_curve({"kind": "seasonal", "source": "history"}, history=np.ones((4, 2)))
    assert err.value.pointer == "/weeks"
    assert load_pacing_curve({"kind": "linear", "weeks": 4}).values.tolist() == [
        0, 0.25, 0.5, 0.75, 1]


def test_red_line_gap_attainment_pace() -> None:
    curve = linear_curve(4)
    weekly = np.array([[10.0, 10.0, 10.0], [30.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = pacing_metrics(["A", "B", "C"], ["team"] * 3, [40.0, 80.0, 0.0], weekly, curve)
    c = m.columns
    assert m.weeks == 3
    assert c["red_line"].tolist() == [[10, 20, 30], [20, 40, 60], [0, 0, 0]]
    assert c["actual"].tolist() == [[10, 20, 30], [30, 30, 30], [0, 0, 0]]
    assert c["gap"].tolist() == [[0, 0, 0], [-10, 10, 30], [0, 0, 0]]
    assert c["attainment"][:, 2].tolist() == pytest.approx([0.75, 0.375, 0])
    assert c["pace"][1].tolist() == pytest.approx([1.5, 0.75, 0.5])
    assert c["pace"][2].tolist() == [0, 0, 0]  # no target: nothing due, no division error
    assert c["streak"].tolist() == [[0, 0, 0], [0, 1, 2], [0, 0, 0]]
    assert c["week"][0].tolist() == [1, 2, 3]
    assert m.at(2)["pace"].tolist() == pytest.approx([1, 0.75, 0])
    assert m.index["B"] == 1


def test_metrics_check_shapes_and_take_extra_columns() -> None:
    curve = linear_curve(2)
    with pytest.raises(ValueError, match="units x weeks"):
        pacing_metrics(["A"], ["team"], [1.0], np.ones((2, 2)), curve)
    with pytest.raises(ValueError, match="curve has 2"):
        pacing_metrics(["A"], ["team"], [1.0], np.ones((1, 3)), curve)
    m = pacing_metrics(["A"], ["team"], [1.0], np.ones((1, 2)), curve,
                       extra={"headcount": np.array([7.0])})
    assert m.columns["headcount"].tolist() == [[7, 7]]


def test_run_lengths() -> None:
    flags = np.array([[1, 1, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    assert run_lengths(flags).tolist() == [[1, 2, 0, 1, 2, 3], [0, 0, 0, 0, 0, 1],
                                           [1, 2, 3, 4, 5, 6]]
