"""Property: the column evaluator and the simpleeval row reference always agree.

Hypothesis builds random well-typed expressions (arithmetic, powers, functions, a
plugin function, comparisons, and/or/not, membership, if/else) and random columns
with zeros and negatives; both evaluators must give the same values, or fail with
the same error code, column and first row.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quotaflow.rules import ExpressionError, compile_expression
from quotaflow.rules.functions import FunctionRegistry

FIELDS = {"a": "number", "b": "number", "c": "number", "k": "integer", "f": "boolean",
          "g": "boolean"}
NUMBER_LEAVES = ["a", "b", "c", "k", "0", "1", "2", "3", "0.5", "10", "(-1)", "2.5", "1e-3"]
BOOLEAN_LEAVES = ["f", "g", "True", "False"]
# A plugin function: called only on the rows that need it, failing ("domain") at 0.
REGISTRY = FunctionRegistry()
REGISTRY.register("inverse", scalar=lambda x: 1 / x, vector=lambda x: 1 / x)
VALUES = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, 10.0, 1e-3, 100.0, 7.25, -13.5, 1e6]


ARITHMETIC = ["+", "-", "*", "/", "//", "%"]
EXPONENTS = ["2", "3", "0.5", "-1", "-2", "(1/3)", "0", "4"]
UNARY_FUNCTIONS = ["abs", "floor", "ceil", "log", "exp", "sqrt", "round", "inverse"]
ORDER = ["<", "<=", ">", ">=", "==", "!="]


def number(draw: st.DrawFn, depth: int) -> str:
    """A random number-typed expression at most ``depth`` levels deep."""
    choice = draw(st.integers(0, 9)) if depth > 0 else 0
    x = functools.partial(number, draw, depth - 1)
    if choice == 0:
        return draw(st.sampled_from(NUMBER_LEAVES))
    if choice == 1:
        return f"({x()} {draw(st.sampled_from(ARITHMETIC))} {x()})"
    if choice == 2:
        return f"(-{x()})"
    if choice == 3:
        return f"({x()} ** {draw(st.sampled_from(EXPONENTS))})"
    if choice == 4:
        return f"{draw(st.sampled_from(UNARY_FUNCTIONS))}({x()})"
    if choice == 5:
        return f"round({x()}, {draw(st.sampled_from(['1', '2', '-1', '0']))})"
    if choice == 6:
        return f"min({x()}, {x()})"
    if choice == 7:
        return f"max({x()}, {x()}, {x()})"
    if choice == 8:
        return f"clip({x()}, {x()}, {x()})"
    return f"({x()} if {boolean(draw, depth - 1)} else {x()})"


def boolean(draw: st.DrawFn, depth: int) -> str:
    """A random boolean-typed expression at most ``depth`` levels deep."""
    choice = draw(st.integers(0, 9)) if depth > 0 else 0
    x = functools.partial(number, draw, depth - 1)
    p = functools.partial(boolean, draw, depth - 1)
    order = functools.partial(draw, st.sampled_from(ORDER))
    if choice == 0:
        return draw(st.sampled_from(BOOLEAN_LEAVES))
    if choice == 1:
        return f"({x()} {order()} {x()})"
    if choice == 2:
        return f"({x()} {order()} {x()} {order()} {x()})"
    if choice == 3:
        return f"({p()} {draw(st.sampled_from(['==', '!=']))} {p()})"
    if choice == 4:
        return f"({x()} in (0, 1, 2))"
    if choice == 5:
        return f"({x()} not in (-1, 0.5))"
    if choice == 6:
        return f"({p()} and {p()})"
    if choice == 7:
        return f"({p()} or {p()} or {p()})"
    if choice == 8:
        return f"(not {p()})"
    return f"({p()} if {p()} else {p()})"


@st.composite
def expressions(draw: st.DrawFn) -> str:
    depth = draw(st.integers(1, 4))
    return number(draw, depth) if draw(st.booleans()) else boolean(draw, depth)


@st.composite
def tables(draw: st.DrawFn) -> dict[str, list]:
    n = draw(st.integers(1, 8))
    number = st.one_of(st.sampled_from(VALUES), st.floats(-1e3, 1e3))
    return {
        "a": draw(st.lists(number, min_size=n, max_size=n)),
        "b": draw(st.lists(number, min_size=n, max_size=n)),
        "c": draw(st.lists(number, min_size=n, max_size=n)),
        "k": draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)),
        "f": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "g": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
    }


def row_by_row(expression, table: dict[str, list]) -> tuple[list, ExpressionError | None]:
    results = []
    for index in range(len(table["a"])):
        row = {name: values[index] for name, values in table.items()}
        try:
            results.append(expression.evaluate_row(row, row=index))
        except ExpressionError as error:
            return results, error
    return results, None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=expressions(), table=tables())
def test_columns_agree_with_rows(text: str, table: dict[str, list]) -> None:
    try:
        expression = compile_expression(text, FIELDS, functions=REGISTRY)
    except ExpressionError as error:  # a constant power that fails, e.g. 0 ** -1
        assert error.code in ("division_by_zero", "not_finite", "domain"), error
        assume(False)
    columns = {name: np.array(values) for name, values in table.items()}
    try:
        vector = expression.evaluate(columns, size=len(table["a"]))
        vector_error = None
    except ExpressionError as error:
        vector, vector_error = None, error
    rows, row_error = row_by_row(expression, table)

    if vector_error is not None or row_error is not None:
        assert vector_error is not None and row_error is not None, (vector_error, row_error)
        assert (vector_error.code, vector_error.row, vector_error.column) == (
            row_error.code, row_error.row, row_error.column)
        assert vector_error.message == row_error.message
        return
    assert len(vector) == len(rows)
    if expression.result_type == "boolean":
        assert vector.dtype == np.bool_
        assert vector.tolist() == rows
    else:
        assert vector.dtype == np.float64
        for got, want in zip(vector.tolist(), rows, strict=True):
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (got, want)
