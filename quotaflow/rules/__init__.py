"""The pure rules engine: expressions, factor models, allocation, scenarios, risks,
pacing, forecasts, alerts and remedies.

Imports neither Flask nor SQLAlchemy: plain data in, plain data out.
"""

from quotaflow.rules.alerts import (
    AlertHit,
    AlertRules,
    AlertRulesError,
    evaluate_alerts,
    load_alert_rules,
)
from quotaflow.rules.allocation import Infeasibility, Plan, allocate
from quotaflow.rules.expressions import CompiledExpression, ExpressionError, compile_expression
from quotaflow.rules.forecast import (
    Backtest,
    Forecast,
    ForecastBand,
    backtest,
    forecast,
    forecast_band,
    group_sum,
    run_rate,
)
from quotaflow.rules.model import FactorModel, ModelError, load_model
from quotaflow.rules.pacing import (
    PacingCurve,
    PacingError,
    WeeklyMetrics,
    linear_curve,
    load_pacing_curve,
    pacing_metrics,
    seasonal_curve,
    weekly_matrix,
)
from quotaflow.rules.remedies import (
    RemedyCatalogue,
    RemedyContext,
    RemedyError,
    RemedySuggestion,
    load_remedies,
    rank_remedies,
    sibling_context,
)
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
    "AlertHit",
    "AlertRules",
    "AlertRulesError",
    "AllocationError",
    "Backtest",
    "CompiledExpression",
    "ExpressionError",
    "FactorModel",
    "Forecast",
    "ForecastBand",
    "Infeasibility",
    "ModelError",
    "PacingCurve",
    "PacingError",
    "Plan",
    "PresetError",
    "RemedyCatalogue",
    "RemedyContext",
    "RemedyError",
    "RemedySuggestion",
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
    "WeeklyMetrics",
    "allocate",
    "backtest",
    "build_tree",
    "compile_expression",
    "evaluate_alerts",
    "evaluate_risks",
    "forecast",
    "forecast_band",
    "group_sum",
    "linear_curve",
    "load_alert_rules",
    "load_model",
    "load_pacing_curve",
    "load_presets",
    "load_remedies",
    "load_risk_rules",
    "load_units_csv",
    "pacing_metrics",
    "rank_remedies",
    "run_rate",
    "run_scenarios",
    "score",
    "seasonal_curve",
    "sibling_context",
    "tree_from_parent_ids",
    "weekly_matrix",
]
