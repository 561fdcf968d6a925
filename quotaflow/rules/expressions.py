"""The QuotaFlow expression language: one parser, one validator, two evaluators.

An expression is a small, safe subset of Python used everywhere a spec needs a
formula: factor measures, bounds, flow conditions, alert rules::

    >>> e = compile_expression("min(100, hist / avg * 50)",
    ...                        fields={"hist": "number", "avg": "number"})
    >>> e.names, e.result_type
    (('avg', 'hist'), 'number')
    >>> e.evaluate_row({"hist": 3.0, "avg": 2.0})
    75.0

The text is checked before Python's parser sees it (length, bracket depth, a token
scan for strings, comments and runaway operator chains), then parsed with
``ast.parse(mode="eval")`` and walked once: every node is type-checked and turned
into a small closure over numpy columns. Nothing is ever handed to ``eval``.

Two evaluators share that validation and agree on every input:

* :meth:`CompiledExpression.evaluate` runs the closures over whole columns. Parts of
  the tree that a row does not need (the branch of ``a if c else b`` not taken, the
  right side of a short-circuited ``and``/``or``) are computed for all rows but
  their errors count only on the rows that need them.
* :meth:`CompiledExpression.evaluate_row` is the reference: simpleeval walks the
  same validated tree for one row with float64 scalar operators.

Numbers are float64 in both (integer fields and literals included; an integer
field is a number whose values are not checked for being whole). Division by zero,
non-finite results and domain errors (``log(0)``, ``sqrt(-1)``) are errors naming
the expression, the failing part's column and the first failing row.

Error codes. Compile time: syntax, forbidden, unknown_name, unknown_function, type,
arity, argument, power, too_long, too_deep, too_many_nodes (and division_by_zero,
not_finite or domain for a failing constant power such as ``0 ** -1``). Run time:
division_by_zero, not_finite, domain, invalid_input, missing_input, shape.
"""

from __future__ import annotations

import ast
import difflib
import functools
import keyword
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import simpleeval

from quotaflow.rules.functions import (
    BOOLEAN,
    BUILTIN_FUNCTIONS,
    NUMBER,
    FunctionRegistry,
    FunctionSpec,
)

# --- safety limits ----------------------------------------------------------------

MAX_LENGTH = 2000  # characters of expression text
MAX_DEPTH = 50  # nesting of brackets, checked on the text before parsing
MAX_TREE_DEPTH = 100  # nesting of the syntax tree (long operator chains, unary runs)
MAX_NODES = 500  # syntax-tree nodes (names, numbers, operators, calls)
MAX_POWER = 100  # largest absolute exponent allowed after '**'
SCAN_LENGTH = 200  # longer text gets a token scan before parsing (see _precheck)

FIELD_TYPES = ("number", "integer", "boolean")
EXPECTED_TYPES = (None, NUMBER, BOOLEAN)

_SHOWN_LENGTH = 80  # characters of the expression shown in str(error)


# --- errors -----------------------------------------------------------------------


