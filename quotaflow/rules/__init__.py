"""The pure rules engine: expressions, factor models, allocation, scenarios, risks.

Imports neither Flask nor SQLAlchemy: plain data in, plain data out.
"""

from quotaflow.rules.allocation import Infeasibility, Plan, allocate
from quotaflow.rules.expressions import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules.model import FactorModel, ModelError, load_model
from quotaflow.rules.risks import (
    RiskReport,
    RiskRules,
    RiskRulesError,
    evaluate_risks,
    load_risk_rules,
)
from quotaflow.rules.scenarios import (
    PresetError,
    ScenarioPresets,
    ScenarioResult,
    load_presets,
    run_scenarios,
)
from quotaflow.rules.scoring import AllocationError, Scores, score
from quotaflow.rules.specs import SpecError, SpecIssue
from quotaflow.rules.tree import (
    TreeError,
    UnitTree,
    build_tree,
    load_units_csv,
    tree_from_parent_ids,
)

__all__ = [
    "AllocationError",
    "CompiledExpression",
    "ExpressionError",
    "FactorModel",
    "Infeasibility",
    "ModelError",
    "Plan",
    "PresetError",
    "RiskReport",
    "RiskRules",
    "RiskRulesError",
    "ScenarioPresets",
    "ScenarioResult",
    "Scores",
    "SpecError",
    "SpecIssue",
    "TreeError",
    "UnitTree",
    "allocate",
    "build_tree",
    "compile_expression",
    "evaluate_risks",
    "load_model",
    "load_presets",
    "load_risk_rules",
    "load_units_csv",
    "run_scenarios",
    "score",
    "tree_from_parent_ids",
]
