"""Factor-model spec -> validated, compiled dataclasses.

A factor model (DESIGN.md, "The allocation model") is a JSON document: input fields,
factors (an expression yielding a non-negative measure per unit, normalised among
siblings), weights in percent that total exactly 100, and a policy per level (bounds
as expressions, rounding unit, locked units). :func:`load_model` validates it against
``quotaflow/schemas/factor-model.schema.json`` and then semantically, and compiles every
expression once; the allocation engine then trusts what it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from quotaflow.rules.expressions import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules.functions import FunctionRegistry
from quotaflow.rules.specs import (
    SpecError,
    SpecIssue,
    find_column,
    pointer,
    read_json,
    schema_issues,
)

NORMALISATIONS = ("share", "score", "rank")
DEFAULT_POLICY = "default"
#: The expression language knows numbers and booleans; integers are numbers to it.
_EXPR_TYPE = {"number": "number", "integer": "number", "boolean": "boolean"}


class ModelError(SpecError):
    """A factor model is invalid; each issue carries a JSON pointer (and column)."""

    kind = "factor model"


@dataclass(frozen=True)
class FieldSpec:
    """An input column every unit carries (e.g. ``hist_sales``)."""

    name: str
    type: str = "number"
    label_en: str = ""
    label_zh: str = ""
    min: float | None = None
    max: float | None = None
    required: bool = True
    default: float | bool | None = None
    help: str = ""

    def out_of_range(self, column: np.ndarray) -> np.ndarray:
        """Mask of the values that are not finite or lie outside [min, max]."""
        bad = ~np.isfinite(column)
        if self.min is not None:
            bad |= column < self.min
        if self.max is not None:
            bad |= column > self.max
        return bad

    @property
    def needs_value(self) -> bool:
        """Whether a unit must carry a value (no default stands in for a missing one)."""
        return self.required or self.default is None

    def check(self, column: np.ndarray) -> tuple[str, np.ndarray] | None:
        """The one check of an input column (the planner's, and every write path's).

        ``column`` is float64 with NaN for a missing value. Returns the first check it
        fails, one of :data:`FIELD_PROBLEMS`, with the mask of the failing rows; None
        when every value passes. A missing value passes where the default stands in.
        """
        column = np.asarray(column, dtype=np.float64)
        missing = np.isnan(column)
        if self.needs_value and missing.any():
            return "missing", missing
        present = ~missing
        bad = present & self.out_of_range(column)
        if bad.any():
            return "out_of_range", bad
        if self.type == "integer":
            odd = present & (column != np.floor(column))
            if odd.any():
                return "not_integer", odd
        if self.type == "boolean":
            odd = present & (column != 0) & (column != 1)
            if odd.any():
                return "not_boolean", odd
        return None

    def filled(self, column: np.ndarray) -> np.ndarray:
        """``column`` with the default in place of missing values (where it has one)."""
        if self.default is None:
            return column
        column = np.array(column, dtype=np.float64)
        column[np.isnan(column)] = float(self.default)
        return column


#: What :meth:`FieldSpec.check` refuses, in the order it checks.
FIELD_PROBLEMS = ("missing", "out_of_range", "not_integer", "not_boolean")


def field_specs(docs: Any) -> tuple[FieldSpec, ...]:
    """A factor model's ``fields`` list as FieldSpecs (no validation: see load_model)."""
    return tuple(
        FieldSpec(name=f["name"], type=f.get("type", "number"), label_en=f.get("label_en", ""),
                  label_zh=f.get("label_zh", ""), min=f.get("min"), max=f.get("max"),
                  required=f.get("required", True), default=f.get("default"),
                  help=f.get("help", ""))
        for f in docs)


@dataclass(frozen=True)
class FactorSpec:
    """A factor: a compiled measure expression and how measures become shares."""

    key: str
    label_en: str
    label_zh: str
    fields: tuple[str, ...]
    source: str
    expression: CompiledExpression
    normalisation: str
    scale_source: str | None = None
    scale: CompiledExpression | None = None
    help: str = ""


