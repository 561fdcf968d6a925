"""Who may do what where: roles, permissions and org-subtree scopes.

This is the single place authorisation is decided.  The web and API layers ask
``Principal.can`` from one request hook; queries narrow lists with the scope
paths.  It is plain data so that it is easy to test as a matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from quotaflow.errors import NotFound

T = TypeVar("T")

ROLES: tuple[str, ...] = ("admin", "hrbp", "executive", "region_head", "team_lead", "sales")

# Permissions scoped to a unit (checked against the unit's place in the tree).
UNIT_PERMISSIONS: dict[str, frozenset[str]] = {
    "unit.read": frozenset(ROLES),
    "unit.write": frozenset({"admin", "hrbp", "region_head", "team_lead"}),
    # Trying other inputs and weights for a unit's teams and people (nothing is saved).
    "plan.whatif": frozenset({"admin", "hrbp", "executive", "region_head"}),
    # Accepting or appealing a target: only the unit's own head acts on its item.
    "unit.confirm": frozenset({"region_head", "team_lead", "sales"}),
}
# Permissions that do not concern one unit: held through any grant of the role.
GLOBAL_PERMISSIONS: dict[str, frozenset[str]] = {
    "audit.read": frozenset({"admin", "hrbp"}),
    "users.manage": frozenset({"admin"}),
    # Configuration: specs (factor models, forms, flows, ...) and the admin pages.
    "spec.read": frozenset({"admin", "hrbp"}),
    "spec.write": frozenset({"admin", "hrbp"}),
    "admin.access": frozenset({"admin", "hrbp"}),
    # Computing a plan from a company total (the target admin's job).
    "plan.create": frozenset({"admin", "hrbp", "executive"}),
    # Publishing a plan opens the two-way confirmation.
    "plan.publish": frozenset({"admin", "hrbp"}),
    # Choosing the planning period (what pages, API and CLI plan for by default).
    "period.plan": frozenset({"admin", "hrbp"}),
    # Requesting an emergency recompute (units frozen, the rest re-run, fast-track flow).
    "plan.emergency": frozenset({"admin", "hrbp", "executive"}),
    # The alignment dashboard (confirmation progress, disputes) of a period.
    "alignment.read": frozenset({"admin", "hrbp", "executive"}),
    # The outbox (notifications, HR sync): delivery status and re-queueing dead deliveries.
    "outbox.read": frozenset({"admin", "hrbp"}),
    # Running the alert scan of a week (the scheduler does it; admins and HR may rerun it).
    "alerts.scan": frozenset({"admin", "hrbp"}),
    # Downloading the HR export (final targets per person; rows narrowed to the scope).
    "hr.export": frozenset({"admin", "hrbp"}),
    # Approval flows: everyone signed in sees and acts on their own tasks and instances
    # (the flow decides who may act); overseers also see every instance in their scope.
    "flow.participate": frozenset(ROLES),
    "flow.oversee": frozenset({"admin", "hrbp"}),
}
PERMISSIONS: frozenset[str] = frozenset(UNIT_PERMISSIONS) | frozenset(GLOBAL_PERMISSIONS)


@dataclass(frozen=True)
class Grant:
    role: str
    unit_code: str
    unit_path: str  # materialised path of the subtree root, e.g. "/1/4/"


@dataclass(frozen=True)
class Principal:
    """An authenticated user reduced to what authorisation needs."""

    user_id: int
    username: str
    grants: tuple[Grant, ...]

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def has(self, permission: str) -> bool:
        """Whether the user holds ``permission`` anywhere (for menus and global pages)."""
        if permission in GLOBAL_PERMISSIONS:
            return bool(self.roles & GLOBAL_PERMISSIONS[permission])
        if permission in UNIT_PERMISSIONS:
            return bool(self.roles & UNIT_PERMISSIONS[permission])
        raise KeyError(f"unknown permission {permission!r}")

    def can(self, permission: str, unit_path: str | None = None) -> bool:
        """Whether the user holds ``permission`` on the unit at ``unit_path``."""
        if permission in GLOBAL_PERMISSIONS:
            return self.has(permission)
        if unit_path is None:
            raise ValueError(f"{permission!r} is checked against a unit")
        return any(unit_path.startswith(path) for path in self.scope_paths(permission))

    def roles_at(self, unit_path: str) -> frozenset[str]:
        """The roles the user holds over the unit at ``unit_path`` (granted on it or above)."""
        return frozenset(g.role for g in self.grants if unit_path.startswith(g.unit_path))

    def scope_paths(self, permission: str) -> tuple[str, ...]:
        """The minimal set of subtree roots where ``permission`` holds."""
        allowed = UNIT_PERMISSIONS[permission]
        paths = sorted({g.unit_path for g in self.grants if g.role in allowed})
        return tuple(_outermost(paths))


def readable(principal: Principal | None, found: T | None, unit_path: str | None = None,
             permission: str = "unit.read") -> T:
    """``found`` if the principal holds ``permission`` on its unit, else NotFound: an
    object outside the reader's scope looks absent, so ids cannot be probed.
    ``unit_path`` defaults to ``found.unit.path``."""
    if found is None or principal is None:
        raise NotFound("not_found")
    path = unit_path if unit_path is not None else found.unit.path  # type: ignore[attr-defined]
    if not principal.can(permission, path):
        raise NotFound("not_found")
    return found


def _outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths nested inside another path of the list (input sorted)."""
    kept: list[str] = []
    for path in paths:
        if not any(path.startswith(root) for root in kept):
            kept.append(path)
    return kept