class ExpressionError(Exception):
    """An expression that cannot be compiled, or a row where it cannot be evaluated.

    ``code`` is a short stable machine code ("syntax", "unknown_name", "type",
    "division_by_zero", ...); ``message`` is English text made from ``template``
    and ``params``, so a web layer can translate it; ``column`` is 1-based in
    ``expression``; ``row`` is the first failing row of a runtime error.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        column: int | None = None,
        expression: str | None = None,
        row: int | None = None,
        params: Mapping[str, Any] | None = None,
        template: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.column = column
        self.expression = expression
        self.row = row
        self.params = dict(params or {})
        self.template = template if template is not None else message

    def __str__(self) -> str:
        text = self.message
        if self.column is not None and self.row is None:
            text += f" at column {self.column}"
        if self.expression is not None:
            text += f' in "{_shorten(self.expression)}"'
        if self.row is not None:
            text += f" at row {self.row}"
        return text

    def __repr__(self) -> str:
        return f"ExpressionError({self.code!r}, {str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (self.message, self.__dict__.copy()))


def _rebuild_error(message: str, state: dict[str, Any]) -> ExpressionError:
    error = ExpressionError(message, code=state["code"])
    error.__dict__.update(state)
    return error


def _shorten(text: str) -> str:
    """The text for a one-line message: cut short, invisible characters escaped."""
    text = text if len(text) <= _SHOWN_LENGTH else text[: _SHOWN_LENGTH - 3] + "..."
    if text.isascii() and text.isprintable():
        return text
    return "".join(char if char.isprintable() else " " if char in _ALLOWED_CONTROLS
                   else f"\\u{ord(char):04x}" for char in text)


def _error(code: str, template: str, expression: str | None, column: int | None = None,
           row: int | None = None, **params: Any) -> ExpressionError:
    return ExpressionError(template.format(**params), code=code, column=column,
                           expression=expression, row=row, params=params, template=template)


# Runtime message templates, shared by both evaluators so their errors are identical.
_DIVISION_BY_ZERO = "division by zero"
_NOT_FINITE = "the result is not a finite number"
_FRACTIONAL_POWER = "a negative number cannot be raised to a fractional power"
_FUNCTION_FAILURE = {
    "domain": "{function}() is not defined for this value",
    "not_finite": "the result of {function}() is not a finite number",
    "division_by_zero": "division by zero in {function}()",
}
_NOT_A_NUMBER = "field {field!r} is not a number"
_NOT_FINITE_INPUT = "field {field!r} is not a finite number"
_NOT_A_BOOLEAN = "field {field!r} must be True or False"


class _RowFailure(Exception):
    """A runtime failure inside one row; ``node`` is the syntax node that failed."""

    def __init__(self, code: str, template: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.template = template
        self.params = params
        self.node: ast.AST | None = None


# --- public API -------------------------------------------------------------------


def compile_expression(
    text: str,
    fields: Mapping[str, str],
    functions: FunctionRegistry | None = None,
    expect: str | None = None,
) -> CompiledExpression:
    """Validate ``text`` and compile it for vectorised and row-by-row evaluation.

    ``fields`` maps each readable name to "number", "integer" or "boolean";
    ``functions`` defaults to the built-ins; ``expect`` ("number" or "boolean")
    makes a result of the other type a compile error. Raises ExpressionError.
    """
    if expect not in EXPECTED_TYPES:
        raise ValueError(f"expect must be one of {EXPECTED_TYPES}, not {expect!r}")
    registry = BUILTIN_FUNCTIONS if functions is None else functions

    lead = _precheck(text)
    tree = _parse(text, lead)
    compiler = _Compiler(text, lead, fields, registry)
    part = compiler.compile(tree.body, 1)
    if expect is not None and part.kind != expect:
        raise _error("type", "the expression must give a {expected}, but it gives a {actual}",
                     text, lead + 1, expected=expect, actual=part.kind)
    return CompiledExpression(text, lead, tree.body, part, compiler, fields)


class CompiledExpression:
    """A validated expression, ready to evaluate over columns or one row."""

    __slots__ = ("_fields", "_lead", "_plan", "_row_functions", "_row_ready", "_specs",
                 "_tree", "functions", "names", "result_type", "text")

    def __init__(self, text: str, lead: int, tree: ast.expr, part: _Part,
                 compiler: _Compiler, fields: Mapping[str, str]) -> None:
        self.text = text
        self.names: tuple[str, ...] = tuple(sorted(compiler.names))
        self.functions: tuple[str, ...] = tuple(sorted(compiler.specs))
        self.result_type: str = part.kind
        self._fields = {name: fields[name] for name in self.names}
        self._lead = lead
        self._tree = tree
        self._plan = part.fn
        self._specs = dict(compiler.specs)
        self._row_functions = {name: functools.partial(_call_scalar, spec)
                               for name, spec in self._specs.items()}
        self._row_ready = False

    def __repr__(self) -> str:
        return f"<CompiledExpression {self.text!r} -> {self.result_type}>"

    # -- columns --

    def evaluate(self, columns: Mapping[str, Any], *, size: int | None = None) -> np.ndarray:
        """Evaluate over numpy columns; returns float64 (or bool) array of the column length.

        Scalars broadcast to the column length; with no column, the length is
        ``size`` or 1. Raises ExpressionError naming the first failing row.
        """
        run = _Run(self._prepare_columns(columns, size))
        with np.errstate(all="ignore"):
            result = self._plan(run, None)
        if run.failures:
            raise self._first_failure(run)
        dtype = np.bool_ if self.result_type == BOOLEAN else np.float64
        out = np.asarray(result, dtype=dtype)
        if (out.shape != (run.n,) or not out.flags.writeable
                or any(out is column for column in run.columns.values())):
            out = np.array(np.broadcast_to(out, (run.n,)), dtype=dtype)
        return out

    def _prepare_columns(self, columns: Mapping[str, Any], size: int | None
                         ) -> tuple[int, dict[str, np.ndarray], list[_Failure]]:
        arrays: dict[str, np.ndarray] = {}
        length: int | None = None
        first = ""
        for name in self.names:
            if name not in columns:
                raise _error("missing_input", "no value given for field {field!r}",
                             self.text, field=name)
            array = np.asarray(columns[name])
            if array.ndim > 1:
                raise _error("shape", "field {field!r} must be one column, not shape {shape}",
                             self.text, field=name, shape=array.shape)
            if array.ndim == 1:
                if length is None:
                    length, first = len(array), name
                elif len(array) != length:
                    raise _error("shape", "field {field!r} has {got} rows but {other!r} has "
                                 "{expected}", self.text, field=name, got=len(array),
                                 other=first, expected=length)
            arrays[name] = array
        if size is not None:
            if length is not None and size != length:
                raise _error("shape", "the columns have {got} rows, not size={expected}",
                             self.text, got=length, expected=size)
            length = size
        n = 1 if length is None else int(length)
        if n < 0:
            raise ValueError(f"size must not be negative, not {size!r}")
        # Inputs are checked first, field by field in name order, as evaluate_row does.
        failures: list[_Failure] = []
        converted = {}
        for seq, (name, array) in enumerate(arrays.items(), start=-len(arrays)):
            converted[name] = _convert_column(name, self._fields[name], array, n, seq, failures)
        return n, converted, failures

    def _first_failure(self, run: _Run) -> ExpressionError:
        best = min(run.failures, key=lambda f: (int(np.argmax(f.rows)), f.seq))
        return self._runtime_error(best.code, best.template, best.params, best.node,
                                   int(np.argmax(best.rows)))

    def _runtime_error(self, code: str, template: str, params: Mapping[str, Any],
                       node: ast.AST | None, row: int | None) -> ExpressionError:
        params = dict(params)
        column = None
        if node is not None:
            column = _column(self.text, self._lead, node)
            part = ast.get_source_segment(self.text[self._lead:], node)
            if part is not None:
                params.setdefault("part", part)
        return ExpressionError(template.format(**params), code=code, column=column,
                               expression=self.text, row=row, params=params, template=template)

    # -- one row (reference) --

    def evaluate_row(self, values: Mapping[str, Any], *, row: int | None = None) -> float | bool:
        """Evaluate one row with simpleeval (the reference); ``row`` labels errors."""
        names: dict[str, float | bool] = {}
        try:
            for name in self.names:
                if name not in values:
                    raise _error("missing_input", "no value given for field {field!r}",
                                 self.text, row=row, field=name)
                names[name] = _convert_value(name, self._fields[name], values[name])
            evaluator = _RowEvaluator(self._row_functions, names)
            result = evaluator.eval(self.text, previously_parsed=self._row_tree())
        except _RowFailure as failure:
            raise self._runtime_error(failure.code, failure.template, failure.params,
                                      failure.node, row) from None
        return bool(result) if self.result_type == BOOLEAN else float(result)

    def _row_tree(self) -> ast.expr:
        """The validated tree with every number literal as a float (float64 semantics)."""
        if not self._row_ready:
            for node in ast.walk(self._tree):
                if isinstance(node, ast.Constant) and type(node.value) is int:
                    node.value = float(node.value)
            self._row_ready = True
        return self._tree


# --- checks before parsing --------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<number>(?:\d|\.\d)(?:[\w.]|(?<=[eE])[+-])*)"  # 12, 1.5e-3, 0x1F
    r"|(?P<name>\w+)"
    r"|(?P<op>\*\*|//|<<|>>|[<>=!]=|\S)"
)
_NOT_OPERANDS = frozenset(keyword.kwlist) - {"True", "False", "None"}
_PREFIX = frozenset({"-", "+", "~", "not"})
_BINARY = frozenset({"+", "-", "*", "/", "//", "%", "**", "@", "&", "|", "^", "<<", ">>"})
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_QUOTE_OR_COMMENT = re.compile(r"(?:(?<!\w)([rRbBuUfF]{1,2}))?(['\"#])")


def _precheck(text: str) -> int:
    """Reject hostile or hopeless text cheaply; return the count of leading blanks.

    Every check here is linear and bounded, so a megabyte of text or ten thousand
    parentheses never reach Python's parser. Text longer than SCAN_LENGTH also gets
    a token scan that counts a lower bound of the syntax-tree nodes (operands and
    arithmetic operators) and the longest run of prefix operators, so runaway
    chains are refused before parsing; shorter text parses in microseconds and the
    compiler's own node and depth limits catch the rest.
    """
    if not isinstance(text, str):
        raise _error("syntax", "the expression must be text", None)
    if len(text) > MAX_LENGTH:
        raise _error("too_long", "the expression is too long ({length} characters, the "
                     "limit is {limit})", text, length=len(text), limit=MAX_LENGTH)
    if not text.strip():
        raise _error("syntax", "the expression is empty", text)
    if not (text.isascii() and text.isprintable()):
        _check_characters(text)
    quote = ("'" in text or '"' in text or "#" in text) and _QUOTE_OR_COMMENT.search(text)
    if quote:
        column = quote.start(2) + 1
        if quote.group(2) == "#":
            raise _error("forbidden", "comments ('#') are not allowed", text, column,
                         construct="comment")
        if "f" in (quote.group(1) or "").lower():
            raise _error("forbidden", "f-strings are not allowed", text, column,
                         construct="f-string")
        raise _error("forbidden", "strings are not allowed", text, column, construct="string")
    if text.count("(") + text.count("[") + text.count("{") > MAX_DEPTH:
        _check_brackets(text)
    if len(text) > SCAN_LENGTH:
        _scan_tokens(text)
    return len(text) - len(text.lstrip())


def _check_brackets(text: str) -> None:
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _error("too_deep", "the expression is nested too deeply (more than "
                             "{limit} levels)", text, index + 1, limit=MAX_DEPTH)
        elif char in ")]}":
            depth -= 1


def _scan_tokens(text: str) -> None:
    nodes = prefix_run = 0
    after_operand = False
    for match in _TOKEN.finditer(text):
        token, kind = match.group(), match.lastgroup
        if kind == "op" and token in "([{":
            after_operand, prefix_run = False, 0
        elif kind == "op" and token in ")]}":
            after_operand, prefix_run = True, 0
        elif not after_operand and token in _PREFIX:
            nodes += 1
            prefix_run += 1
            if prefix_run > MAX_TREE_DEPTH:
                raise _error("too_deep", "the expression is nested too deeply (more than "
                             "{limit} levels)", text, match.start() + 1, limit=MAX_TREE_DEPTH)
        elif kind == "op" or token in _NOT_OPERANDS:
            if after_operand and token in _BINARY:
                nodes += 1
            after_operand, prefix_run = False, 0
        else:  # a name or a number: one leaf
            nodes += 1
            after_operand, prefix_run = True, 0
        if nodes > MAX_NODES:
            raise _too_many_nodes(text, match.start() + 1)


def _check_characters(text: str) -> None:
    for index, char in enumerate(text):
        if not char.isprintable() and char not in _ALLOWED_CONTROLS:
            raise _error("forbidden", "the character {character} is not allowed", text,
                         index + 1, character=f"U+{ord(char):04X}")
    if text.isascii():
        return
    # Python folds identifiers with NFKC ("ｈｉｓｔ" reads as "hist"): refuse look-alikes.
    if unicodedata.normalize("NFKC", text) != text:
        column = next((index + 1 for index, char in enumerate(text)
                       if unicodedata.normalize("NFKC", char) != char), None)
        char = text[column - 1] if column else ""
        raise _error("forbidden", "the character {character} is not allowed; type its plain "
                     "form", text, column, character=f"U+{ord(char):04X}" if char else "?")


def _too_many_nodes(text: str, column: int | None) -> ExpressionError:
    return _error("too_many_nodes", "the expression is too large (more than {limit} parts)",
                  text, column, limit=MAX_NODES)


def _parse(text: str, lead: int) -> ast.Expression:
    source = text[lead:]
    try:
        return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        detail = exc.msg or "invalid syntax"
        if detail.startswith("invalid syntax"):
            detail = detail[len("invalid syntax"):].lstrip(". ")
        if not exc.offset or exc.lineno is None:  # the text ended too early
            column = len(text.rstrip()) + 1
            if not detail:
                raise _error("syntax", "the expression is incomplete", text, column) from None
        else:
            lines = source.splitlines(keepends=True)
            start = sum(len(line) for line in lines[: exc.lineno - 1])
            column = min(lead + start + exc.offset, len(text) + 1)
        if detail:
            raise _error("syntax", "invalid syntax: {detail}", text, column,
                         detail=detail) from None
        raise _error("syntax", "invalid syntax", text, column) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise _error("too_deep", "the expression is too complex to read", text) from None


def _column(text: str, lead: int, node: ast.AST) -> int | None:
    """The 1-based character column of ``node`` in the whole text."""
    lineno = getattr(node, "lineno", None)
    offset = getattr(node, "col_offset", None)
    if lineno is None or offset is None:
        return None
    lines = text[lead:].splitlines(keepends=True)
    line = lines[lineno - 1] if lineno <= len(lines) else ""
    chars = offset if line.isascii() else len(line.encode()[:offset].decode(errors="replace"))
    return lead + sum(len(item) for item in lines[: lineno - 1]) + chars + 1


# --- scalar float64 semantics (the reference evaluator's operators) ---------------


def _finite(value: float) -> float:
    if math.isfinite(value):
        return value
    raise _RowFailure("not_finite", _NOT_FINITE)


def _row_arithmetic(function: Callable[[float, float], float], divides: bool
                    ) -> Callable[[float, float], float]:
    def apply(a: float, b: float) -> float:
        if divides and b == 0:
            raise _RowFailure("division_by_zero", _DIVISION_BY_ZERO)
        try:
            return _finite(function(a, b))
        except OverflowError:
            raise _RowFailure("not_finite", _NOT_FINITE) from None

    return apply


def _row_power(a: float, b: float) -> float:
    """a ** b like numpy.power (which uses a*a, sqrt and 1/a for 2, 0.5 and -1)."""
    if a == 0 and b < 0:
        raise _RowFailure("division_by_zero", _DIVISION_BY_ZERO)
    if a < 0 and b != math.floor(b):
        raise _RowFailure("domain", _FRACTIONAL_POWER)
    try:
        if b == 2:
            result = a * a
        elif b == 0.5:
            result = math.sqrt(a)
        elif b == -1:
            result = 1.0 / a
        else:
            result = a**b
    except OverflowError:
        raise _RowFailure("not_finite", _NOT_FINITE) from None
    return _finite(result)


def _call_scalar(spec: FunctionSpec, *args: float) -> float | bool:
    """Call a function's scalar form, turning its failures into row failures."""
    try:
        result = spec.scalar(*args)
    except (ArithmeticError, ValueError):
        raise _function_failure(spec) from None
    if spec.returns == BOOLEAN:
        return bool(result)
    try:
        value = float(result)  # a complex result (a domain error) raises TypeError here
    except (TypeError, ValueError, OverflowError):
        raise _function_failure(spec) from None
    if not math.isfinite(value):
        raise _function_failure(spec)
    return value