@dataclass(frozen=True)
class LevelPolicy:
    """Bounds, rounding unit and locks of one level (already merged with the default)."""

    level: str
    lower_source: str | None = None
    lower: CompiledExpression | None = None
    upper_source: str | None = None
    upper: CompiledExpression | None = None
    rounding_unit: int = 1
    locks: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class FactorModel:
    """A validated factor model. Weights are kept as percent and as fractions."""

    id: str
    version: int
    fields: tuple[FieldSpec, ...]
    factors: tuple[FactorSpec, ...]
    weight_percent: tuple[float, ...]
    policies: Mapping[str, LevelPolicy]
    levels: tuple[str, ...] = ()
    name_en: str = ""
    name_zh: str = ""
    content_hash: str = ""
    doc: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # The functions its expressions may call (built-ins when None); derived specs reuse them.
    functions: FunctionRegistry | None = field(default=None, repr=False, compare=False)

    @property
    def weights(self) -> np.ndarray:
        """Factor weights as fractions of 1, in factor order."""
        return np.asarray(self.weight_percent, dtype=float) / 100.0

    @property
    def factor_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.factors)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def policy(self, level: str) -> LevelPolicy:
        """The policy of ``level``: its own, else the default, else no bounds, unit 1."""
        if level in self.policies:
            return self.policies[level]
        base = self.policies.get(DEFAULT_POLICY)
        return replace(base, level=level) if base else LevelPolicy(level)

    def derive(self, *, weight_percent: tuple[float, ...] | None = None,
               policy_overrides: Mapping[str, Mapping[str, Any]] | None = None) -> FactorModel:
        """A copy with other weights and/or policy keys (how scenarios tilt a model).

        ``policy_overrides`` maps a level (or "default") to policy keys that replace the
        model's, merged before the default is applied to the levels, so overriding the
        default's upper bound reaches every level that did not set its own.
        """
        policies = self.policies
        if policy_overrides:
            merged = {k: dict(v) for k, v in self.doc.get("policies", {}).items()}
            for level, keys in policy_overrides.items():
                merged.setdefault(level, {}).update(keys)
            issues: list[SpecIssue] = []
            policies = MappingProxyType(build_policies(
                merged, expression_fields(self.fields), issues, self.levels,
                functions=self.functions))
            if issues:
                raise ModelError(issues)
        return replace(self, weight_percent=tuple(weight_percent or self.weight_percent),
                       policies=policies)


def expression_fields(fields: tuple[FieldSpec, ...] | list[FieldSpec]) -> dict[str, str]:
    """Field name -> expression-language type, as compile_expression wants them."""
    return {f.name: _EXPR_TYPE[f.type] for f in fields}


def compile_at(source: str, fields: Mapping[str, str], ptr: str, issues: list[SpecIssue],
               expect: str | None = "number",
               functions: FunctionRegistry | None = None) -> CompiledExpression | None:
    """Compile ``source``; on failure record an issue at ``ptr`` and return None."""
    try:
        return compile_expression(source, fields=dict(fields), functions=functions, expect=expect)
    except ExpressionError as exc:
        issues.append(SpecIssue(ptr, exc.message, f"expression.{exc.code}",
                                getattr(exc, "column", None)))
        return None


def compile_policy(doc: Mapping[str, Any], fields: Mapping[str, str], ptr: str,
                   issues: list[SpecIssue], level: str,
                   base: LevelPolicy | None = None,
                   functions: FunctionRegistry | None = None) -> LevelPolicy:
    """Compile one policy document, each key overriding ``base`` (the default policy)."""
    pol = base if base is not None else LevelPolicy(level)
    pol = replace(pol, level=level)
    for bound in ("lower", "upper"):
        if bound in doc:
            src = doc[bound]
            pol = replace(pol, **{bound: compile_at(src, fields, f"{ptr}/{bound}", issues,
                                                    functions=functions),
                                  f"{bound}_source": src})
    if "rounding_unit" in doc:
        pol = replace(pol, rounding_unit=int(doc["rounding_unit"]))
    if "locks" in doc:
        locks = dict(pol.locks)
        locks.update({str(k): int(v) for k, v in doc["locks"].items()})
        pol = replace(pol, locks=MappingProxyType(locks))
    return pol


def load_model(source: str | Path | Mapping[str, Any], *,
               functions: FunctionRegistry | None = None) -> FactorModel:
    """Validate a factor-model document (or JSON file) and compile it.

    ``functions`` adds plugin functions to the built-ins its expressions may call.

    Raises :class:`ModelError` listing every problem, each with a JSON pointer.
    """
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("factor-model", doc)
    if issues:
        raise ModelError(issues)

    fields = field_specs(doc["fields"])
    _check_fields(doc, fields, issues)
    types = expression_fields(fields)

    factors = tuple(_factor(doc, i, types, issues, functions) for i in range(len(doc["factors"])))
    weight_percent = _weights(doc, issues)
    policies = build_policies(doc.get("policies", {}), types, issues, doc.get("levels"),
                              functions=functions)
    if issues:
        raise ModelError(issues)
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return FactorModel(
        id=doc["id"], version=doc["version"], fields=fields, factors=factors,
        weight_percent=weight_percent, policies=MappingProxyType(policies),
        levels=tuple(doc.get("levels", ())), name_en=doc.get("name_en", ""),
        name_zh=doc.get("name_zh", ""),
        content_hash=hashlib.sha256(canonical.encode()).hexdigest(), doc=doc,
        functions=functions)


def _check_fields(doc: dict[str, Any], fields: tuple[FieldSpec, ...],
                  issues: list[SpecIssue]) -> None:
    seen: set[str] = set()
    for i, f in enumerate(fields):
        ptr = pointer("fields", i)
        if f.name in seen:
            issues.append(SpecIssue(f"{ptr}/name", f"duplicate field name {f.name!r}",
                                    "duplicate"))
        seen.add(f.name)
        if f.min is not None and f.max is not None and f.min > f.max:
            issues.append(SpecIssue(f"{ptr}/min", f"min {f.min} is above max {f.max}",
                                    "range"))
        if f.default is not None and (f.type == "boolean") != isinstance(f.default, bool):
            issues.append(SpecIssue(f"{ptr}/default", f"default does not fit type {f.type}",
                                    "type"))


