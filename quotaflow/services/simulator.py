"""The target simulator's scenarios (pages and API): every scenario for a period and a
company total, each with its totals, plan risks (for who can read the company) and the
regions the caller may see. Nothing is saved."""

from __future__ import annotations

from typing import Any

from quotaflow.services import plan_reads
from quotaflow.services import plans as plan_service
from quotaflow.services import units as unit_service
from quotaflow.services.uow import Context


def scenario_cards(ctx: Context, sim: plan_service.Simulation) -> list[dict[str, Any]]:
    """Per scenario: totals, plan risks, and the regions ``ctx``'s principal may read."""
    principal = ctx.principal
    root = unit_service.root_unit(ctx)
    sees_company = root is not None and principal.can("unit.read", root.path)
    cards = []
    for key, result in sim.results.items():
        preset = sim.specs.presets.get(key)
        regions = sim.regions(key)
        units = plan_reads.units_by_ids(ctx, [r["unit_id"] for r in regions])
        regions = [r for r in regions if principal.can("unit.read", units[r["unit_id"]].path)]
        summary = sim.summary(key)
        cards.append({
            "key": key, "label_en": preset.label_en, "label_zh": preset.label_zh,
            "description_en": preset.description_en, "description_zh": preset.description_zh,
            "company_total": sim.total, "requested": result.plan.total,
            "planned": result.plan.planned_total, "shortfall": sim.total - result.plan.planned_total,
            "plan_risks": summary.get("plan_risks", []) if sees_company else [],
            "regions": regions,
            "flagged": [(r, risk) for r in regions for risk in r["risks"]],
        })
    return cards


def scenarios(ctx: Context, period: Any, total: Any) -> tuple[plan_service.Simulation,
                                                             list[dict[str, Any]]]:
    """Run every scenario for ``total`` (PlanError when it is not a positive amount or the
    model cannot run) and the caller's cards of them."""
    sim = plan_service.simulate(ctx.session, period, total)
    return sim, scenario_cards(ctx, sim)