def _function_failure(spec: FunctionSpec) -> _RowFailure:
    return _RowFailure(spec.failure, _FUNCTION_FAILURE[spec.failure], function=spec.name)


_ROW_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: _row_arithmetic(operator.add, False),
    ast.Sub: _row_arithmetic(operator.sub, False),
    ast.Mult: _row_arithmetic(operator.mul, False),
    ast.Div: _row_arithmetic(operator.truediv, True),
    ast.FloorDiv: _row_arithmetic(operator.floordiv, True),
    ast.Mod: _row_arithmetic(operator.mod, True),
    ast.Pow: _row_power,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda x, values: x in values,
    ast.NotIn: lambda x, values: x not in values,
}


class _RowEvaluator(simpleeval.SimpleEval):
    """simpleeval with our operators, tuples after 'in', and failures tagged by node."""

    def __init__(self, functions: dict[str, Callable[..., Any]],
                 names: dict[str, float | bool]) -> None:
        super().__init__(operators=_ROW_OPERATORS, functions=functions, names=names)
        self.nodes[ast.Tuple] = self._eval_tuple

    def _eval_tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self._eval(item) for item in node.elts)

    def _eval(self, node: ast.AST) -> Any:
        try:
            return super()._eval(node)
        except _RowFailure as failure:
            if failure.node is None:
                failure.node = node
            raise


