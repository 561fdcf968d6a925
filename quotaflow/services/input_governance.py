"""Who may change which inputs once a period's plan is published (issue 11, finding 12).

A region head or team lead fills the inputs (tenure, potential, headcount, ...) that the
model turns into their own target. Before the period's plan is published that is the
point of data collection; afterwards the same edit would move a published target with
nobody looking. So once a period has a published plan, a write by a person who holds a
target (``unit.confirm``: region heads, team leads, sales) of an input of a unit related
to a unit whose target they hold (the unit, its subtree, or an ancestor) is not applied:

- ``"approval"`` (the default): it becomes an input change request, an instance of the
  ``input_change`` flow (seed default: the HRBP approves); the change is applied by
  :func:`on_input_change_end` when the flow is approved, after the same field check
  again, on the values the server kept (never what a client sends later);
- ``"locked"``: it is refused with :class:`InputLocked` naming the field;
- ``"open"``: it is applied directly, as before publication.

The mode is the confirmation policy's ``input_changes_after_publish`` (a versioned spec,
like the rest of the policy). Those who own the data (``plan.publish``: HRBP, admin)
and the system write directly. Every applied change is audited with before and after
(here and in :mod:`quotaflow.services.org` / :mod:`quotaflow.services.spreadsheets`).

:func:`gate` decides once per write (a sheet asks it per row); :mod:`org` (collect form,
org page, API) and :mod:`spreadsheets` (.xlsx / .csv upload) are the places input values
are written, and both ask it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from quotaflow.messages import _l, register
from quotaflow.services import audit, specs
from quotaflow.services.access import UNIT_PERMISSIONS, Principal
from quotaflow.services.input_check import InputCheckError
from quotaflow.store.confirmation_queries import published_plan
from quotaflow.store.models import OrgUnit, Period, User

POLICY_KIND = "confirmation_policy"
POLICY_KEY = "default"
MODE_FIELD = "input_changes_after_publish"
APPROVAL, LOCKED, OPEN = "approval", "locked", "open"
MODES = (APPROVAL, LOCKED, OPEN)
DEFAULT_MODE = APPROVAL
FLOW_KEY = "input_change"
SUBJECT = "input_change"
#: Roles whose holder has a target of their own in the unit they are granted.
TARGET_HOLDERS = UNIT_PERMISSIONS["unit.confirm"]


class InputLocked(InputCheckError):
    """An input its writer may not change: the period's plan is published and the policy
    locks inputs (``pointer``: ``/values/<name>``). A subclass of the field check's error,
    so every write path reports it beside the field, as it does a value out of range."""

    domain = "input_governance"
    CODES = register(domain, {
        "locked": _l("%(field)s of %(unit)s is locked for %(period)s: the period's plan is "
                     "published. Ask the HRBP to change it."),
        "flow_refused": _l("The change of %(field)s could not be sent for approval: "
                           "%(detail)s"),
    })


@dataclass(frozen=True)
class Gate:
    """What happens to one writer's input changes in one period."""

    mode: str  # OPEN when the writer's changes apply directly
    target_paths: tuple[str, ...] = ()

    def governs(self, unit_path: str) -> bool:
        """Whether a change of the unit at ``unit_path`` moves one of the writer's own
        targets (the unit is one they hold a target in, below it or above it)."""
        if self.mode == OPEN:
            return False
        return any(unit_path.startswith(p) or p.startswith(unit_path)
                   for p in self.target_paths)


def policy_mode(session: Session) -> str:
    """The active confirmation policy's ``input_changes_after_publish`` (default approval)."""
    version = specs.active_version(session, POLICY_KIND, POLICY_KEY)
    mode = (version.content or {}).get(MODE_FIELD) if version is not None else None
    return mode if mode in MODES else DEFAULT_MODE


def gate(session: Session, principal: Principal | None, period: Period) -> Gate:
    """The gate of ``principal``'s input writes in ``period``."""
    if principal is None or principal.has("plan.publish"):
        return Gate(OPEN)  # the system and the data's owners (HRBP, admin) write directly
    paths = tuple(sorted({g.unit_path for g in principal.grants if g.role in TARGET_HOLDERS}))
    if not paths or published_plan(session, period.id) is None:
        return Gate(OPEN)
    return Gate(policy_mode(session), paths)


def refuse_locked(unit: OrgUnit, period: Period, names: Mapping[str, Any]) -> None:
    """Raise :class:`InputLocked` for the first of ``names``."""
    field = sorted(names)[0]
    raise InputLocked("locked", f"/values/{field}", field=field, unit=unit.code,
                      period=period.code)


def _number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


def summary(before: Mapping[str, float | None], after: Mapping[str, float | None]) -> str:
    """``name: old -> new`` per change (what the approver reads in the flow)."""
    def shown(v: float | None) -> str:
        return "-" if v is None else str(_number(v))
    return "; ".join(f"{n}: {shown(before.get(n))} → {shown(after[n])}" for n in sorted(after))


def request_change(session: Session, actor: User, unit: OrgUnit, period: Period,
                   before: Mapping[str, float | None], after: Mapping[str, float | None],
                   source: str, remote_addr: str | None = None) -> Any:
    """Start an input change request (a flow instance) for ``after``; nothing is applied."""
    from quotaflow.services import flows

    data = {"unit": unit.code, "period": period.code, "summary": summary(before, after),
            "source": source,
            # Kept by the server: the approval applies these, whatever a client sends later.
            "values": {n: _number(v) for n, v in sorted(after.items())},
            "before": {n: _number(before.get(n)) for n in sorted(after)}}
    try:
        instance = flows.start(session, FLOW_KEY, unit=unit, initiator=actor, data=data,
                               subject_type=SUBJECT, subject_id=unit.id)
    except flows.FlowRefused as exc:
        field = sorted(after)[0]
        raise InputLocked("flow_refused", f"/values/{field}", field=field,
                          detail=exc.message) from None
    audit.record(session, actor, "request_input_change", "org_unit",
                 f"{unit.code}@{period.code}", before=data["before"],
                 after={**data["values"], "flow_instance": instance.id, "source": source},
                 remote_addr=remote_addr)
    return instance


def on_input_change_end(session: Session, instance: Any) -> None:
    """Flow end: approved -> the kept values pass the field check again and are written
    (audited before/after); rejected or withdrawn -> nothing changes (audited)."""
    from quotaflow.services import flows, org
    from quotaflow.store.queries import period_by_code

    data = (instance.state or {}).get("data") or {}
    unit = session.get(OrgUnit, instance.subject_id)
    period = period_by_code(session, str(data.get("period", "")))
    if unit is None or period is None:
        return
    decider = flows.decider(session, instance)
    target = f"{unit.code}@{period.code}"
    if instance.status != "approved":
        audit.record(session, decider, f"input_change_{instance.status}", "org_unit", target,
                     after={"flow_instance": instance.id, "values": data.get("values")})
        return
    values = {str(n): (None if v is None else float(v))
              for n, v in (data.get("values") or {}).items()}
    org.apply_values(session, decider, unit, period, values, action="apply_input_change",
                     extra={"flow_instance": instance.id,
                            "requested_by": instance.initiator.username
                            if instance.initiator is not None else None})
