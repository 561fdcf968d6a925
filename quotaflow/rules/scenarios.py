"""Scenario presets: several plans (aggressive / balanced / conservative) from one call.

A preset varies a factor model in three ways: a stretch on the company total, a weight
tilt (percentage points that total 0, so the weights still total 100) and policy
overrides per level (bounds, rounding). Factor scores do not depend on any of these, so
they are computed once and shared by every scenario.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from quotaflow.rules.allocation import Plan, allocate, scores_for
from quotaflow.rules.model import DEFAULT_POLICY, FactorModel, compile_at, expression_fields
from quotaflow.rules.parallel import parallel_map
from quotaflow.rules.risks import RiskReport, RiskRules, evaluate_risks
from quotaflow.rules.scoring import Scores
from quotaflow.rules.specs import SpecError, SpecIssue, pointer, read_json, schema_issues
from quotaflow.rules.tree import UnitTree


class PresetError(SpecError):
    kind = "scenario presets"


@dataclass(frozen=True)
class ScenarioPreset:
    """One scenario: how it changes the model, and the derived model it runs."""

    key: str
    label_en: str
    label_zh: str
    description_en: str
    description_zh: str
    stretch: float
    weight_tilt: Mapping[str, float]
    policy_overrides: Mapping[str, Mapping[str, Any]]
    model: FactorModel

    def stretched_total(self, total: float, tree: UnitTree) -> int:
        """The total this scenario asks for, rounded to the first level's rounding unit."""
        if self.stretch == 1:
            return int(np.floor(float(total) + 0.5))
        r = self.model.policy(tree.levels[1]).rounding_unit if tree.max_depth >= 1 else 1
        return int(np.floor(float(total) * self.stretch / r + 0.5)) * r


@dataclass(frozen=True)
class ScenarioPresets:
    id: str
    version: int
    presets: tuple[ScenarioPreset, ...]
    default: str

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.presets)

    def get(self, key: str) -> ScenarioPreset:
        for p in self.presets:
            if p.key == key:
                return p
        raise KeyError(f"unknown scenario {key!r} (known: {', '.join(self.keys)})")


def load_presets(source: str | Path | Mapping[str, Any], model: FactorModel) -> ScenarioPresets:
    """Validate presets against their schema and the model; derive one model per preset."""
    doc = read_json(source if not isinstance(source, Mapping) else dict(source))
    issues = schema_issues("scenario-presets", doc)
    if issues:
        raise PresetError(issues)
    types = expression_fields(model.fields)
    keys = model.factor_keys
    out = []
    seen: set[str] = set()
    for i, p in enumerate(doc["presets"]):
        ptr = pointer("presets", i)
        if p["key"] in seen:
            issues.append(SpecIssue(f"{ptr}/key", f"duplicate preset {p['key']!r}", "duplicate"))
        seen.add(p["key"])
        n_before = len(issues)
        tilt = p.get("weight_tilt", {})
        for k in tilt:
            if k not in keys:
                issues.append(SpecIssue(f"{ptr}/weight_tilt" + pointer(k),
                                        f"tilt for unknown factor {k!r}", "unknown_factor"))
        total = sum((Decimal(repr(v)) for v in tilt.values()), Decimal(0))
        if total != 0:
            issues.append(SpecIssue(f"{ptr}/weight_tilt",
                                    f"tilts total {total} points, not 0 (weights must still "
                                    "total 100)", "weights_total"))
        weights = tuple(w + float(tilt.get(k, 0)) for k, w in zip(keys, model.weight_percent,
                                                                    strict=True))
        for k, w in zip(keys, weights, strict=True):
            if k in tilt and not 0 <= w <= 100:
                issues.append(SpecIssue(f"{ptr}/weight_tilt" + pointer(k),
                                        f"tilted weight of {k!r} would be {w:g}%", "weights_range"))
        overrides = p.get("policies", {})
        for level, pol in overrides.items():
            lptr = f"{ptr}/policies" + pointer(level)
            if level != DEFAULT_POLICY and model.levels and level not in model.levels:
                issues.append(SpecIssue(lptr, f"unknown level {level!r}", "unknown_level"))
            for bound in ("lower", "upper"):
                if bound in pol:
                    compile_at(pol[bound], types, f"{lptr}/{bound}", issues,
                               functions=model.functions)
        if len(issues) > n_before:
            continue
        derived = model.derive(weight_percent=weights, policy_overrides=overrides)
        out.append(ScenarioPreset(
            key=p["key"], label_en=p.get("label_en", p["key"]),
            label_zh=p.get("label_zh", p.get("label_en", p["key"])),
            description_en=p.get("description_en", ""), description_zh=p.get("description_zh", ""),
            stretch=float(p.get("stretch", 1)), weight_tilt=dict(tilt),
            policy_overrides=overrides, model=derived))
    default = doc.get("default", doc["presets"][0]["key"])
    if default not in seen:
        issues.append(SpecIssue("/default", f"default preset {default!r} is not defined",
                                "unknown_preset"))
    if issues:
        raise PresetError(issues)
    return ScenarioPresets(doc["id"], doc["version"], tuple(out), default)


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    preset: ScenarioPreset
    plan: Plan
    risks: RiskReport | None

    def summary(self) -> dict[str, Any]:
        p = self.plan
        out = {"scenario": self.preset.key, "label_en": self.preset.label_en,
               "label_zh": self.preset.label_zh, "stretch": self.preset.stretch,
               "weights": dict(zip(p.model.factor_keys, p.weight_percent, strict=True)),
               "requested_total": p.total, "planned_total": p.planned_total,
               "infeasible": [x.as_dict() for x in p.infeasible]}
        if self.risks is not None:
            out.update(self.risks.summary())
        return out


def run_scenarios(model: FactorModel, tree: UnitTree, total: float, presets: ScenarioPresets,
                  *, risks: RiskRules | None = None, locks: Mapping[str, int] | None = None,
                  only: Iterable[str] | None = None, scores: Scores | None = None
                  ) -> dict[str, ScenarioResult]:
    """One plan (and risk report) per preset, in preset order.

    Shortfall risks are measured against ``total`` (the company's goal), not against a
    scenario's stretched total.
    """
    if scores is None:
        scores = scores_for(model, tree)
    wanted = set(only) if only is not None else None
    chosen = [p for p in presets.presets if wanted is None or p.key in wanted]
    tree.prepare()  # shared caches first, so the scenarios do not race to build them

    def one(preset: ScenarioPreset) -> ScenarioResult:
        plan = allocate(preset.model, tree, preset.stretched_total(total, tree), locks=locks,
                        scores=scores, scenario=preset.key)
        report = evaluate_risks(risks, plan, company_total=total) if risks is not None else None
        return ScenarioResult(preset, plan, report)

    # Scenarios are independent array work: they run side by side on a multi-core box.
    return {r.preset.key: r for r in parallel_map(one, chosen)}
