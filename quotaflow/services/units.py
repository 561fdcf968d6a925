"""Reads of the organisation for pages and the request guard: units within the reader's
scope, a unit's place in the tree, its inputs and history; the audit log.

Every function takes the use case's :class:`Context`; lists are narrowed to what the
principal may read (``Principal.scope_paths``), single units checked with ``Principal.can``.
"""

from __future__ import annotations

from collections.abc import Sequence

from quotaflow.errors import NotFound
from quotaflow.services.uow import Context
from quotaflow.store import plan_queries, queries
from quotaflow.store.models import AuditEntry, OrgLevel, OrgUnit


def _paths(ctx: Context, permission: str = "unit.read") -> tuple[str, ...]:
    return ctx.principal.scope_paths(permission) if ctx.principal is not None else ()


def can_read(ctx: Context, unit: OrgUnit) -> bool:
    return ctx.principal is not None and ctx.principal.can("unit.read", unit.path)


def unit_by_code(ctx: Context, code: str) -> OrgUnit | None:
    """The unit with this code, whoever asks (the guard checks scope itself)."""
    return queries.unit_by_code(ctx.session, code)


def readable_unit(ctx: Context, code: str) -> OrgUnit:
    """The unit with this code if the principal may read it; else NotFound (no probing)."""
    unit = queries.unit_by_code(ctx.session, code)
    if unit is None or not can_read(ctx, unit):
        raise NotFound("not_found")
    return unit


def readable_units_by_codes(ctx: Context, codes: Sequence[str]) -> dict[str, OrgUnit]:
    """Units by code, those the principal may not read left out."""
    found = plan_queries.units_by_codes(ctx.session, codes)
    return {code: unit for code, unit in found.items() if can_read(ctx, unit)}


def scope_roots(ctx: Context, permission: str = "unit.read") -> list[OrgUnit]:
    """The tops of the subtrees where the principal holds ``permission``."""
    return queries.units_at(ctx.session, _paths(ctx, permission))


def root_unit(ctx: Context) -> OrgUnit | None:
    return queries.root_unit(ctx.session)


def children(ctx: Context, unit: OrgUnit) -> list[OrgUnit]:
    return queries.children(ctx.session, unit)


def child_counts(ctx: Context, units: Sequence[OrgUnit]) -> dict[int, int]:
    return queries.child_counts(ctx.session, units)


SEARCH_TEXT_MAX = 100


def search(ctx: Context, text: str) -> list[OrgUnit]:
    """The unit picker's search: units in the reader's scope whose code or names hold
    ``text`` (trimmed, at most 100 characters; blank finds nothing)."""
    text = text.strip()[:SEARCH_TEXT_MAX]
    if not text:
        return []
    return queries.search_units(ctx.session, _paths(ctx), text)


def ancestors(ctx: Context, unit: OrgUnit) -> list[tuple[OrgUnit, bool]]:
    """The unit's ancestors, root first, each with whether the principal may read it."""
    return [(a, can_read(ctx, a)) for a in queries.ancestors(ctx.session, unit)]


def readable_ancestors(ctx: Context, unit: OrgUnit) -> list[OrgUnit]:
    return [a for a, readable in ancestors(ctx, unit) if readable]


def attributes(ctx: Context, unit: OrgUnit, period_id: int) -> dict[str, float]:
    return queries.unit_attributes(ctx.session, unit.id, period_id)


def history(ctx: Context, unit: OrgUnit) -> list[tuple[str, str, float]]:
    return queries.unit_history(ctx.session, unit.id)


def levels(ctx: Context) -> list[OrgLevel]:
    """The organisation's levels, top first."""
    return queries.levels(ctx.session)


def audit_page(ctx: Context, page: int, per_page: int = 50) -> list[AuditEntry]:
    return queries.audit_page(ctx.session, page, per_page)


def whatif_units(ctx: Context) -> list[OrgUnit]:
    """The units the principal may run a what-if on: the tops of their ``plan.whatif``
    scope (company scope: the active units right below the company)."""
    units: list[OrgUnit] = []
    for top in scope_roots(ctx, "plan.whatif"):
        if top.parent_id is None:
            units.extend(u for u in queries.children(ctx.session, top) if u.active)
        elif top.active:
            units.append(top)
    return units
