"""Risk rules: expressions over plan columns, with a severity and a bilingual message.

A risk-rules spec has derived columns (``capacity = headcount * ramped_productivity``,
``load = target / capacity``, ...), unit rules (a boolean expression evaluated over all
units at once) and plan rules (a boolean expression over plan values such as the
shortfall against the company total and how many units each unit rule flagged).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.allocation import PLAN_COLUMNS, Plan
from quotaflow.rules.expressions import CompiledExpression
from quotaflow.rules.model import FactorModel, compile_at, expression_fields
from quotaflow.rules.scoring import evaluate_column
from quotaflow.rules.specs import SpecError, SpecIssue, pointer, read_json, schema_issues

SEVERITIES = ("info", "low", "medium", "high")
#: Numbers every plan rule can read; each unit rule adds ``<key>_count``.
PLAN_VALUES = ("company_total", "requested_total", "planned_total", "shortfall",
               "shortfall_share", "infeasible_count")
#: Text values messages may show besides the numbers.
UNIT_TEXT = ("unit", "name_en", "name_zh", "level")


class RiskRulesError(SpecError):
    kind = "risk rules"


@dataclass(frozen=True)
class DerivedColumn:
    name: str
    source: str
    expression: CompiledExpression
    label_en: str = ""
    label_zh: str = ""


@dataclass(frozen=True)
class UnitRule:
    key: str
    source: str
    when: CompiledExpression
    severity: str
    message_en: str
    message_zh: str
    levels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlanRule:
    key: str
    source: str
    when: CompiledExpression
    severity: str
    message_en: str
    message_zh: str


@dataclass(frozen=True)
class RiskRules:
    id: str
    version: int
    columns: tuple[DerivedColumn, ...]
    unit_rules: tuple[UnitRule, ...]
    plan_rules: tuple[PlanRule, ...]


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _check_message(template: str, allowed: set[str], ptr: str, issues: list[SpecIssue]) -> None:
    try:
        names = _placeholders(template)
    except ValueError as exc:
        issues.append(SpecIssue(ptr, f"bad message template: {exc}", "message"))
        return
    for name in names:
        # Plain names only: "{x.attr}" or "{x[0]}" would reach into Python objects.
        if name not in allowed:
            issues.append(SpecIssue(ptr, f"unknown placeholder {{{name}}}", "message"))


def load_risk_rules(source: str | Path | Mapping[str, Any], model: FactorModel) -> RiskRules:
    """Validate and compile a risk-rules document against a model's fields."""
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("risk-rules", doc)
    if issues:
        raise RiskRulesError(issues)
    types = expression_fields(model.fields)
    for c in PLAN_COLUMNS:
        types[c] = "boolean" if c == "locked" else "number"
    columns = []
    for i, c in enumerate(doc.get("columns", [])):
        ptr = pointer("columns", i)
        if c["name"] in types:
            issues.append(SpecIssue(f"{ptr}/name", f"column {c['name']!r} already exists",
                                    "duplicate"))
        ex = compile_at(c["expression"], types, f"{ptr}/expression", issues, expect=None,
                        functions=model.functions)
        types[c["name"]] = ex.result_type if ex is not None else "number"
        columns.append(DerivedColumn(c["name"], c["expression"], ex, c.get("label_en", ""),
                                     c.get("label_zh", "")))
    unit_allowed = set(types) | set(UNIT_TEXT)
    levels = set(model.levels)
    unit_rules = []
    keys: set[str] = set()
    for i, r in enumerate(doc.get("unit_rules", [])):
        ptr = pointer("unit_rules", i)
        if r["key"] in keys:
            issues.append(SpecIssue(f"{ptr}/key", f"duplicate rule key {r['key']!r}",
                                    "duplicate"))
        keys.add(r["key"])
        for j, lv in enumerate(r.get("levels", ())):
            if levels and lv not in levels:
                issues.append(SpecIssue(f"{ptr}/levels/{j}", f"unknown level {lv!r}",
                                        "unknown_level"))
        ex = compile_at(r["when"], types, f"{ptr}/when", issues, expect="boolean",
                        functions=model.functions)
        for lang in ("en", "zh"):
            _check_message(r[f"message_{lang}"], unit_allowed, f"{ptr}/message_{lang}", issues)
        unit_rules.append(UnitRule(r["key"], r["when"], ex, r["severity"], r["message_en"],
                                   r["message_zh"], tuple(r["levels"]) if "levels" in r else None))
    plan_types = {k: "number" for k in PLAN_VALUES}
    plan_types.update({f"{k}_count": "number" for k in keys})
    plan_allowed = set(plan_types) | {f"{k}_units" for k in keys}
    plan_rules = []
    for i, r in enumerate(doc.get("plan_rules", [])):
        ptr = pointer("plan_rules", i)
        if r["key"] in keys:
            issues.append(SpecIssue(f"{ptr}/key", f"duplicate rule key {r['key']!r}",
                                    "duplicate"))
        keys.add(r["key"])
        ex = compile_at(r["when"], plan_types, f"{ptr}/when", issues, expect="boolean",
                        functions=model.functions)
        for lang in ("en", "zh"):
            _check_message(r[f"message_{lang}"], plan_allowed, f"{ptr}/message_{lang}", issues)
        plan_rules.append(PlanRule(r["key"], r["when"], ex, r["severity"], r["message_en"],
                                   r["message_zh"]))
    if issues:
        raise RiskRulesError(issues)
    return RiskRules(doc["id"], doc["version"], tuple(columns), tuple(unit_rules),
                     tuple(plan_rules))