def _convert_value(name: str, kind: str, value: Any) -> float | bool:
    """One row's input value as float (or bool); bad values are row failures."""
    if kind == BOOLEAN:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _RowFailure("invalid_input", _NOT_A_BOOLEAN, field=name) from None
        if number not in (0.0, 1.0):
            raise _RowFailure("invalid_input", _NOT_A_BOOLEAN, field=name)
        return number == 1.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RowFailure("invalid_input", _NOT_A_NUMBER, field=name) from None
    if not math.isfinite(number):
        raise _RowFailure("invalid_input", _NOT_FINITE_INPUT, field=name)
    return number


# --- columns (the compiled evaluator) ---------------------------------------------

Mask = np.ndarray | None  # rows where a value is needed; None means every row


class _Failure(NamedTuple):
    seq: int  # evaluation order of the failing node: the first one in a row wins
    code: str
    template: str
    params: dict[str, Any]
    rows: np.ndarray  # bool, one per row
    node: ast.AST | None


class _Run:
    """State of one evaluate() call: the columns and the failures found so far."""

    __slots__ = ("columns", "failures", "n", "nowhere")

    def __init__(self, prepared: tuple[int, dict[str, np.ndarray], list[_Failure]]) -> None:
        self.n, self.columns, self.failures = prepared
        self.nowhere = np.zeros(self.n, dtype=bool)

    def narrow(self, mask: Mask, condition: Any) -> Mask:
        """The rows of ``mask`` where ``condition`` holds."""
        if np.ndim(condition) == 0:
            return mask if condition else self.nowhere
        return condition if mask is None else np.logical_and(mask, condition)

    def fail(self, mask: Mask, bad: Any, seq: int, code: str, template: str,
             node: ast.AST | None, **params: Any) -> None:
        """Record a failure on the rows of ``bad`` that are needed (in ``mask``)."""
        if mask is not None:
            bad = np.logical_and(bad, mask)
        bad = np.broadcast_to(bad, (self.n,))
        if bad.any():
            self.failures.append(_Failure(seq, code, template, params, bad, node))


