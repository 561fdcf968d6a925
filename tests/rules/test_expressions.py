"""Unit tests of the expression language: syntax, types, limits, runtime errors, plugins."""

from __future__ import annotations

import ast
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from quotaflow.rules import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules import expressions as expr_module
from quotaflow.rules.functions import BUILTIN_FUNCTIONS, FunctionRegistry

FIELDS = {
    "a": "number",
    "b": "number",
    "c": "number",
    "hist": "number",
    "avg": "number",
    "k": "integer",
    "f": "boolean",
    "g": "boolean",
}


def columns(**values: object) -> dict[str, np.ndarray]:
    return {name: np.asarray(value) for name, value in values.items()}


def both(text: str, fields: dict[str, str] = FIELDS, **values: object) -> list:
    """Evaluate with both evaluators, check they agree, and return the values."""
    expression = compile_expression(text, fields)
    cols = columns(**values)
    n = max((len(v) for v in cols.values() if v.ndim == 1), default=1)
    vector = expression.evaluate(cols, size=n)
    rows = [
        expression.evaluate_row({k: (v[i] if v.ndim else v.item()) for k, v in cols.items()})
        for i in range(n)
    ]
    if expression.result_type == "boolean":
        assert vector.dtype == np.bool_
        assert vector.tolist() == rows
    else:
        assert vector.dtype == np.float64
        assert all(isinstance(value, float) for value in rows)
        np.testing.assert_allclose(vector, rows, rtol=1e-12)
    return vector.tolist()


def compile_error(text: str, fields: dict[str, str] = FIELDS, **kwargs: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, fields, **kwargs)
    return info.value


def runtime_errors(text: str, fields: dict[str, str] = FIELDS, **values: object
                   ) -> tuple[ExpressionError, ExpressionError]:
    """The error of evaluate() and of the first failing evaluate_row(); they must match."""
    expression = compile_expression(text, fields)
    cols = columns(**values)
    with pytest.raises(ExpressionError) as vector:
        expression.evaluate(cols)
    n = max(len(v) for v in cols.values())
    row_error = None
    for i in range(n):
        try:
            expression.evaluate_row({k: v[i] for k, v in cols.items()}, row=i)
        except ExpressionError as error:
            row_error = error
            break
    assert row_error is not None, "evaluate_row did not fail"
    v = vector.value
    assert (v.code, v.row, v.column, v.message) == (
        row_error.code, row_error.row, row_error.column, row_error.message)
    return v, row_error


# --- the public API -----------------------------------------------------------------


def test_the_documented_example() -> None:
    e = compile_expression("min(100, hist / avg * 50)", fields={"hist": "number", "avg": "number"})
    assert isinstance(e, CompiledExpression)
    assert e.names == ("avg", "hist")
    assert e.text == "min(100, hist / avg * 50)"
    assert e.result_type == "number"
    assert e.functions == ("min",)
    out = e.evaluate({"hist": np.array([3.0, 1.0, 4.0]), "avg": np.array([2.0, 4.0, 1.0])})
    assert out.dtype == np.float64
    assert out.tolist() == [75.0, 12.5, 100.0]
    assert e.evaluate_row({"hist": 3.0, "avg": 2.0}) == 75.0


def test_names_are_sorted_and_unique() -> None:
    e = compile_expression("b + a + b * a if f else c", FIELDS)
    assert e.names == ("a", "b", "c", "f")


def test_scalars_broadcast_and_size() -> None:
    e = compile_expression("a * b", FIELDS)
    assert e.evaluate({"a": 2.0, "b": np.array([1.0, 2.0, 3.0])}).tolist() == [2.0, 4.0, 6.0]
    assert e.evaluate({"a": 2.0, "b": 3.0}).tolist() == [6.0]
    assert e.evaluate({"a": 2.0, "b": 3.0}, size=3).tolist() == [6.0, 6.0, 6.0]
    constant = compile_expression("1 + 2", FIELDS)
    assert constant.names == ()
    assert constant.evaluate({}).tolist() == [3.0]
    assert constant.evaluate({}, size=4).tolist() == [3.0] * 4
    assert compile_expression("True", FIELDS).evaluate({}, size=2).tolist() == [True, True]
    assert compile_expression("a", FIELDS).evaluate({"a": []}).tolist() == []


