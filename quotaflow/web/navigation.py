"""The menu each role sees, derived from permissions (not from role names)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from quotaflow.services.access import Principal


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object  # a lazy translated string
    permission: str


NAV_ITEMS = (
    NavItem("pages.home", _l("Overview"), "unit.read"),
    NavItem("pages.org_tree", _l("Organisation"), "unit.read"),
    NavItem("plans.plan_list", _l("Plans"), "unit.read"),
    NavItem("collect.index", _l("Data collection"), "unit.write"),
    NavItem("sheets.index", _l("Spreadsheets"), "unit.write"),
    NavItem("builder.overview", _l("Factor builder"), "spec.write"),
    NavItem("config.index", _l("Configuration"), "spec.read"),
    NavItem("pages.audit_log", _l("Audit log"), "audit.read"),
)


def navigation_for(principal: Principal) -> list[NavItem]:
    return [item for item in NAV_ITEMS if principal.has(item.permission)]