def _convert_column(name: str, kind: str, array: np.ndarray, n: int, seq: int,
                    failures: list[_Failure]) -> np.ndarray:
    """A column as float64 (or bool) of length n; bad values are recorded as failures."""
    if kind == BOOLEAN and array.dtype == np.bool_:
        return np.broadcast_to(array, (n,))
    unreadable = None
    try:
        numbers = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):  # e.g. None or text among the values: find them
        values = np.broadcast_to(array, (n,))
        numbers = np.full(n, np.nan)
        unreadable = np.zeros(n, dtype=bool)
        for index, value in enumerate(values):
            try:
                numbers[index] = float(value)
            except (TypeError, ValueError):
                unreadable[index] = True
    numbers = np.broadcast_to(numbers, (n,))
    field = {"field": name}
    if kind == BOOLEAN:
        bad = ~((numbers == 0) | (numbers == 1))
        if bad.any():
            failures.append(_Failure(seq, "invalid_input", _NOT_A_BOOLEAN, field, bad, None))
        return numbers != 0
    if unreadable is not None and unreadable.any():
        failures.append(_Failure(seq, "invalid_input", _NOT_A_NUMBER, field, unreadable, None))
    bad = ~np.isfinite(numbers)
    if unreadable is not None:
        bad &= ~unreadable
    if bad.any():
        failures.append(_Failure(seq, "invalid_input", _NOT_FINITE_INPUT, field, bad, None))
    return numbers


Plan = Callable[[_Run, Mask], Any]


class _Part(NamedTuple):
    """A compiled subtree: its evaluation closure and its type."""

    fn: Plan
    kind: str  # NUMBER or BOOLEAN


class _Arithmetic(NamedTuple):
    symbol: str
    vector: np.ufunc
    divides: bool  # a zero right operand is a division by zero


_ARITHMETIC = {
    ast.Add: _Arithmetic("+", np.add, False),
    ast.Sub: _Arithmetic("-", np.subtract, False),
    ast.Mult: _Arithmetic("*", np.multiply, False),
    ast.Div: _Arithmetic("/", np.true_divide, True),
    ast.FloorDiv: _Arithmetic("//", np.floor_divide, True),
    ast.Mod: _Arithmetic("%", np.mod, True),
}
_UNSUPPORTED_OPERATORS = {
    ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
    ast.MatMult: "@", ast.Invert: "~", ast.Is: "is", ast.IsNot: "is not",
}
_ORDER = {ast.Lt: ("<", np.less), ast.LtE: ("<=", np.less_equal), ast.Gt: (">", np.greater),
          ast.GtE: (">=", np.greater_equal)}
_EQUALITY = {ast.Eq: ("==", np.equal), ast.NotEq: ("!=", np.not_equal)}
_FORBIDDEN = {
    ast.Attribute: ("attribute", "attribute access ('.') is not allowed"),
    ast.Subscript: ("subscript", "subscripts ('[...]') are not allowed"),
    ast.Slice: ("slice", "slices are not allowed"),
    ast.Lambda: ("lambda", "lambda is not allowed"),
    ast.NamedExpr: ("assignment", "assignment (':=') is not allowed"),
    ast.ListComp: ("comprehension", "comprehensions are not allowed"),
    ast.SetComp: ("comprehension", "comprehensions are not allowed"),
    ast.DictComp: ("comprehension", "comprehensions are not allowed"),
    ast.GeneratorExp: ("comprehension", "comprehensions are not allowed"),
    ast.List: ("list", "lists are not allowed"),
    ast.Set: ("set", "sets are not allowed"),
    ast.Dict: ("dict", "dicts are not allowed"),
    ast.Tuple: ("tuple", "tuples are only allowed after 'in', as in x in (1, 2, 3)"),
    ast.JoinedStr: ("f-string", "f-strings are not allowed"),
    ast.FormattedValue: ("f-string", "f-strings are not allowed"),
    ast.Starred: ("starred", "starred arguments ('*') are not allowed"),
    ast.Await: ("await", "await is not allowed"),
    ast.Yield: ("yield", "yield is not allowed"),
    ast.YieldFrom: ("yield", "yield is not allowed"),
}


def _kind_of(field_type: str) -> str:
    return BOOLEAN if field_type == BOOLEAN else NUMBER