def test_result_is_a_fresh_array() -> None:
    source = np.array([1.0, 2.0])
    out = compile_expression("a", FIELDS).evaluate({"a": source})
    out[0] = 99.0
    assert source[0] == 1.0
    flags = np.array([True, False])
    out = compile_expression("f", FIELDS).evaluate({"f": flags})
    out[0] = False
    assert flags[0]


def test_extra_columns_are_ignored_and_integers_become_floats() -> None:
    e = compile_expression("k * 2", FIELDS)
    out = e.evaluate({"k": np.array([1, 2], dtype=np.int64), "a": "ignored"})
    assert out.dtype == np.float64 and out.tolist() == [2.0, 4.0]
    assert e.evaluate_row({"k": 3}) == 6.0
    assert isinstance(compile_expression("7 // 2", FIELDS).evaluate_row({}), float)


def test_boolean_inputs_accept_zero_and_one() -> None:
    e = compile_expression("not f", FIELDS)
    assert e.evaluate({"f": np.array([1, 0])}).tolist() == [False, True]
    assert e.evaluate_row({"f": 1}) is False
    assert e.evaluate_row({"f": np.bool_(False)}) is True


# --- syntax elements ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", [1.5]),
        ("3", [3.0]),
        ("1_000", [1000.0]),
        ("0x10", [16.0]),
        ("1e3", [1000.0]),
        ("True", [True]),
        ("False", [False]),
        ("-7 // 2", [-4.0]),
        ("7 // -2", [-4.0]),
        ("-7 % 3", [2.0]),
        ("7 % -3", [-2.0]),
        ("7.5 // 2", [3.0]),
        ("-7.5 % 2", [0.5]),
        ("2 ** 10", [1024.0]),
        ("2 ** -1", [0.5]),
        ("4 ** 0.5", [2.0]),
        ("-2 ** 2", [-4.0]),
        ("(-2) ** 3", [-8.0]),
        ("8 ** (1/3)", [2.0]),
        ("+3", [3.0]),
        ("--3", [3.0]),
        ("1 + 2 * 3 - 4 / 2", [5.0]),
        ("1 < 2 < 3", [True]),
        ("1 < 3 < 2", [False]),
        ("True == True", [True]),
        ("True != False", [True]),
        ("not False", [True]),
        ("True and False or True", [True]),
        ("1 if True else 2", [1.0]),
        ("1 if False else 2 if True else 3", [2.0]),
        ("2 in (1, 2, 3)", [True]),
        ("-1 in (1, -1)", [True]),
        ("2 not in (1, 2)", [False]),
        ("2 in (2,)", [True]),
        ("min(3, 1, 2)", [1.0]),
        ("max(3, 1, 2)", [3.0]),
        ("abs(-2.5)", [2.5]),
        ("round(2.5)", [2.0]),
        ("round(3.5)", [4.0]),
        ("round(-2.5)", [-2.0]),
        ("round(0.5)", [0.0]),
        ("round(2.675, 2)", [2.68]),  # like numpy.round: rint(267.49999999999997 -> 267.5)
        ("round(1.25, 1)", [1.2]),
        ("round(1250, -2)", [1200.0]),
        ("round(1350, -2)", [1400.0]),
        ("round(4503599627370497.0)", [4503599627370497.0]),
        ("clip(5, 0, 3)", [3.0]),
        ("clip(-5, 0, 3)", [0.0]),
        ("floor(-1.5)", [-2.0]),
        ("ceil(-1.5)", [-1.0]),
        ("log(1)", [0.0]),
        ("exp(0)", [1.0]),
        ("sqrt(16)", [4.0]),
        (" 1 + 1 ", [2.0]),
        ("(1 +\n 1)", [2.0]),
    ],
)
def test_constant_expressions(text: str, expected: list) -> None:
    assert both(text) == expected


