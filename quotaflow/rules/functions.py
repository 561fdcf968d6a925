"""The functions an expression may call: a small registry of named functions.

Every function has two forms that must agree on every input:

* ``scalar(*floats)`` works on one row; the row-by-row reference evaluator
  (simpleeval) calls it.
* ``vector(*arrays)`` works on numpy columns; the compiled evaluator calls it.

A function fails (its ``failure`` error code, "domain" unless told otherwise) when
the scalar form raises ``ArithmeticError``/``ValueError`` or either form gives a
non-finite number. Plugins add functions through :meth:`FunctionRegistry.register`;
the built-ins are min, max, abs, round, clip, floor, ceil, log, exp and sqrt.
"""

from __future__ import annotations

import functools
import keyword
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

NUMBER = "number"
BOOLEAN = "boolean"
RESULT_TYPES = (NUMBER, BOOLEAN)
FAILURE_CODES = ("domain", "not_finite", "division_by_zero")

MAX_ROUND_DIGITS = 15  # round(x, n) takes a constant n with |n| <= this (10**n is exact)
_EXACT_INTEGER = 2.0**52  # every float at least this large is already a whole number


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """One callable function of the expression language.

    ``constant_args`` maps argument positions (0-based) to the inclusive range of
    whole-number constants they accept, e.g. the digits of ``round(x, 2)``.
    ``always_finite`` promises that finite arguments give a finite result (so the
    compiled evaluator skips the check). ``compress`` asks the compiled evaluator to
    call ``vector`` only with the rows where the value is needed, as full arrays;
    built-ins that are harmless on any float set it to False.
    """

    name: str
    scalar: Callable[..., Any]
    vector: Callable[..., Any]
    min_args: int
    max_args: int | None
    returns: str = NUMBER
    failure: str = "domain"
    constant_args: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    always_finite: bool = False
    compress: bool = True

    def arity_text(self) -> str:
        """Describe the accepted number of arguments in English ("2 or more", "1 to 2")."""
        if self.max_args is None:
            return f"{self.min_args} or more"
        if self.max_args == self.min_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


class FunctionRegistry:
    """Named functions callable from expressions; starts with the built-ins.

    >>> registry = FunctionRegistry()
    >>> spec = registry.register("double", scalar=lambda x: 2 * x, vector=lambda x: 2 * x)
    >>> "double" in registry, spec.arity_text()
    (True, '1')
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._specs: dict[str, FunctionSpec] = dict(_BUILTIN_SPECS) if builtins else {}
        self._frozen = False

    def register(
        self,
        name: str,
        *,
        scalar: Callable[..., Any],
        vector: Callable[..., Any],
        arity: tuple[int, int | None] = (1, 1),
        returns: str = NUMBER,
        failure: str = "domain",
        constant_args: Mapping[int, tuple[int, int]] | None = None,
        replace: bool = False,
    ) -> FunctionSpec:
        """Add a function taking numbers; ``arity`` is (min, max) with max None for "any"."""
        if self._frozen:
            raise RuntimeError("this function registry is read-only; use FunctionRegistry()")
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"function name {name!r} is not a valid identifier")
        if name.startswith("_"):
            raise ValueError(f"function name {name!r} must not start with '_'")
        if name in self._specs and not replace:
            raise ValueError(f"function {name!r} is already registered")
        if not callable(scalar) or not callable(vector):
            raise ValueError(f"function {name!r} needs callable scalar and vector forms")
        low, high = arity
        if low < 0 or (high is not None and high < low):
            raise ValueError(f"function {name!r} has an invalid arity {arity!r}")
        if returns not in RESULT_TYPES:
            raise ValueError(f"function {name!r} must return one of {RESULT_TYPES}")
        if failure not in FAILURE_CODES:
            raise ValueError(f"function {name!r}: failure must be one of {FAILURE_CODES}")
        spec = FunctionSpec(
            name=name,
            scalar=scalar,
            vector=vector,
            min_args=low,
            max_args=high,
            returns=returns,
            failure=failure,
            constant_args=dict(constant_args or {}),
        )
        self._specs[name] = spec
        return spec

    def get(self, name: str) -> FunctionSpec | None:
        """The function called ``name``, or None."""
        return self._specs.get(name)

    def names(self) -> tuple[str, ...]:
        """All function names, sorted."""
        return tuple(sorted(self._specs))

    def frozen(self) -> FunctionRegistry:
        """A read-only copy of this registry."""
        copy = FunctionRegistry(builtins=False)
        copy._specs = dict(self._specs)
        copy._frozen = True
        return copy

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"FunctionRegistry({', '.join(self.names())})"


# --- built-in scalar and vector forms -------------------------------------------


def _round_scalar(x: float, digits: float = 0) -> float:
    """Round half to even, like numpy.round: rint(x * 10**n) / 10**n."""
    n = int(digits)
    if n >= 0:
        if abs(x) >= _EXACT_INTEGER:
            return x
        scale = 10.0**n
        return float(round(x * scale)) / scale
    scale = 10.0**-n
    return float(round(x / scale)) * scale


def _round_vector(x: Any, digits: Any = 0) -> Any:
    n = int(digits)
    if n >= 0:
        scale = 10.0**n
        return np.where(np.abs(x) >= _EXACT_INTEGER, x, np.rint(np.multiply(x, scale)) / scale)
    scale = 10.0**-n
    return np.rint(np.true_divide(x, scale)) * scale


def _clip_scalar(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


def _clip_vector(x: Any, low: Any, high: Any) -> Any:
    return np.minimum(np.maximum(x, low), high)


def _builtin(
    name: str,
    scalar: Callable[..., Any],
    vector: Callable[..., Any],
    arity: tuple[int, int | None],
    *,
    failure: str = "domain",
    always_finite: bool = False,
    constant_args: Mapping[int, tuple[int, int]] | None = None,
) -> FunctionSpec:
    return FunctionSpec(
        name=name,
        scalar=scalar,
        vector=vector,
        min_args=arity[0],
        max_args=arity[1],
        failure=failure,
        constant_args=dict(constant_args or {}),
        always_finite=always_finite,
        compress=False,
    )


_BUILTIN_SPECS: dict[str, FunctionSpec] = {
    spec.name: spec
    for spec in (
        _builtin("min", min, lambda *a: functools.reduce(np.minimum, a), (2, None),
                 always_finite=True),
        _builtin("max", max, lambda *a: functools.reduce(np.maximum, a), (2, None),
                 always_finite=True),
        _builtin("abs", abs, np.abs, (1, 1), always_finite=True),
        _builtin("round", _round_scalar, _round_vector, (1, 2), failure="not_finite",
                 constant_args={1: (-MAX_ROUND_DIGITS, MAX_ROUND_DIGITS)}),
        _builtin("clip", _clip_scalar, _clip_vector, (3, 3), always_finite=True),
        _builtin("floor", math.floor, np.floor, (1, 1), always_finite=True),
        _builtin("ceil", math.ceil, np.ceil, (1, 1), always_finite=True),
        _builtin("log", math.log, np.log, (1, 1)),
        _builtin("exp", math.exp, np.exp, (1, 1), failure="not_finite"),
        _builtin("sqrt", math.sqrt, np.sqrt, (1, 1)),
    )
}

BUILTIN_FUNCTIONS = FunctionRegistry().frozen()
"""The read-only registry used when compile_expression gets no ``functions``."""