class _Compiler:
    """Walks the syntax tree once: checks it and builds the column closures.

    Each node that can fail gets a sequence number in evaluation order (children
    left to right, then the node), which is the order simpleeval meets failures in
    one row; the compiled evaluator reports, for the first failing row, the failure
    with the smallest number, so both evaluators name the same error.
    """

    def __init__(self, text: str, lead: int, fields: Mapping[str, str],
                 registry: FunctionRegistry) -> None:
        self.text = text
        self.lead = lead
        self.fields = fields
        self.registry = registry
        self.names: set[str] = set()
        self.specs: dict[str, FunctionSpec] = {}
        self.count = 0
        self.seq = 0

    def error(self, node: ast.AST | None, code: str, template: str, **params: Any
              ) -> ExpressionError:
        column = None if node is None else _column(self.text, self.lead, node)
        return _error(code, template, self.text, column, **params)

    def type_error(self, node: ast.AST, template: str, **params: Any) -> ExpressionError:
        return self.error(node, "type", template, **params)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def compile(self, node: ast.AST, depth: int) -> _Part:
        self.count += 1
        if self.count > MAX_NODES:
            raise _too_many_nodes(self.text, _column(self.text, self.lead, node))
        if depth > MAX_TREE_DEPTH:
            raise self.error(node, "too_deep", "the expression is nested too deeply (more "
                             "than {limit} levels)", limit=MAX_TREE_DEPTH)
        handler = _HANDLERS.get(type(node))
        if handler is None:
            construct, template = _FORBIDDEN.get(
                type(node), (type(node).__name__, "{construct} is not allowed"))
            raise self.error(node, "forbidden", template, construct=construct)
        return handler(self, node, depth + 1)

    def number(self, node: ast.expr, depth: int, template: str, **params: Any) -> Plan:
        part = self.compile(node, depth)
        if part.kind != NUMBER:
            raise self.type_error(node, template, **params)
        return part.fn

    # -- leaves --

    def constant(self, node: ast.Constant, depth: int) -> _Part:
        value = node.value
        if isinstance(value, bool):
            return _Part(lambda run, mask: value, BOOLEAN)
        if isinstance(value, int | float):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                literal = ast.get_source_segment(self.text[self.lead:], node) or ""
                raise self.error(node, "not_finite", "the number {number} is too large",
                                 number=_shorten(literal))
            return _Part(lambda run, mask: number, NUMBER)
        if isinstance(value, str | bytes):
            raise self.error(node, "forbidden", "strings are not allowed", construct="string")
        construct = {type(None): "None", complex: "a complex number"}.get(type(value), "'...'")
        raise self.error(node, "forbidden", "{construct} is not allowed", construct=construct)

    def name(self, node: ast.Name, depth: int) -> _Part:
        name = node.id
        if name in self.fields:
            kind = self.fields[name]
            if kind not in FIELD_TYPES:
                raise ValueError(f"field {name!r} has unknown type {kind!r}; use one of "
                                 f"{FIELD_TYPES}")
            self.names.add(name)
            return _Part(lambda run, mask: run.columns[name], _kind_of(kind))
        if name in self.registry:
            raise self.type_error(node, "{name}() is a function; call it with arguments",
                                  name=name)
        close = difflib.get_close_matches(name, list(self.fields), n=1)
        raise self.error(node, "unknown_name", "unknown name {name!r}", name=name,
                         suggestion=close[0] if close else None)

    # -- operators --

    def unary(self, node: ast.UnaryOp, depth: int) -> _Part:
        op = type(node.op)
        if op in _UNSUPPORTED_OPERATORS:
            raise self.error(node, "forbidden", "operator {operator!r} is not supported",
                             operator=_UNSUPPORTED_OPERATORS[op])
        if op is ast.Not:
            inner = self.compile(node.operand, depth)
            if inner.kind != BOOLEAN:
                raise self.type_error(node.operand, "'not' needs a boolean (True/False), got "
                                      "a number")
            fn = inner.fn
            return _Part(lambda run, mask: np.logical_not(fn(run, mask)), BOOLEAN)
        symbol = "-" if op is ast.USub else "+"
        fn = self.number(node.operand, depth, "operator {operator!r} needs a number, got a "
                         "boolean", operator=symbol)
        ufunc = np.negative if op is ast.USub else np.positive
        return _Part(lambda run, mask: ufunc(fn(run, mask)), NUMBER)

    def binary(self, node: ast.BinOp, depth: int) -> _Part:
        op = type(node.op)
        if op in _UNSUPPORTED_OPERATORS:
            raise self.error(node, "forbidden", "operator {operator!r} is not supported",
                             operator=_UNSUPPORTED_OPERATORS[op])
        if op is ast.Pow:
            return self.power(node, depth)
        arithmetic = _ARITHMETIC[op]
        template = "operator {operator!r} needs numbers, got a boolean"
        left = self.number(node.left, depth, template, operator=arithmetic.symbol)
        right = self.number(node.right, depth, template, operator=arithmetic.symbol)
        seq = self.next_seq()
        ufunc, divides = arithmetic.vector, arithmetic.divides

        def apply(run: _Run, mask: Mask) -> Any:
            a, b = left(run, mask), right(run, mask)
            result = ufunc(a, b)
            finite = np.isfinite(result)
            if not finite.all():
                bad = np.logical_not(finite)
                if divides:
                    zero = np.equal(b, 0)
                    run.fail(mask, bad & zero, seq, "division_by_zero", _DIVISION_BY_ZERO, node)
                    bad = bad & ~zero
                run.fail(mask, bad, seq, "not_finite", _NOT_FINITE, node)
            return result

        return _Part(apply, NUMBER)

    def power(self, node: ast.BinOp, depth: int) -> _Part:
        template = "operator {operator!r} needs numbers, got a boolean"
        base = self.number(node.left, depth, template, operator="**")
        self.number(node.right, depth, template, operator="**")
        exponent = self.fold(node.right)
        if exponent is None:
            raise self.error(node.right, "power", "the exponent after '**' must be a constant "
                             "number")
        if abs(exponent) > MAX_POWER:
            raise self.error(node.right, "power", "the exponent {exponent} is too large (the "
                             "limit is {limit})", exponent=f"{exponent:g}", limit=MAX_POWER)
        self.fold(node)  # a constant base: fail now if the power overflows
        seq = self.next_seq()
        negative, fractional = exponent < 0, exponent != math.floor(exponent)

        def apply(run: _Run, mask: Mask) -> Any:
            a = base(run, mask)
            result = np.power(a, exponent)
            finite = np.isfinite(result)
            if not finite.all():
                bad = np.logical_not(finite)
                if negative:
                    zero = np.equal(a, 0)
                    run.fail(mask, bad & zero, seq, "division_by_zero", _DIVISION_BY_ZERO, node)
                    bad = bad & ~zero
                if fractional:
                    below = np.less(a, 0)
                    run.fail(mask, bad & below, seq, "domain", _FRACTIONAL_POWER, node)
                    bad = bad & ~below
                run.fail(mask, bad, seq, "not_finite", _NOT_FINITE, node)
            return result

        return _Part(apply, NUMBER)

    def fold(self, node: ast.expr) -> float | None:
        """The value of a constant number subtree (e.g. ``-2``, ``1/3``), or None."""
        if isinstance(node, ast.Constant):
            value = node.value
            return float(value) if isinstance(value, int | float) and not isinstance(
                value, bool) else None
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.fold(node.operand)
            if value is None:
                return None
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _ROW_OPERATORS:
            left, right = self.fold(node.left), self.fold(node.right)
            if left is None or right is None:
                return None
            try:
                return _ROW_OPERATORS[type(node.op)](left, right)
            except _RowFailure as failure:
                raise self.error(node, failure.code, failure.template,
                                 **failure.params) from None
        return None

    def boolean(self, node: ast.BoolOp, depth: int) -> _Part:
        word = "and" if isinstance(node.op, ast.And) else "or"
        fns = []
        for value in node.values:
            part = self.compile(value, depth)
            if part.kind != BOOLEAN:
                raise self.type_error(value, "{operator!r} needs booleans (True/False), got a "
                                      "number", operator=word)
            fns.append(part.fn)
        first, rest = fns[0], fns[1:]

        if word == "and":
            def apply(run: _Run, mask: Mask) -> Any:
                result = first(run, mask)
                for fn in rest:  # only rows still True need the next operand
                    result = np.logical_and(result, fn(run, run.narrow(mask, result)))
                return result
        else:
            def apply(run: _Run, mask: Mask) -> Any:
                result = first(run, mask)
                for fn in rest:  # only rows still False need the next operand
                    needed = run.narrow(mask, np.logical_not(result))
                    result = np.logical_or(result, fn(run, needed))
                return result

        return _Part(apply, BOOLEAN)

    def compare(self, node: ast.Compare, depth: int) -> _Part:
        head = left = self.compile(node.left, depth)
        steps: list[tuple[Callable[[Any, Any], Any], Plan]] = []
        last = len(node.ops) - 1
        for index, (op, comparator) in enumerate(zip(node.ops, node.comparators, strict=True)):
            kind = type(op)
            if kind in (ast.In, ast.NotIn):
                steps.append(self.membership(node, op, comparator, left, index == last, depth))
                continue
            if kind in _UNSUPPORTED_OPERATORS:
                raise self.error(node, "forbidden", "operator {operator!r} is not supported; "
                                 "use '==' or '!='", operator=_UNSUPPORTED_OPERATORS[kind])
            right = self.compile(comparator, depth)
            if kind in _ORDER:
                symbol, ufunc = _ORDER[kind]
                for side, part in ((node.left if index == 0 else node.comparators[index - 1],
                                    left), (comparator, right)):
                    if part.kind != NUMBER:
                        raise self.type_error(side, "{operator!r} compares numbers, got a "
                                              "boolean", operator=symbol)
            else:
                symbol, ufunc = _EQUALITY[kind]
                if left.kind != right.kind:
                    raise self.type_error(comparator, "{operator!r} needs two numbers or two "
                                          "booleans, got a {left} and a {right}",
                                          operator=symbol, left=left.kind, right=right.kind)
            steps.append((ufunc, right.fn))
            left = right
        first = head.fn

        def apply(run: _Run, mask: Mask) -> Any:
            a = first(run, mask)
            compare, fn = steps[0]
            b = fn(run, mask)
            result = compare(a, b)
            for compare, fn in steps[1:]:  # a < b < c: c only where a < b
                a, b = b, fn(run, run.narrow(mask, result))
                result = np.logical_and(result, compare(a, b))
            return result

        return _Part(apply, BOOLEAN)

    def membership(self, node: ast.Compare, op: ast.cmpop, comparator: ast.expr,
                   left: _Part, is_last: bool, depth: int
                   ) -> tuple[Callable[[Any, Any], Any], Plan]:
        word = "in" if isinstance(op, ast.In) else "not in"
        if not is_last:
            raise self.error(comparator, "syntax", "{operator!r} must be the last comparison",
                             operator=word)
        if left.kind != NUMBER:
            raise self.type_error(node, "{operator!r} needs a number on its left",
                                  operator=word)
        if not isinstance(comparator, ast.Tuple) or not comparator.elts:
            raise self.type_error(comparator, "{operator!r} needs a tuple of numbers, as in "
                                  "x {operator} (1, 2, 3)", operator=word)
        values = []
        for item in comparator.elts:
            part = self.compile(item, depth + 1)
            value = self.fold(item) if part.kind == NUMBER else None
            if value is None:
                raise self.type_error(item, "the values after {operator!r} must be constant "
                                      "numbers", operator=word)
            values.append(value)
        constants = np.array(values)
        negate = word == "not in"

        def test(a: Any, _: Any) -> Any:
            found = np.isin(a, constants)
            return np.logical_not(found) if negate else found

        return test, lambda run, mask: None

    def conditional(self, node: ast.IfExp, depth: int) -> _Part:
        test = self.compile(node.test, depth)
        if test.kind != BOOLEAN:
            raise self.type_error(node.test, "the condition of 'if' must be a boolean "
                                  "(True/False), got a number")
        body = self.compile(node.body, depth)
        orelse = self.compile(node.orelse, depth)
        if body.kind != orelse.kind:
            raise self.type_error(node, "both branches of 'if' must have the same type, got "
                                  "a {body} and a {orelse}", body=body.kind, orelse=orelse.kind)
        condition, yes, no = test.fn, body.fn, orelse.fn

        def apply(run: _Run, mask: Mask) -> Any:
            chosen = condition(run, mask)
            a = yes(run, run.narrow(mask, chosen))
            b = no(run, run.narrow(mask, np.logical_not(chosen)))
            return np.where(chosen, a, b)

        return _Part(apply, body.kind)

    def call(self, node: ast.Call, depth: int) -> _Part:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "forbidden", "only functions can be called, by name, as in "
                             "min(a, b)", construct="call")
        name = node.func.id
        spec = self.registry.get(name)
        if spec is None:
            if name in self.fields:
                raise self.type_error(node.func, "{name!r} is a field, not a function",
                                      name=name)
            close = difflib.get_close_matches(name, list(self.registry), n=1)
            raise self.error(node.func, "unknown_function", "unknown function {name!r}",
                             name=name, suggestion=close[0] if close else None)
        self.count += 1  # the function's name
        if node.keywords:
            raise self.error(node.keywords[0], "forbidden", "keyword arguments are not allowed",
                             construct="keyword")
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.error(argument, "forbidden", _FORBIDDEN[ast.Starred][1],
                                 construct="starred")
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            raise self.error(node, "arity", "{function}() takes {expected} arguments, got "
                             "{got}", function=name, expected=spec.arity_text(), got=count)
        fns = []
        for position, argument in enumerate(node.args):
            fns.append(self.number(argument, depth, "argument {position} of {function}() must "
                                   "be a number, got a boolean", position=position + 1,
                                   function=name))
            if position in spec.constant_args:
                low, high = spec.constant_args[position]
                value = self.fold(argument)
                if value is None or value != math.floor(value) or not low <= value <= high:
                    raise self.error(argument, "argument", "argument {position} of "
                                     "{function}() must be a whole number from {low} to "
                                     "{high}", position=position + 1, function=name,
                                     low=low, high=high)
        self.specs[name] = spec
        seq = self.next_seq()
        template = _FUNCTION_FAILURE[spec.failure]
        plan = _plugin_call if spec.compress else _builtin_call
        return _Part(plan(spec, fns, seq, template, node), spec.returns)