def test_arithmetic_over_columns() -> None:
    a, b = [-7.0, 7.0, -7.5, 0.5], [2.0, -3.0, 2.0, 4.0]
    assert both("a + b", a=a, b=b) == [-5.0, 4.0, -5.5, 4.5]
    assert both("a - b", a=a, b=b) == [-9.0, 10.0, -9.5, -3.5]
    assert both("a * b", a=a, b=b) == [-14.0, -21.0, -15.0, 2.0]
    assert both("a / b", a=a, b=b) == [-3.5, 7.0 / -3.0, -3.75, 0.125]
    assert both("a // b", a=a, b=b) == [-4.0, -3.0, -4.0, 0.0]
    assert both("a % b", a=a, b=b) == [1.0, -2.0, 0.5, 0.5]
    assert both("a ** 2", a=a) == [49.0, 49.0, 56.25, 0.25]
    assert both("-a", a=a) == [7.0, -7.0, 7.5, -0.5]


def test_comparisons_and_logic_over_columns() -> None:
    a = [0.0, 1.0, 5.0, 6.0]
    f = [True, False, True, False]
    g = [True, True, False, False]
    assert both("0 < a <= 5", a=a) == [False, True, True, False]
    assert both("a == 1", a=a) == [False, True, False, False]
    assert both("a != 1", a=a) == [True, False, True, True]
    assert both("a >= 5", a=a) == [False, False, True, True]
    assert both("a in (0, 6)", a=a) == [True, False, False, True]
    assert both("a not in (0, 6)", a=a) == [False, True, True, False]
    assert both("f and g", f=f, g=g) == [True, False, False, False]
    assert both("f or g", f=f, g=g) == [True, True, True, False]
    assert both("not f", f=f) == [False, True, False, True]
    assert both("f == g", f=f, g=g) == [True, False, False, True]
    assert both("f != g", f=f, g=g) == [False, True, True, False]
    assert both("a if f else -a", a=a, f=f) == [0.0, -1.0, 5.0, -6.0]
    assert both("f if a > 2 else g", a=a, f=f, g=g) == [True, True, True, False]


def test_functions_over_columns() -> None:
    a = [-1.5, 0.5, 2.5, 9.0]
    b = [1.0, 2.0, -3.0, 4.0]
    assert both("min(a, b)", a=a, b=b) == [-1.5, 0.5, -3.0, 4.0]
    assert both("max(a, b, 0)", a=a, b=b) == [1.0, 2.0, 2.5, 9.0]
    assert both("abs(a)", a=a) == [1.5, 0.5, 2.5, 9.0]
    assert both("round(a)", a=a) == [-2.0, 0.0, 2.0, 9.0]
    assert both("clip(a, 0, 3)", a=a) == [0.0, 0.5, 2.5, 3.0]
    assert both("floor(a)", a=a) == [-2.0, 0.0, 2.0, 9.0]
    assert both("ceil(a)", a=a) == [-1.0, 1.0, 3.0, 9.0]
    assert both("sqrt(abs(a))", a=a) == [math.sqrt(1.5), math.sqrt(0.5), math.sqrt(2.5), 3.0]
    assert both("log(abs(a))", a=a) == [math.log(1.5), math.log(0.5), math.log(2.5), math.log(9)]
    assert both("exp(a)", a=a) == [math.exp(v) for v in a]


def test_field_names_may_shadow_function_names() -> None:
    fields = {"min": "number", "x": "number"}
    assert both("min(min, x)", fields, min=[1.0, 5.0], x=[2.0, 3.0]) == [1.0, 3.0]


