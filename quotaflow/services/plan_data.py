"""A period's data from the database as the rules engine's UnitTree.

One query for the active org units, one per input field the model declares (the
one loader, ``quotaflow.store.org_columns``), each column checked by the one field
check (``FieldSpec.check``), then numpy all the way: no Python loop over units,
so a 100k-person organisation loads in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.rules import FactorModel, TreeError, UnitTree, build_tree
from quotaflow.rules.model import FieldSpec
from quotaflow.store import org_columns
from quotaflow.store import queries as q
from quotaflow.store.models import Period

#: How many unit codes an error names before it only counts the rest.
NAMED_UNITS = 5



class PlanError(QuotaFlowError):
    """A plan cannot be computed or read: a stable code, its parameters and where
    (a JSON pointer into the request)."""

    domain = "plan"
    CODE_KINDS = code_kinds(unit_not_in_plan="not_found")
    CODES = messages.register(domain, {
        "bad_total": _l("Enter the company total as a positive number of yuan."),
        "unknown_scenario": _l("Unknown scenario “%(scenario)s”."),
        "no_model": _l("No factor model is active. Activate one before planning."),
        "model_invalid": _l("The factor model is not valid at %(at)s: %(detail)s"),
        "presets_invalid": _l("The scenario presets are not valid at %(at)s: %(detail)s"),
        "risks_invalid": _l("The risk rules are not valid at %(at)s: %(detail)s"),
        "no_units": _l("The organisation has no active units."),
        "inactive_parent": _l("%(count)s active units sit under a missing or inactive parent: "
                              "%(units)s."),
        "bad_tree": _l("The organisation tree is not valid: %(detail)s"),
        "missing_values": _l("%(count)s units have no value for “%(field)s” in %(period)s: "
                             "%(units)s."),
        "out_of_range": _l("%(count)s units have a value of “%(field)s” outside [%(min)s, %(max)s] "
                           "in %(period)s: %(units)s."),
        "not_integer": _l("%(count)s units have a value of “%(field)s” that is not a whole number "
                          "in %(period)s: %(units)s."),
        "not_boolean": _l("%(count)s units have a value of “%(field)s” that is not 0 or 1 in "
                          "%(period)s: %(units)s."),
        "allocation": _l("The model cannot run on this data: %(detail)s"),
        "note_too_long": _l("The note is longer than %(max)s characters."),
        "unit_not_in_plan": _l("Unit %(unit)s is not in this plan."),
    })


@dataclass(frozen=True, eq=False)
class PeriodData:
    """A period's units and inputs: ``tree`` rows are in ``unit_ids`` order (by id)."""

    period: Period
    tree: UnitTree
    unit_ids: np.ndarray  # database ids, int64

    @property
    def codes(self) -> np.ndarray:
        return self.tree.ids


def _named(codes: np.ndarray, bad: np.ndarray) -> dict[str, Any]:
    rows = np.flatnonzero(bad)
    shown = ", ".join(codes[rows[:NAMED_UNITS]].tolist())
    if len(rows) > NAMED_UNITS:
        shown += f" (+{len(rows) - NAMED_UNITS})"
    return {"count": len(rows), "units": shown}


#: FieldSpec.check's problem -> this module's message code.
_PROBLEM_CODES = {"missing": "missing_values", "out_of_range": "out_of_range",
                  "not_integer": "not_integer", "not_boolean": "not_boolean"}


def field_problem(spec: FieldSpec, column: np.ndarray, codes: np.ndarray,
                  period_code: str) -> PlanError | None:
    """The refusal of an input column by the one field check, naming the units; None when
    it passes. ``column`` has NaN where a unit has no value."""
    found = spec.check(column)
    if found is None:
        return None
    problem, bad = found
    extra: dict[str, Any] = {}
    if problem == "out_of_range":
        extra = {"min": "-inf" if spec.min is None else f"{spec.min:g}",
                 "max": "inf" if spec.max is None else f"{spec.max:g}"}
    return PlanError(_PROBLEM_CODES[problem], field=spec.name, period=period_code, **extra,
                     **_named(codes, bad))


def checked_columns(session: Session, period: Period, fields: Sequence[FieldSpec],
                    unit_ids: np.ndarray, codes: np.ndarray, *,
                    all_active: bool = False) -> dict[str, np.ndarray]:
    """The input columns of ``fields`` for the units, through the one loader and the one
    field check; missing values take the field's default. Raises PlanError."""
    columns = {}
    any_inactive = org_columns.inactive_units(session) > 0 if all_active else False
    for spec in fields:
        column = org_columns.input_column(session, period.id, spec.name, unit_ids,
                                          all_active=all_active, any_inactive=any_inactive)
        if (error := field_problem(spec, column, codes, period.code)) is not None:
            raise error
        columns[spec.name] = spec.filled(column)
    return columns


def load_period_data(session: Session, period: Period, model: FactorModel) -> PeriodData:
    """The active org tree with every input field ``model`` declares, for ``period``.

    Levels are named by depth from the org levels' keys. Missing or out-of-range values
    raise :class:`PlanError` naming the field and the units.
    """
    units = org_columns.org_columns(session)
    if units.size == 0:
        raise PlanError("no_units")
    if (orphan := units.orphans).any():
        raise PlanError("inactive_parent", **_named(units.codes, orphan))
    levels = tuple(level.key for level in q.levels(session))
    columns = checked_columns(session, period, model.fields, units.ids, units.codes,
                              all_active=True)
    try:
        tree = build_tree(units.codes, units.parent_row, columns, levels=levels,
                          labels={"name_en": units.name_en, "name_zh": units.name_zh})
    except TreeError as exc:
        raise PlanError("bad_tree", detail=str(exc)) from None
    return PeriodData(period=period, tree=tree, unit_ids=units.ids)