@dataclass(frozen=True, eq=False)
class RiskReport:
    """Risks of one plan: flagged unit rows per unit rule, and the plan-level risks."""

    rules: RiskRules
    plan: Plan
    columns: dict[str, np.ndarray]
    unit_hits: dict[str, np.ndarray]
    plan_values: dict[str, float]
    plan_risks: tuple[dict[str, Any], ...]
    _by_unit: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def count(self, key: str) -> int:
        return len(self.unit_hits.get(key, ()))

    def flagged(self, key: str) -> list[str]:
        """Ids of the units a unit rule flagged."""
        return self.plan.tree.ids[self.unit_hits[key]].tolist()

    def _values(self, i: int, template: str) -> dict[str, Any]:
        tree = self.plan.tree
        out: dict[str, Any] = {}
        for name in _placeholders(template):
            if name == "unit":
                out[name] = str(tree.ids[i])
            elif name == "level":
                out[name] = str(tree.level[i])
            elif name in ("name_en", "name_zh"):
                col = tree.labels.get(name)
                out[name] = str(col[i]) if col is not None else str(tree.ids[i])
            else:
                out[name] = float(self.columns[name][i])
        return out

    def unit_risks(self, unit: str | int) -> list[dict[str, Any]]:
        """The risks of one unit, messages filled in."""
        i = self.plan.tree.index[unit] if isinstance(unit, str) else int(unit)
        if not self._by_unit and any(len(v) for v in self.unit_hits.values()):
            for key, rows in self.unit_hits.items():
                for r in rows.tolist():
                    self._by_unit.setdefault(r, []).append(key)
        out = []
        for key in self._by_unit.get(i, []):
            rule = next(r for r in self.rules.unit_rules if r.key == key)
            out.append({"rule": key, "severity": rule.severity,
                        "message_en": rule.message_en.format(**self._values(i, rule.message_en)),
                        "message_zh": rule.message_zh.format(**self._values(i, rule.message_zh))})
        return out

    def summary(self) -> dict[str, Any]:
        return {"plan_risks": list(self.plan_risks),
                "unit_risk_counts": {k: len(v) for k, v in self.unit_hits.items()},
                "values": dict(self.plan_values)}


def evaluate_risks(rules: RiskRules, plan: Plan, *, company_total: float | None = None
                   ) -> RiskReport:
    """Run every rule on ``plan``. ``company_total`` is the real goal when the plan's own
    total was stretched (defaults to the plan's total)."""
    tree = plan.tree
    cols = plan.columns()
    for c in rules.columns:
        cols[c.name] = evaluate_column(c.expression, tree, f"risk column {c.name!r}", fields=cols)
    nonroot = tree.parent >= 0
    hits: dict[str, np.ndarray] = {}
    for r in rules.unit_rules:
        mask = evaluate_column(r.when, tree, f"risk rule {r.key!r}", fields=cols) != 0
        mask &= nonroot if r.levels is None else np.isin(tree.level, r.levels)
        rows = np.flatnonzero(mask)
        hits[r.key] = rows[np.argsort(tree.depth[rows], kind="stable")]  # regions first
    goal = float(plan.total if company_total is None else company_total)
    planned = float(plan.planned_total)
    values: dict[str, float] = {
        "company_total": goal, "requested_total": float(plan.total),
        "planned_total": planned, "shortfall": goal - planned,
        "shortfall_share": (goal - planned) / goal if goal else 0.0,
        # The total's own shortfall has its value above; count the other places.
        "infeasible_count": float(plan.infeasible_count),
    }
    values.update({f"{k}_count": float(len(v)) for k, v in hits.items()})
    text = {f"{k}_units": ", ".join(tree.ids[v[:8]].tolist()) + (" ..." if len(v) > 8 else "")
            for k, v in hits.items()}
    risks = []
    for r in rules.plan_rules:
        needed = {k: values[k] for k in r.when.names}
        if r.when.evaluate_row(needed):
            fmt = {**values, **text}
            risks.append({"rule": r.key, "severity": r.severity,
                          "message_en": r.message_en.format(**fmt),
                          "message_zh": r.message_zh.format(**fmt)})
    return RiskReport(rules, plan, cols, hits, values, tuple(risks))