# --- compile errors: code and column ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "column"),
    [
        ("min(100, hsit)", "unknown_name", 10),
        ("hsit", "unknown_name", 1),
        ("foo(a)", "unknown_function", 1),
        ("a + foo(a)", "unknown_function", 5),
        ("a(1)", "type", 1),
        ("min", "type", 1),
        ("a.real", "forbidden", 1),
        ("a[0]", "forbidden", 1),
        ("'x'", "forbidden", 1),
        ("a + 'x'", "forbidden", 5),
        ("f'{a}'", "forbidden", 2),
        ("[x for x in (1,)]", "forbidden", 1),
        ("lambda: 1", "forbidden", 1),
        ("(y := 1)", "forbidden", 2),
        ("min(a, *b)", "forbidden", 8),
        ("min(a, b=1)", "forbidden", 8),
        ("a.b(1)", "forbidden", 1),
        ("(1, 2)", "forbidden", 1),
        ("a & b", "forbidden", 1),
        ("~a", "forbidden", 1),
        ("a is b", "forbidden", 1),
        ("None", "forbidden", 1),
        ("a # note", "forbidden", 3),
        ("a +", "syntax", 4),
        ("a b", "syntax", 3),
        ("", "syntax", None),
        ("min(a)", "arity", 1),
        ("abs(a, b)", "arity", 1),
        ("clip(a, b)", "arity", 1),
        ("round(a, b)", "argument", 10),
        ("round(a, 0.5)", "argument", 10),
        ("round(a, 16)", "argument", 10),
        ("a ** b", "power", 6),
        ("a ** 101", "power", 6),
        ("a ** -101", "power", 6),
        ("1e999", "not_finite", 1),
        ("10.0 ** 100 * 1e300 ** 2", "not_finite", 15),
        ("f + 1", "type", 1),
        ("1 + f", "type", 5),
        ("-f", "type", 2),
        ("not a", "type", 5),
        ("a and f", "type", 1),
        ("f or 1", "type", 6),
        ("a if a else b", "type", 6),
        ("a if f else g", "type", 1),
        ("a < f", "type", 5),
        ("f < g", "type", 1),
        ("a == f", "type", 6),
        ("min(a, f)", "type", 8),
        ("f in (1, 2)", "type", 1),
        ("a in [1, 2]", "type", 6),
        ("a in (b, 1)", "type", 7),
        ("a in (True,)", "type", 7),
        ("a in (1, 2) == f", "syntax", 6),
        ("  foo", "unknown_name", 3),
        ("\n foo", "unknown_name", 3),
    ],
)
def test_compile_errors(text: str, code: str, column: int | None) -> None:
    error = compile_error(text)
    assert (error.code, error.column) == (code, column), str(error)
    assert error.expression == text
    assert error.row is None


def test_unknown_name_message_and_params() -> None:
    error = compile_error("min(100, hsit)", {"hist": "number"})
    assert str(error) == "unknown name 'hsit' at column 10 in \"min(100, hsit)\""
    assert error.message == "unknown name 'hsit'"
    assert error.params == {"name": "hsit", "suggestion": "hist"}
    assert error.template == "unknown name {name!r}"


def test_expect() -> None:
    assert compile_expression("a > 1", FIELDS, expect="boolean").result_type == "boolean"
    assert compile_expression("a", FIELDS, expect="number").result_type == "number"
    error = compile_error("a > 1", expect="number")
    assert (error.code, error.params) == ("type", {"expected": "number", "actual": "boolean"})
    assert compile_error("a + 1", expect="boolean").code == "type"
    with pytest.raises(ValueError):
        compile_expression("a", FIELDS, expect="integer")


def test_bad_field_types_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        compile_expression("a", {"a": "text"})
    assert compile_expression("b", {"a": "text", "b": "number"}).names == ("b",)


# --- limits -------------------------------------------------------------------------


def test_limits_are_named_constants() -> None:
    assert expr_module.MAX_LENGTH == 2000
    assert expr_module.MAX_DEPTH == 50
    assert expr_module.MAX_NODES == 500
    assert expr_module.MAX_POWER == 100
    assert expr_module.MAX_TREE_DEPTH >= expr_module.MAX_DEPTH


def test_length_limit() -> None:
    limit = expr_module.MAX_LENGTH
    assert compile_expression("a" + " " * (limit - 1), FIELDS).names == ("a",)
    error = compile_error("a" + " " * limit)
    assert (error.code, error.column, error.params["limit"]) == ("too_long", None, limit)


def test_depth_limit() -> None:
    depth = expr_module.MAX_DEPTH
    assert both("(" * depth + "1" + ")" * depth) == [1.0]
    error = compile_error("(" * (depth + 1) + "1" + ")" * (depth + 1))
    assert (error.code, error.column) == ("too_deep", depth + 1)


def test_tree_depth_and_node_limits() -> None:
    assert compile_expression("-" * 50 + "a", FIELDS).result_type == "number"
    assert compile_error("-" * 200 + "a").code == "too_deep"
    assert compile_error(" + ".join(["a"] * 150)).code == "too_deep"
    many = ", ".join(f"min(a, {i})" for i in range(130))  # shallow but large
    assert compile_error(f"max({many})").code == "too_many_nodes"
    assert compile_error("a in (" + ", ".join(["1"] * 600) + ")").code == "too_many_nodes"
    assert compile_expression(" + ".join(["a"] * 90), FIELDS).names == ("a",)


