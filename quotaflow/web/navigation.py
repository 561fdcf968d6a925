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


@dataclass(frozen=True)
class NavGroup:
    """A menu heading opening a short list; a group with one visible item is shown as
    that item, so people with few pages get plain links."""

    key: str
    label: object
    items: tuple[NavItem, ...]


NavEntry = NavItem | NavGroup

NAV: tuple[NavEntry, ...] = (
    NavItem("pages.home", _l("Overview"), "unit.read"),
    NavItem("pages.org_tree", _l("Organisation"), "unit.read"),
    NavItem("dashboards.index", _l("Dashboard"), "unit.read"),
    NavItem("tasks.index", PendingTasksLabel(), "flow.participate"),
    NavGroup("targets", _l("Targets"), (
        NavItem("plans.plan_list", _l("Plans"), "unit.read"),
        NavItem("whatif.index", _l("What-if"), "plan.whatif"),
        NavItem("confirm.my_confirmations", _l("My confirmations"), "unit.confirm"),
        NavItem("confirm.alignment", _l("Alignment"), "alignment.read"),
        NavItem("letters.index", _l("Commitment letters"), "unit.read"),
        NavItem("emergency.index", _l("Emergency recompute"), "plan.emergency"),
    )),
    NavGroup("progress", _l("Progress"), (
        NavItem("alerts.alerts_page", _l("Alerts"), "unit.read"),
        NavItem("alerts.actuals_page", _l("Actuals"), "unit.write"),
    )),
    NavGroup("data", _l("Data"), (
        NavItem("collect.index", _l("Data collection"), "unit.write"),
        NavItem("sheets.index", _l("Spreadsheets"), "unit.write"),
        NavItem("hr.index", _l("HR export"), "hr.export"),
    )),
    NavGroup("settings", _l("Settings"), (
        NavItem("builder.overview", _l("Factor builder"), "spec.write"),
        NavItem("config.index", _l("Configuration"), "spec.read"),
        NavItem("inbox.outbox_status", _l("Outbox"), "outbox.read"),
        NavItem("pages.audit_log", _l("Audit log"), "audit.read"),
    )),
)
#: Every menu item, flat (for tests and for finding an endpoint's group).
NAV_ITEMS: tuple[NavItem, ...] = tuple(
    item for entry in NAV for item in (entry.items if isinstance(entry, NavGroup) else (entry,)))


def navigation_for(principal: Principal) -> list[NavEntry]:
    """The menu this principal sees: items they may open, groups of two or more kept."""
    entries: list[NavEntry] = []
    for entry in NAV:
        if isinstance(entry, NavItem):
            if principal.has(entry.permission):
                entries.append(entry)
            continue
        visible = tuple(i for i in entry.items if principal.has(i.permission))
        if len(visible) == 1:
            entries.append(visible[0])
        elif visible:
            entries.append(NavGroup(entry.key, entry.label, visible))
    return entries
