"""The one check of an input value, on every path that writes one.

A unit's inputs (``hist_sales``, ``new_city_share``, ...) are written by the collect
form, the org page, the API (``PUT /api/v1/units/{code}/attributes``) and the .xlsx /
.csv upload. Each of them calls :func:`refuse_bad_values` (or, for a sheet,
:func:`column_problems`) before it writes, and these run the pure core's check of the
active factor model's field spec (:meth:`quotaflow.rules.model.FieldSpec.check`: type,
min/max, required, whole number, 0/1) -- the same check the planner runs when it
loads the period. So no path can save a value after which no plan can be computed.

Names the model does not declare are not checked here (the org page keeps free-form
attributes); a value cleared (``None``) is refused where the field needs a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow.errors import Invalid
from quotaflow.messages import _l, register
from quotaflow.rules.model import FieldSpec, field_specs
from quotaflow.services import specs

MODEL_KEY = "default"

class InputCheckError(Invalid):
    """An input value the active factor model refuses; ``pointer`` names the field
    (``/values/<name>``), ``params`` the field, the value and the limit."""

    domain = "input_check"
    CODES = register(domain, {
        "missing": _l("%(field)s needs a value."),
        "not_finite": _l("%(field)s must be a finite number."),
        "below_minimum": _l("%(field)s must be at least %(min)s; got %(value)s."),
        "above_maximum": _l("%(field)s must be at most %(max)s; got %(value)s."),
        "not_integer": _l("%(field)s must be a whole number; got %(value)s."),
        "not_boolean": _l("%(field)s must be 0 or 1 (no or yes); got %(value)s."),
    })


@dataclass(frozen=True)
class Problem:
    """One refused value: the row it sits in (of the checked column), a code of
    :class:`InputCheckError` and its params."""

    row: int
    code: str
    params: Mapping[str, Any]


def active_fields(session: Session) -> dict[str, FieldSpec]:
    """The input fields of the active factor model, by name (empty without one)."""
    spec = specs.active_version(session, specs.FACTOR_MODEL_KIND, MODEL_KEY)
    if spec is None:
        return {}
    return {f.name: f for f in field_specs(spec.content.get("fields", ()))}


def _plain(value: float) -> int | float | str:
    if not np.isfinite(value):
        return str(value)
    return int(value) if float(value).is_integer() else float(value)


def column_problems(spec: FieldSpec, column: np.ndarray, limit: int = 1) -> list[Problem]:
    """The values of ``column`` (NaN: none) the field's check refuses, at most ``limit``,
    each with its row; empty when the column passes."""
    column = np.asarray(column, dtype=np.float64)
    found = spec.check(column)
    if found is None:
        return []
    kind, bad = found
    out = []
    for row in np.flatnonzero(bad)[:limit].tolist():
        value = float(column[row])
        params: dict[str, Any] = {"field": spec.name}
        if kind == "missing":
            code = "missing"
        elif kind == "out_of_range":
            if not np.isfinite(value):
                code = "not_finite"
            elif spec.min is not None and value < spec.min:
                code, params["min"] = "below_minimum", _plain(spec.min)
            else:
                code, params["max"] = "above_maximum", _plain(spec.max or 0.0)
        else:
            code = kind
        if kind != "missing":
            params["value"] = _plain(value)
        out.append(Problem(row, code, params))
    return out


def value_problem(spec: FieldSpec, value: float | None) -> Problem | None:
    """The check of one value (``None``: cleared)."""
    found = column_problems(spec, np.array([np.nan if value is None else value]))
    return found[0] if found else None


def refuse_bad_values(fields: Mapping[str, FieldSpec], values: Mapping[str, float | None],
                      prefix: str = "/values") -> None:
    """Raise :class:`InputCheckError` for the first value the model's fields refuse."""
    for name, value in values.items():
        spec = fields.get(name)
        if spec is None:
            continue
        problem = value_problem(spec, value)
        if problem is not None:
            raise InputCheckError(problem.code, f"{prefix}/{name}", **problem.params)


def check_values(session: Session, values: Mapping[str, float | None],
                 prefix: str = "/values") -> None:
    """:func:`refuse_bad_values` under the active factor model."""
    refuse_bad_values(active_fields(session), values, prefix)


def first_problems(fields: Mapping[str, FieldSpec], columns: Mapping[str, Sequence[float]],
                   limit: int) -> dict[str, list[Problem]]:
    """Per field name, the refused values of each column (rows into that column)."""
    out = {}
    for name, column in columns.items():
        if name in fields and len(column):
            found = column_problems(fields[name], np.asarray(column, dtype=np.float64), limit)
            if found:
                out[name] = found
    return out
