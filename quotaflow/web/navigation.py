"""The menu each role sees, derived from permissions (not from role names)."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from quotaflow.services.access import Principal
from quotaflow.web.tasks import PendingTasksLabel


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object  # a lazy translated string
    permission: str


NAV_ITEMS = (
    NavItem("pages.home", _l("Overview"), "unit.read"),
    NavItem("pages.org_tree", _l("Organisation"), "unit.read"),
    NavItem("dashboards.index", _l("Dashboard"), "unit.read"),
    NavItem("plans.plan_list", _l("Plans"), "unit.read"),
    NavItem("whatif.index", _l("What-if"), "plan.whatif"),
    NavItem("confirm.my_confirmations", _l("My confirmations"), "unit.confirm"),
    NavItem("confirm.alignment", _l("Alignment"), "alignment.read"),
    NavItem("letters.index", _l("Commitment letters"), "unit.read"),
    NavItem("tasks.index", PendingTasksLabel(), "flow.participate"),
    NavItem("alerts.alerts_page", _l("Alerts"), "unit.read"),
    NavItem("collect.index", _l("Data collection"), "unit.write"),
    NavItem("alerts.actuals_page", _l("Actuals"), "unit.write"),
    NavItem("sheets.index", _l("Spreadsheets"), "unit.write"),
    NavItem("builder.overview", _l("Factor builder"), "spec.write"),
    NavItem("config.index", _l("Configuration"), "spec.read"),
    NavItem("pages.audit_log", _l("Audit log"), "audit.read"),
    NavItem("inbox.outbox_status", _l("Outbox"), "outbox.read"),
    NavItem("hr.index", _l("HR export"), "hr.export"),
)


def navigation_for(principal: Principal) -> list[NavItem]:
    return [item for item in NAV_ITEMS if principal.has(item.permission)]
