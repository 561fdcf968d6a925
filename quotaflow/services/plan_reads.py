"""Reads of plans for pages: a plan by id, a period's plans and versions, the published
one, the factor model versions to preview, last year's company result as a hint.

A published (or superseded) plan is shared by everyone who may read units (its rows are
narrowed to the reader's scope by :mod:`quotaflow.services.plans`). A draft is seen only
by those who may create or publish plans: to anyone else it looks absent (NotFound, left
out of lists), so nobody reads an unpublished target, their own included. Pages and API
both read plans through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from quotaflow.errors import NotFound
from quotaflow.services import plans as plan_service
from quotaflow.services.access import Principal
from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries, plan_queries, queries, spec_queries
from quotaflow.store.models import OrgUnit, Period, Plan, PlanUnit, SpecVersion

#: Who sees draft plans (the system, acting without a principal, does too).
DRAFT_READERS = ("plan.create", "plan.publish")
DRAFT = "draft"


def sees_drafts(principal: Principal | None) -> bool:
    return principal is None or any(principal.has(p) for p in DRAFT_READERS)


def visible(ctx: Context, found: Plan | None) -> bool:
    """Whether ``found`` exists for the context's principal (drafts: plan makers only)."""
    return found is not None and (found.status != DRAFT or sees_drafts(ctx.principal))


def plan(ctx: Context, plan_id: int) -> Plan:
    found = plan_queries.plan_by_id(ctx.session, plan_id)
    if found is None or not visible(ctx, found):
        raise NotFound("not_found")
    return found


def plan_or_none(ctx: Context, plan_id: int) -> Plan | None:
    found = plan_queries.plan_by_id(ctx.session, plan_id)
    return found if visible(ctx, found) else None


def plans(ctx: Context, period_id: int | None = None) -> list[Plan]:
    """Plans, newest period first, then highest number first (drafts only for those who
    may create or publish plans)."""
    return [p for p in plan_queries.plans(ctx.session, period_id) if visible(ctx, p)]


def latest_plan(ctx: Context, period_id: int) -> Plan | None:
    found = plan_queries.latest_plan(ctx.session, period_id)
    if found is None or visible(ctx, found):
        return found
    return next(iter(plans(ctx, period_id)), None)


def published_plan(ctx: Context, period_id: int) -> Plan | None:
    return confirmation_queries.published_plan(ctx.session, period_id)


def plan_rows(ctx: Context, plan: Plan, parent: OrgUnit) -> list[tuple[PlanUnit, OrgUnit]]:
    """The plan's rows of ``parent``'s children."""
    return plan_queries.plan_rows(ctx.session, plan.id, parent_id=parent.id)


def root(ctx: Context, plan: Plan) -> OrgUnit | None:
    """The unit at the top of the plan (the company)."""
    return plan_service.plan_root(ctx.session, plan)


def scope_rows(ctx: Context, plan: Plan, paths: Sequence[str]) -> list[tuple[PlanUnit, OrgUnit]]:
    """The rows a plan page opens with (see :func:`plans.scope_rows`)."""
    return plan_service.scope_rows(ctx.session, plan, paths)


def explanation(ctx: Context, plan: Plan, unit: OrgUnit) -> dict[str, Any]:
    """How the unit's target in ``plan`` adds up (raises PlanError for a unit not in it)."""
    return plan_service.plan_explanation(ctx.session, plan, unit)


def units_by_ids(ctx: Context, ids: Sequence[int]) -> dict[int, OrgUnit]:
    return plan_queries.units_by_ids(ctx.session, ids)


def factor_model_versions(ctx: Context) -> list[SpecVersion]:
    return spec_queries.factor_model_versions(ctx.session)


def last_year_company_result(ctx: Context, period: Period, metric: str = "sales"
                             ) -> float | None:
    """The company's result in the same quarter last year (a hint for the total)."""
    root = queries.root_unit(ctx.session)
    last = plan_queries.same_period_last_year(ctx.session, period)
    if root is None or last is None:
        return None
    return plan_queries.unit_result(ctx.session, root.id, last.id, metric)
