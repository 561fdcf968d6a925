"""Benchmark of the expression language: compile time, and columns versus rows.

Run: /work/venv/bin/python bench/bench_expressions.py

Prints the median compile time of typical expressions, then evaluate() over
100,000 rows against the simpleeval row-by-row reference (timed on a 2,000-row
sample and scaled to 100,000). It prints; it asserts nothing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from quotaflow.rules import ExpressionError, compile_expression

FIELDS = {
    "hist": "number",
    "avg": "number",
    "potential": "number",
    "growth": "number",
    "tenure": "integer",
    "headcount": "integer",
    "ramp": "number",
    "region": "integer",
    "active": "boolean",
}
EXPRESSIONS = [
    "min(100, hist / avg * 50)",
    "clip(growth, -0.1, 0.6) * 100",
    "0.4 * hist + 0.6 * potential if tenure >= 12 else potential",
    "headcount * ramp * 1.2 if active and region in (1, 2, 3) else 0",
    "round(sqrt(max(hist, 0)) * 10, 2)",
    "hist / avg > 1.5 and not active or tenure < 3",
]
ROWS = 100_000
SAMPLE = 2_000
HOSTILE = {
    "1 MB of text": "x" * 1_000_000,
    "10,000 nested parentheses": "(" * 10_000 + "x" + ")" * 10_000,
    "1,999 unary minus": "-" * 1_999 + "hist",
    "'hist+' * 399 (2,000 characters)": "hist+" * 399 + "hist",
    "9**9**9": "9**9**9",
}


def median_seconds(function: Callable[[], object], repeat: int, number: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        timings.append((time.perf_counter() - start) / number)
    return statistics.median(timings)


def make_columns(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "hist": rng.uniform(0, 2_000, n),
        "avg": rng.uniform(50, 1_500, n),
        "potential": rng.uniform(0, 5_000, n),
        "growth": rng.normal(0.1, 0.3, n),
        "tenure": rng.integers(0, 60, n).astype(float),
        "headcount": rng.integers(1, 40, n).astype(float),
        "ramp": rng.uniform(0.3, 1.0, n),
        "region": rng.integers(0, 6, n).astype(float),
        "active": rng.random(n) < 0.8,
    }


def main() -> None:
    print("compile (median per expression)")
    for text in EXPRESSIONS:
        seconds = median_seconds(lambda text=text: compile_expression(text, FIELDS), 15, 200)
        print(f"  {seconds * 1e6:8.1f} us  {text}")

    print("\nhostile input, rejected (median)")
    for label, text in HOSTILE.items():
        def reject(text: str = text) -> None:
            try:
                compile_expression(text, FIELDS)
            except ExpressionError:
                return
            raise AssertionError(f"not rejected: {text[:40]!r}")

        print(f"  {median_seconds(reject, 5, 5) * 1e6:8.1f} us  {label}")

    columns = make_columns(ROWS)
    sample = [{name: values[i].item() for name, values in columns.items()}
              for i in range(SAMPLE)]
    print(f"\nevaluate() over {ROWS:,} rows vs evaluate_row() on {SAMPLE:,} rows x "
          f"{ROWS // SAMPLE}")
    for text in EXPRESSIONS:
        expression = compile_expression(text, FIELDS)
        needed = {name: columns[name] for name in expression.names}
        vector = median_seconds(lambda e=expression, c=needed: e.evaluate(c), 7, 3)
        rows = median_seconds(
            lambda e=expression: [e.evaluate_row(row) for row in sample], 3, 1
        ) * (ROWS / SAMPLE)
        print(f"  columns {vector * 1e3:8.2f} ms   rows {rows * 1e3:9.1f} ms   "
              f"ratio {rows / vector:7.0f}x   {text}")


if __name__ == "__main__":
    main()
