"""Scenario presets and risk rules, and the case's expectation on the demo company."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from quotaflow.rules.allocation import allocate
from quotaflow.rules.model import load_model
from quotaflow.rules.risks import RiskRulesError, evaluate_risks, load_risk_rules
from quotaflow.rules.scenarios import PresetError, load_presets, run_scenarios
from quotaflow.rules.tree import load_units_csv

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "quotaflow" / "seed_data" / "specs"


@pytest.fixture(scope="module")
def seed() -> dict:
    """The committed demo company and default specs (absent files fail, never skip)."""
    model = load_model(SPECS / "factor_model.json")
    tree = load_units_csv(ROOT / "quotaflow" / "seed_data" / "units.csv", model)
    total = json.loads((ROOT / "quotaflow" / "seed_data" / "company.json").read_text())["company_target_2026Q4"]
    presets = load_presets(SPECS / "scenario_presets.json", model)
    rules = load_risk_rules(SPECS / "risk_rules.json", model)
    results = run_scenarios(model, tree, total, presets, risks=rules)
    return {"model": model, "tree": tree, "total": total, "presets": presets, "rules": rules,
            "results": results}


def region_hits(result, key: str) -> list[str]:
    tree = result.plan.tree
    return [u for u in result.risks.flagged(key) if tree.level[tree.index[u]] == "region"]


# -- the case ------------------------------------------------------------------------

def test_three_default_plans_from_one_call(seed: dict) -> None:
    results = seed["results"]
    assert list(results) == ["aggressive", "balanced", "conservative"]
    assert seed["presets"].default == "balanced"
    labels = {k: r.preset.label_zh for k, r in results.items()}
    assert labels == {"aggressive": "激进型", "balanced": "平衡型", "conservative": "保守型"}
    # One scoring pass is shared by every scenario.
    scores = {id(r.plan.scores) for r in results.values()}
    assert len(scores) == 1


def test_aggressive_plan_overloads_the_west(seed: dict) -> None:
    result = seed["results"]["aggressive"]
    assert result.plan.total > seed["total"]  # stretched
    assert result.plan.planned_total == result.plan.total
    assert region_hits(result, "overload") == ["WEST"]
    tree = result.plan.tree
    west = tree.index["WEST"]
    assert result.risks.columns["load"][west] > 1.2
    plan_risks = {r["rule"]: r for r in result.risks.plan_risks}
    assert "WEST" in plan_risks["overloaded_units"]["message_en"]
    (unit_risk,) = [r for r in result.risks.unit_risks("WEST") if r["rule"] == "overload"]
    assert unit_risk["severity"] == "high"
    assert "WEST (West)" in unit_risk["message_en"] and "西部" in unit_risk["message_zh"]
    assert "shortfall" not in plan_risks


def test_conservative_plan_falls_short_of_the_total(seed: dict) -> None:
    result = seed["results"]["conservative"]
    plan = result.plan
    assert plan.total == seed["total"]
    assert plan.planned_total < seed["total"]
    assert plan.infeasible[0].kind == "total_short"
    assert plan.infeasible[0].shortfall == seed["total"] - plan.planned_total
    plan_risks = {r["rule"]: r for r in result.risks.plan_risks}
    assert plan_risks["shortfall"]["severity"] == "high"
    assert f"{seed['total'] - plan.planned_total:,}" in plan_risks["shortfall"]["message_en"]
    assert "缺口" in plan_risks["shortfall"]["message_zh"]
    assert result.risks.count("overload") == 0


def test_balanced_plan_meets_the_total_without_overload(seed: dict) -> None:
    result = seed["results"]["balanced"]
    assert result.plan.planned_total == seed["total"]
    assert result.plan.infeasible == ()
    assert result.risks.count("overload") == 0
    assert result.risks.plan_risks == ()
    # The new team without history is marked, for information.
    assert result.risks.count("no_history") >= 1


def test_every_scenario_keeps_the_invariants(seed: dict) -> None:
    for result in seed["results"].values():
        plan = result.plan
        tree = plan.tree
        nonroot = tree.parent >= 0
        sums = np.bincount(tree.parent[nonroot], weights=plan.target[nonroot],
                           minlength=tree.size).astype(np.int64)
        internal = tree.n_children > 0
        assert np.array_equal(sums[internal], plan.target[internal])
        explained = (plan.requested + plan.factor_amounts.sum(axis=1) + plan.bounds_adjustment
                     + plan.rounding_adjustment)
        assert np.array_equal(explained, plan.target)


def test_weight_tilts_apply(seed: dict) -> None:
    aggressive = seed["results"]["aggressive"].plan
    assert sum(aggressive.weight_percent) == 100
    keys = aggressive.model.factor_keys
    w = dict(zip(keys, aggressive.weight_percent, strict=True))
    assert w["regional_potential"] > seed["model"].weight_percent[1]


# -- preset validation ---------------------------------------------------------------

def preset_doc() -> dict:
    return json.loads((SPECS / "scenario_presets.json").read_text(encoding="utf-8"))


def preset_issues(doc: dict, model) -> dict:
    with pytest.raises(PresetError) as info:
        load_presets(doc, model)
    return {i.pointer: i for i in info.value.issues}


def test_preset_errors_point_at_the_place(seed: dict) -> None:
    doc = preset_doc()
    doc["presets"][0]["weight_tilt"] = {"regional_potential": 10, "nope": -5}
    doc["presets"][2]["policies"]["default"]["upper"] = "hist_sales * growth"
    doc["presets"][1]["policies"] = {"district": {"rounding_unit": 10}}
    found = preset_issues(doc, seed["model"])
    assert found["/presets/0/weight_tilt/nope"].code == "unknown_factor"
    assert found["/presets/0/weight_tilt"].code == "weights_total"
    assert found["/presets/2/policies/default/upper"].column == 14
    assert found["/presets/1/policies/district"].code == "unknown_level"


def test_tilt_cannot_make_a_weight_negative(seed: dict) -> None:
    doc = preset_doc()
    doc["presets"][0]["weight_tilt"] = {"competitor_coverage": -20, "product_fit": 20}
    found = preset_issues(doc, seed["model"])
    assert found["/presets/0/weight_tilt/competitor_coverage"].code == "weights_range"


def test_preset_schema_and_duplicates(seed: dict) -> None:
    doc = preset_doc()
    doc["presets"][1]["stretch"] = 0
    doc["presets"].append(copy.deepcopy(doc["presets"][0]))
    doc["default"] = "wild"
    found = preset_issues(doc, seed["model"])
    assert "/presets/1/stretch" in found
    doc = preset_doc()
    doc["presets"].append(copy.deepcopy(doc["presets"][0]))
    doc["default"] = "wild"
    found = preset_issues(doc, seed["model"])
    assert found["/presets/3/key"].code == "duplicate"
    assert found["/default"].code == "unknown_preset"


def test_stretch_is_rounded_to_the_first_level_unit(seed: dict) -> None:
    preset = seed["presets"].get("aggressive")
    assert preset.stretched_total(123_456_789, seed["tree"]) == 135_800_000
    with pytest.raises(KeyError):
        seed["presets"].get("wild")


def test_run_only_one_scenario(seed: dict) -> None:
    out = run_scenarios(seed["model"], seed["tree"], seed["total"], seed["presets"],
                        only=["conservative"])
    assert list(out) == ["conservative"] and out["conservative"].risks is None


# -- risk rules ----------------------------------------------------------------------

def rules_doc() -> dict:
    return json.loads((SPECS / "risk_rules.json").read_text(encoding="utf-8"))


def rule_issues(doc: dict, model) -> dict:
    with pytest.raises(RiskRulesError) as info:
        load_risk_rules(doc, model)
    return {i.pointer: i for i in info.value.issues}


def test_risk_rule_errors(seed: dict) -> None:
    doc = rules_doc()
    doc["unit_rules"][0]["when"] = "load * 2"
    doc["unit_rules"][1]["message_en"] = "{unit.__class__}"
    doc["unit_rules"][2]["levels"] = ["district"]
    doc["plan_rules"][0]["when"] = "shortfall > target"
    doc["plan_rules"][1]["message_zh"] = "{nobody}"
    doc["columns"].append({"name": "load", "expression": "1"})
    found = rule_issues(doc, seed["model"])
    assert found["/unit_rules/0/when"].code == "expression.type"
    assert found["/unit_rules/1/message_en"].code == "message"
    assert found["/unit_rules/2/levels/0"].code == "unknown_level"
    assert found["/plan_rules/0/when"].column == 13
    assert found["/plan_rules/1/message_zh"].code == "message"
    assert found["/columns/3/name"].code == "duplicate"


def test_risk_rules_on_a_plan_without_stretch(seed: dict) -> None:
    plan = allocate(seed["model"], seed["tree"], seed["total"] * 2)
    report = evaluate_risks(seed["rules"], plan)
    # Twice the total cannot fit under the growth and capacity caps.
    assert report.plan_values["shortfall"] > 0
    assert {r["rule"] for r in report.plan_risks} >= {"shortfall"}
    summary = report.summary()
    assert summary["values"]["planned_total"] == plan.planned_total