def test_power_limit() -> None:
    assert both("a ** 100", a=[1.0, -1.0]) == [1.0, 1.0]
    assert compile_error("a ** 100.5").code == "power"
    assert compile_error("0 ** -1").code == "division_by_zero"
    assert compile_error("(-8) ** 0.5").code == "domain"


# --- runtime errors -----------------------------------------------------------------


def test_division_by_zero_names_the_first_row() -> None:
    b = [1.0] * 20
    b[17] = b[19] = 0.0
    vector, _ = runtime_errors("a / b", a=[1.0] * 20, b=b)
    assert str(vector) == 'division by zero in "a / b" at row 17'
    assert (vector.code, vector.row, vector.column) == ("division_by_zero", 17, 1)
    assert vector.expression == "a / b"
    assert vector.params["part"] == "a / b"


@pytest.mark.parametrize("operator", ["/", "//", "%"])
def test_every_division_checks_zero(operator: str) -> None:
    vector, _ = runtime_errors(f"1 + a {operator} b", a=[1.0, 0.0], b=[1.0, 0.0])
    assert (vector.code, vector.row, vector.column) == ("division_by_zero", 1, 5)


@pytest.mark.parametrize(
    ("text", "code", "row"),
    [
        ("a ** -1", "division_by_zero", 1),
        ("a ** 0.5", "domain", 2),
        ("a ** 100", "not_finite", 3),
        ("a * 1e308", "not_finite", 3),
        ("a + 1.7e308 + 1.7e308", "not_finite", 0),
        ("log(a)", "domain", 1),
        ("sqrt(a)", "domain", 2),
        ("exp(a)", "not_finite", 3),
        ("1 / (a - 1)", "division_by_zero", 0),
        ("log(a) / (a - 1)", "division_by_zero", 0),
        ("(a - 1) / log(a + 1)", "division_by_zero", 1),
    ],
)
def test_runtime_error_codes(text: str, code: str, row: int) -> None:
    vector, _ = runtime_errors(text, a=[1.0, 0.0, -1.0, 1e10])
    assert (vector.code, vector.row) == (code, row)


def test_first_error_in_a_row_follows_evaluation_order() -> None:
    # Row 0 fails twice: the division comes first in evaluation order.
    vector, _ = runtime_errors("a / b + log(c)", a=[1.0], b=[0.0], c=[0.0])
    assert (vector.code, vector.column) == ("division_by_zero", 1)
    vector, _ = runtime_errors("log(c) + a / b", a=[1.0], b=[0.0], c=[0.0])
    assert (vector.code, vector.column) == ("domain", 1)
    # An earlier row wins over an earlier node.
    vector, _ = runtime_errors("log(c) + a / b", a=[1.0, 1.0], b=[0.0, 1.0], c=[1.0, 0.0])
    assert (vector.code, vector.row) == ("division_by_zero", 0)


@pytest.mark.parametrize(
    "text",
    [
        "a / b if b != 0 else 0",
        "0 if b == 0 else a / b",
        "b != 0 and a / b > 1",
        "b == 0 or a / b > 1",
        "f or a / b > 1",
        "b != 0 and (f or a / b > 1)",
        "0 != b < a / b",
        "(a / b if b != 0 else 0) if f else (log(a) if a > 0 else -1)",
        "min(a / b if b != 0 else 0, 1)",
        "log(a) if a > 0 else sqrt(-a)",
        "(1 / b) ** -1 if b != 0 else 0",
    ],
)
def test_errors_in_branches_not_taken_do_not_leak(text: str) -> None:
    a = [1.0, 2.0, 0.0, -4.0]
    b = [0.0, 2.0, 0.0, 1.0]
    f = [True, True, True, True] if "f or" in text else [False, True, True, True]
    both(text, a=a, b=b, f=f)