def _factor(doc: dict[str, Any], i: int, types: dict[str, str],
            issues: list[SpecIssue], functions: FunctionRegistry | None) -> FactorSpec:
    raw = doc["factors"][i]
    ptr = pointer("factors", i)
    key = raw["key"]
    if any(f["key"] == key for f in doc["factors"][:i]):
        issues.append(SpecIssue(f"{ptr}/key", f"duplicate factor key {key!r}", "duplicate"))
    listed = tuple(raw["fields"])
    for j, name in enumerate(listed):
        if name not in types:
            issues.append(SpecIssue(f"{ptr}/fields/{j}",
                                    f"factor {key!r} uses field {name!r}, which the model "
                                    "does not declare", "unknown_field"))
    expr = compile_at(raw["expression"], types, f"{ptr}/expression", issues,
                      functions=functions)
    scale = None
    if "scale" in raw:
        if raw["normalisation"] != "score":
            issues.append(SpecIssue(f"{ptr}/scale", "scale applies to score factors only",
                                    "scale"))
        scale = compile_at(raw["scale"], types, f"{ptr}/scale", issues, functions=functions)
    # Every name an expression reads must be listed, so the factor's inputs are visible
    # (and auditable) without parsing the expression.
    for what, ex in (("expression", expr), ("scale", scale)):
        if ex is None:
            continue
        for name in ex.names:
            if name not in listed:
                issues.append(SpecIssue(
                    f"{ptr}/{what}", f"reads field {name!r}, which is not in the factor's "
                    "fields list", "unlisted_field", find_column(raw[what], name)))
    return FactorSpec(key=key, label_en=raw.get("label_en", key),
                      label_zh=raw.get("label_zh", raw.get("label_en", key)), fields=listed,
                      source=raw["expression"], expression=expr,
                      normalisation=raw["normalisation"], scale_source=raw.get("scale"),
                      scale=scale, help=raw.get("help", ""))


def _weights(doc: dict[str, Any], issues: list[SpecIssue]) -> tuple[float, ...]:
    weights = doc["weights"]
    keys = [f["key"] for f in doc["factors"]]
    for k in weights:
        if k not in keys:
            issues.append(SpecIssue(pointer("weights", k), f"weight for unknown factor {k!r}",
                                    "unknown_factor"))
    for i, k in enumerate(keys):
        if k not in weights:
            issues.append(SpecIssue(pointer("factors", i, "key"),
                                    f"factor {k!r} has no weight", "missing_weight"))
    # Decimal of the JSON literal: 33.3 + 33.3 + 33.4 is exactly 100, as a person reads it.
    total = sum((Decimal(repr(v)) for v in weights.values()), Decimal(0))
    if total != 100:
        issues.append(SpecIssue("/weights", f"weights total {total}%, not 100%",
                                "weights_total"))
    return tuple(float(weights.get(k, 0)) for k in keys)


def build_policies(raw: Mapping[str, Any], types: Mapping[str, str], issues: list[SpecIssue],
                   levels: tuple[str, ...] | list[str] | None = None,
                   ptr: str = "/policies",
                   functions: FunctionRegistry | None = None) -> dict[str, LevelPolicy]:
    """Compile a ``policies`` object: the default, then each level merged over it."""
    default = None
    if DEFAULT_POLICY in raw:
        default = compile_policy(raw[DEFAULT_POLICY], types, ptr + pointer(DEFAULT_POLICY),
                                 issues, DEFAULT_POLICY, functions=functions)
    out: dict[str, LevelPolicy] = {DEFAULT_POLICY: default} if default else {}
    for level, pdoc in raw.items():
        if level == DEFAULT_POLICY:
            continue
        if levels and level not in levels:
            issues.append(SpecIssue(ptr + pointer(level),
                                    f"policy for unknown level {level!r} (levels: "
                                    f"{', '.join(levels)})", "unknown_level"))
        # Locks belong to the policy that names them: a level does not inherit the
        # default's locks (they stay in the default and apply to whatever level).
        base = replace(default, locks=MappingProxyType({})) if default else None
        out[level] = compile_policy(pdoc, types, ptr + pointer(level), issues, level, base,
                                    functions=functions)
    # A unit may be locked once: two levels locking the same id would be ambiguous.
    owner: dict[str, str] = {}
    for level, pdoc in raw.items():
        for uid in pdoc.get("locks", {}):
            if uid in owner:
                issues.append(SpecIssue(ptr + pointer(level, "locks", uid),
                                        f"unit {uid!r} is already locked under "
                                        f"{owner[uid]!r}", "duplicate"))
            owner[uid] = level
    return out
