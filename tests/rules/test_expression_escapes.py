"""Known sandbox-escape and resource-exhaustion payloads all fail cleanly at compile time."""

from __future__ import annotations

import pytest

from quotaflow.rules import ExpressionError, compile_expression

FIELDS = {"x": "number", "y": "number", "flag": "boolean"}

PAYLOADS = [
    # dunder chains and introspection
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__.__base__.__subclasses__()[59]()._module.__builtins__['__import__']('os')",
    "x.__class__",
    "x.__class__.__mro__[1].__subclasses__()",
    "(1).__class__.__bases__[0]",
    "True.__class__",
    "1 .real",
    "min.__self__",
    "min.__globals__",
    "abs.__call__(x)",
    "type(x)",
    "getattr(x, '__class__')",
    "vars()",
    "globals()",
    "locals()",
    "__builtins__",
    "__builtins__.open",
    "__import__",
    "__import__('os').system('id')",
    "__import__(\"os\")",
    "eval('1')",
    "exec('import os')",
    "compile('1', '', 'eval')",
    "open('/etc/passwd')",
    "breakpoint()",
    "help()",
    "input()",
    "print(x)",
    "_",
    "__name__",
    # generator frames
    "(i for i in ()).gi_frame.f_back.f_globals",
    "(i for i in ()).gi_frame",
    "[i for i in ()].__class__",
    "x.gi_frame.f_globals",
    "x.f_globals",
    # format-string tricks and strings
    "'{0.__class__}'.format(x)",
    "'{0.__class__.__mro__}'.format(1)",
    "f'{x.__class__}'",
    "f'{x}'",
    "F\"{x!r}\"",
    "rb'\\x00'",
    "'x' * 10**9",
    "'a' + 'b'",
    "'''x'''",
    "b'abc'",
    "u'abc'",
    "'%s' % x",
    # lambdas, comprehensions, walrus, calls of non-names
    "lambda: 1",
    "(lambda: 1)()",
    "(lambda f: f(f))(lambda f: f(f))",
    "[x for x in (1, 2)]",
    "{x for x in (1, 2)}",
    "{x: 1 for x in (1, 2)}",
    "sum(x for x in (1, 2))",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(y := 1)",
    "(x := x + 1) + x",
    "min(x, y)(1)",
    "min(*x)",
    "min(x, *y)",
    "max(x, y, key=abs)",
    "round(x, ndigits=2)",
    "min(**x)",
    "(x)(1)",
    "x(1)",
    # containers, subscripts, slices and other syntax
    "[1, 2, 3]",
    "{1, 2}",
    "{'a': 1}",
    "(1, 2)",
    "x, y",
    "x[0]",
    "x[1:2]",
    "x in [1, 2]",
    "x in (y, 1)",
    "x in ()",
    "x if flag",
    "import os",
    "x; import os",
    "x\nimport os",
    "x = 1",
    "del x",
    "await x",
    "(yield x)",
    "None",
    "...",
    "1j",
    "x @ y",
    "x << 10000",
    "x >> 1",
    "x & y",
    "x | y",
    "x ^ y",
    "~x",
    "x is y",
    "x is not None",
    "not x",
    "flag + 1",
    "x and flag",
    "x if x else y",
    "x # comment",
    "\\x",
    # huge numbers and powers
    "9**9**9",
    "9 ** 9 ** 9 ** 9",
    "10**10000",
    "2 ** 1000",
    "x ** 1000",
    "x ** -1000",
    "x ** y",
    "x ** (y + 1)",
    "1e300 ** 2",
    "(-8) ** (1/3)",
    "0 ** -1",
    "1e999",
    "1" * 400,
    "1" + "0" * 1999,
    "x ** (1/0)",
    "round(x, 10 ** 9)",
    "round(x, 100)",
    # deep nesting and huge inputs
    "(" * 10_000 + "x" + ")" * 10_000,
    "(" * 51 + "x" + ")" * 51,
    "(" * 1000,
    "[" * 10_000,
    "-" * 10_000 + "x",
    "-" * 1999 + "x",
    "-" * 101 + "x",
    "not " * 499 + "flag",
    "~" * 1999 + "x",
    "+-" * 999 + "x",
    "a+" * 10_000,
    "x+" * 999 + "x",
    "x*" * 300 + "x",
    "x ** " * 600 + "x",
    "min(" * 51 + "x" + ", x)" * 51,
    "x if flag else " * 150 + "x",
    "x" * 1_000_000,
    " " * 1_000_000 + "x",
    "x + " + "1 + " * 100_000 + "1",
    "a" * 3000,
    "a" * 1999,
    "x" + " " * 1999 + "+ y",
    "",
    "   ",
    "\n",
    # unicode tricks
    "ｘ",
    "ｘ + 1",
    "＿＿import＿＿",
    "x\u200b",
    "x\u202e + 1",
    "x\x00",
    "\ufeffx",
    "ℌ",
    "х",  # Cyrillic
    "x\u0301",
    "１００",
    "x\x0c",
    "x\r\n + y",
    "x\t+\t",
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: repr(p[:40]))
def test_payload_is_rejected(payload: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(payload, FIELDS)
    error = info.value
    assert error.code
    assert isinstance(error.message, str) and error.message
    assert str(error)
    assert error.row is None


@pytest.mark.parametrize("value", [None, 12, b"x", ["x"], object()])
def test_non_text_is_rejected(value: object) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(value, FIELDS)  # type: ignore[arg-type]
    assert info.value.code == "syntax"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("(" * 10_000 + "x" + ")" * 10_000, "too_long"),
        ("x" * 1_000_000, "too_long"),
        ("(" * 51 + "x" + ")" * 51, "too_deep"),
        ("-" * 101 + "x", "too_deep"),
        ("x+" * 999 + "x", "too_many_nodes"),
        ("9**9**9", "power"),
        ("10**10000", "power"),
        ("'x' * 10**9", "forbidden"),
        ("f'{x}'", "forbidden"),
        ("().__class__", "forbidden"),
        ("__import__('os')", "forbidden"),
        ("__import__", "unknown_name"),
        ("eval(x)", "unknown_function"),
        ("ｘ", "forbidden"),
        ("x\u202e", "forbidden"),
        ("1e300 ** 2", "not_finite"),
    ],
)
def test_payload_codes(payload: str, code: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(payload, FIELDS)
    assert info.value.code == code


def test_runtime_overflow_is_an_error_not_a_crash() -> None:
    expression = compile_expression("x * 1e308 * 1e308", FIELDS)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate({"x": [0.0, 1.0]})
    assert (info.value.code, info.value.row) == ("not_finite", 1)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate_row({"x": 1.0}, row=1)
    assert (info.value.code, info.value.row) == ("not_finite", 1)