def test_errors_in_branches_taken_do_fail() -> None:
    vector, _ = runtime_errors("a / b if f else 0", a=[1.0, 1.0, 1.0], b=[0.0, 0.0, 0.0],
                               f=[False, False, True])
    assert (vector.code, vector.row) == ("division_by_zero", 2)
    vector, _ = runtime_errors("f and a / b > 1", a=[1.0, 1.0], b=[0.0, 0.0], f=[False, True])
    assert (vector.code, vector.row) == ("division_by_zero", 1)


def test_bad_inputs_name_the_field_and_row() -> None:
    vector, _ = runtime_errors("a + b", a=[1.0, 2.0, np.nan], b=[1.0, np.inf, 1.0])
    assert (vector.code, vector.row, vector.params["field"]) == ("invalid_input", 1, "b")
    assert str(vector) == "field 'b' is not a finite number in \"a + b\" at row 1"
    vector, _ = runtime_errors("a + b", a=[1.0, np.nan], b=[1.0, np.nan])
    assert vector.params["field"] == "a"
    vector, _ = runtime_errors("not f", f=[1, 0, 2])
    assert (vector.code, vector.row, vector.params["field"]) == ("invalid_input", 2, "f")
    vector, _ = runtime_errors("a + 1", a=np.array([1.0, None, "x"], dtype=object))
    assert (vector.code, vector.row, vector.message) == (
        "invalid_input", 1, "field 'a' is not a number")
    # A division by zero before the bad input is still the first error.
    vector, _ = runtime_errors("1 / a", a=[1.0, 0.0, np.nan])
    assert (vector.code, vector.row) == ("division_by_zero", 1)
    # Inputs are checked even where a branch does not read them.
    vector, _ = runtime_errors("a if f else 0", a=[np.nan], f=[False])
    assert vector.code == "invalid_input"


def test_missing_columns_and_shapes() -> None:
    e = compile_expression("a + b", FIELDS)
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"a": [1.0]})
    assert (info.value.code, info.value.params) == ("missing_input", {"field": "b"})
    with pytest.raises(ExpressionError) as info:
        e.evaluate_row({"a": 1.0}, row=3)
    assert (info.value.code, info.value.row) == ("missing_input", 3)
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"a": [1.0, 2.0], "b": [1.0]})
    assert info.value.code == "shape"
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"a": [[1.0]], "b": 1.0})
    assert info.value.code == "shape"
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"a": [1.0, 2.0], "b": 1.0}, size=3)
    assert info.value.code == "shape"


def test_large_columns() -> None:
    n = 100_000
    rng = np.random.default_rng(7)
    hist = rng.uniform(0, 1000, n)
    avg = rng.uniform(1, 500, n)
    e = compile_expression("min(100, hist / avg * 50)", FIELDS)
    out = e.evaluate({"hist": hist, "avg": avg})
    np.testing.assert_allclose(out, np.minimum(100, hist / avg * 50))
    for i in (0, 12345, n - 1):
        assert out[i] == e.evaluate_row({"hist": hist[i], "avg": avg[i]})
    avg[54321] = 0.0
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"hist": hist, "avg": avg})
    assert info.value.row == 54321


# --- the error object ----------------------------------------------------------------


def test_error_attributes_and_pickling() -> None:
    error = compile_error("a +* b")
    assert isinstance(error, Exception)
    assert error.code == "syntax" and error.column == 4
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, copy.column, copy.message, str(copy)) == (
        error.code, error.column, error.message, str(error))
    assert "ExpressionError('syntax'" in repr(error)


def test_long_expressions_are_shortened_in_messages() -> None:
    text = "foo + " + " + ".join(["a"] * 60)
    error = compile_error(text)
    assert error.expression == text
    assert str(error).endswith('..."')
    assert len(str(error)) < 150


# --- plugin functions ----------------------------------------------------------------