_HANDLERS: dict[type, Callable[[_Compiler, Any, int], _Part]] = {
    ast.Constant: _Compiler.constant,
    ast.Name: _Compiler.name,
    ast.UnaryOp: _Compiler.unary,
    ast.BinOp: _Compiler.binary,
    ast.BoolOp: _Compiler.boolean,
    ast.Compare: _Compiler.compare,
    ast.IfExp: _Compiler.conditional,
    ast.Call: _Compiler.call,
}


def _builtin_call(spec: FunctionSpec, fns: list[Plan], seq: int, template: str,
                  node: ast.AST) -> Plan:
    """A built-in: its vector form is safe on any floats, so run it on all rows."""
    vector, check = spec.vector, not spec.always_finite

    def apply(run: _Run, mask: Mask) -> Any:
        result = vector(*[fn(run, mask) for fn in fns])
        if check:
            finite = np.isfinite(result)
            if not finite.all():
                run.fail(mask, np.logical_not(finite), seq, spec.failure, template, node,
                         function=spec.name)
        return result

    return apply


def _plugin_call(spec: FunctionSpec, fns: list[Plan], seq: int, template: str,
                 node: ast.AST) -> Plan:
    """A plugin function: call its vector form with only the rows that need it.

    If the vector form raises, the scalar form runs row by row to find the rows
    that fail, exactly as the reference evaluator would.
    """
    boolean = spec.returns == BOOLEAN
    dtype = np.bool_ if boolean else np.float64

    def apply(run: _Run, mask: Mask) -> Any:
        columns = [np.broadcast_to(np.asarray(fn(run, mask), dtype=np.float64), (run.n,))
                   for fn in fns]
        if mask is not None:
            columns = [column[mask] for column in columns]
        rows = len(columns[0]) if columns else (run.n if mask is None else int(mask.sum()))
        failed = np.zeros(rows, dtype=bool)
        try:
            if rows == 0:  # no row needs it: do not call it at all
                values = np.zeros(0, dtype=dtype)
            else:
                values = np.broadcast_to(np.asarray(spec.vector(*columns), dtype=dtype), (rows,))
        except Exception:
            values = np.zeros(rows, dtype=dtype)
            for index in range(rows):
                try:
                    values[index] = _call_scalar(spec, *(float(c[index]) for c in columns))
                except _RowFailure:
                    failed[index] = True
        if not boolean:
            failed |= ~np.isfinite(values)
        if mask is None:
            result, failed_rows = values, failed
        else:
            result = np.zeros(run.n, dtype=dtype)
            result[mask] = values
            failed_rows = np.zeros(run.n, dtype=bool)
            failed_rows[mask] = failed
        if failed_rows.any():
            run.fail(None, failed_rows, seq, spec.failure, template, node, function=spec.name)
        return result

    return apply