def test_plugin_functions() -> None:
    calls: list[int] = []

    def bonus(x: np.ndarray, rate: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return x * rate

    registry = FunctionRegistry()
    registry.register("bonus", scalar=lambda x, rate: x * rate, vector=bonus, arity=(2, 2))
    registry.register("is_even", scalar=lambda x: x % 2 == 0,
                      vector=lambda x: np.mod(x, 2) == 0, returns="boolean")
    registry.register("inverse", scalar=lambda x: 1 / x, vector=lambda x: 1 / x)

    e = compile_expression("bonus(a, 2) if is_even(a) else 0", FIELDS, functions=registry)
    assert e.functions == ("bonus", "is_even")
    a = [1.0, 2.0, 3.0, 4.0]
    values = e.evaluate({"a": np.array(a)})
    assert values.tolist() == [0.0, 4.0, 0.0, 8.0]
    assert calls == [2]  # only the rows that need it
    assert [e.evaluate_row({"a": v}) for v in a] == values.tolist()

    # A plugin's failure is a "domain" error in both evaluators, on the same row.
    inverse = compile_expression("inverse(a)", FIELDS, functions=registry)
    with pytest.raises(ExpressionError) as vector:
        inverse.evaluate({"a": np.array([2.0, 0.0])})
    with pytest.raises(ExpressionError) as row:
        inverse.evaluate_row({"a": 0.0}, row=1)
    assert (vector.value.code, vector.value.row) == (row.value.code, row.value.row) == (
        "domain", 1)
    assert vector.value.message == "inverse() is not defined for this value"
    assert inverse.evaluate_row({"a": 4.0}) == 0.25

    # The built-in registry knows nothing of plugins.
    assert compile_error("bonus(a, 2)").code == "unknown_function"


def test_plugin_vector_that_raises_falls_back_to_the_scalar_form() -> None:
    def strict_sqrt(x: np.ndarray) -> np.ndarray:
        if (x < 0).any():
            raise ValueError("negative")
        return np.sqrt(x)

    registry = FunctionRegistry()
    registry.register("root", scalar=math.sqrt, vector=strict_sqrt)
    e = compile_expression("root(a) if a > -10 else 0", FIELDS, functions=registry)
    assert e.evaluate({"a": np.array([4.0, -100.0])}).tolist() == [2.0, 0.0]
    with pytest.raises(ExpressionError) as info:
        e.evaluate({"a": np.array([4.0, -100.0, -1.0])})
    assert (info.value.code, info.value.row) == ("domain", 2)


def test_plugin_arity_and_types() -> None:
    registry = FunctionRegistry()
    registry.register("total", scalar=lambda *x: sum(x), vector=lambda *x: sum(x),
                      arity=(1, None))
    assert both_with(registry, "total(a, b, 1)", a=[1.0], b=[2.0]) == [4.0]
    error = compile_error("total()", functions=registry)
    assert (error.code, error.params["expected"]) == ("arity", "1 or more")
    assert compile_error("total(f)", functions=registry).code == "type"


def both_with(registry: FunctionRegistry, text: str, **values: list) -> list:
    e = compile_expression(text, FIELDS, functions=registry)
    out = e.evaluate(columns(**values)).tolist()
    assert out == [e.evaluate_row({k: v[i] for k, v in values.items()}) for i in range(len(out))]
    return out


def test_registry_validation() -> None:
    registry = FunctionRegistry()

    def same(x: object) -> object:
        return x

    with pytest.raises(ValueError):
        registry.register("min", scalar=same, vector=same)
    registry.register("min", scalar=same, vector=same, replace=True)
    for name in ("not valid", "_hidden", "if", ""):
        with pytest.raises(ValueError):
            registry.register(name, scalar=same, vector=same)
    with pytest.raises(ValueError):
        registry.register("f1", scalar=same, vector=same, arity=(2, 1))
    with pytest.raises(ValueError):
        registry.register("f2", scalar=same, vector=same, returns="text")
    with pytest.raises(ValueError):
        registry.register("f3", scalar=same, vector=None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        BUILTIN_FUNCTIONS.register("f4", scalar=same, vector=same)
    assert "sqrt" in BUILTIN_FUNCTIONS and "f4" not in BUILTIN_FUNCTIONS
    assert FunctionRegistry(builtins=False).names() == ()
    assert set(BUILTIN_FUNCTIONS.names()) == {
        "abs", "ceil", "clip", "exp", "floor", "log", "max", "min", "round", "sqrt"}


# --- purity -------------------------------------------------------------------------


def test_the_rules_modules_stay_pure() -> None:
    forbidden = {"flask", "sqlalchemy", "werkzeug"}
    package = Path(expr_module.__file__).parent
    for name in ("expressions.py", "functions.py"):
        tree = ast.parse((package / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & forbidden, (name, roots)
