"""Emergency recompute (应急重算): freeze some units, re-run the model for the rest,
approve on a fast track, publish a new plan version.

An authorised user (``plan.emergency``) picks units to freeze: by code and/or by city
(every unit of the city, i.e. its teams, and everything below them: their people).
The period's published plan is re-run under its pinned spec versions on the period's
current data (:func:`quotaflow.services.plans.recompute`) with every frozen unit
locked at its current target; for the plan's company total or a new one. What stays
exact, and why:

* a frozen unit and everything below it keep their targets (locks; the old plan's
  children already add up to their parent's target, so a frozen subtree is consistent);
* the units above them are free: each parent is split exactly over its children, the
  frozen ones keep their share and the others absorb the rest. A parent whose children
  are all frozen can only be their sum (the cascade's bounds make it so), and the
  company total (or the new one: the difference falls on the unfrozen units) is placed
  exactly unless the unfrozen units' bounds cannot take it, which the preview shows and
  the submission refuses.

:func:`preview` writes nothing. :func:`submit` stores the request and starts the
"emergency_recompute" flow; its action "publish_recompute" (registered here) runs
the recompute again on the then-published plan, checks it, publishes it as the next
version (the old one superseded), records the diff, re-targets the confirmation items
(:func:`quotaflow.services.confirmation.sync_items`: changed items back to pending,
their heads told, changed people's commitment letters superseded by new ones to sign),
tells the heads of the other changed units, and audits. A rejected or withdrawn flow
marks the request so; nothing is published.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.services import audit
from quotaflow.services import plans as plan_service
from quotaflow.services.access import Principal
from quotaflow.services.plan_data import PlanError
from quotaflow.services.uow import unit_of_work
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import emergency_queries
from quotaflow.store import plan_queries as pq
from quotaflow.store.emergency_models import EmergencyRecompute
from quotaflow.store.models import OrgUnit, Period, Plan, User, utcnow

SUBJECT = "emergency_recompute"
FLOW_KEY = "emergency_recompute"
ACTION = "publish_recompute"
PERMISSION = "plan.emergency"
REASON_MIN = 5
REASON_MAX = 2000
MAX_CHOICES = 200  # cities or unit codes in one request
FROZEN_SHOWN = 50  # frozen top units listed in a summary

POINTERS = {"reason": "/reason", "bad_total": "/total", "unknown_city": "/cities",
            "unknown_unit": "/units", "root_frozen": "/units", "nothing_frozen": "/cities",
            "too_many": "/cities", "reason_short": "/reason", "reason_long": "/reason"}


class EmergencyError(QuotaFlowError):
    """A refused emergency recompute: a stable code, its parameters and where (a JSON
    pointer into the request: /cities, /units, /total, /reason; or "")."""

    domain = "emergency"
    CODE_KINDS = code_kinds(not_allowed="forbidden", not_found="not_found", pending="conflict",
                            no_published="conflict", flow_refused="conflict")
    CODES = messages.register(domain, {
        "not_allowed": _l("Your role may not request an emergency recompute."),
        "no_published": _l("%(period)s has no published plan to recompute."),
        "unknown_city": _l("No active unit is in the city “%(city)s”."),
        "unknown_unit": _l("No active unit has the code “%(code)s”."),
        "root_frozen": _l("%(code)s is the company: its target is the total and cannot be frozen."),
        "nothing_frozen": _l("Choose at least one city or unit to freeze."),
        "too_many": _l("Choose at most %(limit)s cities or units."),
        "reason_short": _l("Reason: enter at least %(limit)s characters."),
        "reason_long": _l("Reason: enter at most %(limit)s characters."),
        "bad_total": _l("New company total: enter a positive number of yuan."),
        "not_exact": _l("The recompute would not be exact: %(detail)s"),
        "pending": _l("Request #%(id)s for %(period)s is still waiting for approval."),
        "allocation": _l("The model could not be re-run: %(detail)s"),
        "flow_refused": _l("The approval flow could not start: %(detail)s"),
        "not_found": _l("This request does not exist."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, POINTERS.get(code, ""), **params)


# -- choosing what to freeze -------------------------------------------------------------

def cities(session: Session) -> list[tuple[str, str]]:
    """(city_en, city_zh) of the active units that have a city, by English name."""
    found: dict[str, str] = {}
    for en, zh in emergency_queries.city_names(session):
        found.setdefault(str(en), str(zh or en))
    return sorted(found.items())


def _clean_list(values: Iterable[Any] | None) -> list[str]:
    out: list[str] = []
    for value in values or ():
        for part in str(value).replace("，", ",").split(","):
            text = part.strip()
            if text and text not in out:
                out.append(text)
    return out


@dataclass(frozen=True)
class Selection:
    """What a request freezes: the chosen cities and codes, the top frozen units (the
    chosen units and the cities' units, without those inside another), every frozen
    unit's id (the tops and everything below them)."""

    cities: list[str]
    unit_codes: list[str]
    tops: list[OrgUnit]
    frozen_ids: list[int]


def resolve(session: Session, chosen_cities: Iterable[Any] | None,
            unit_codes: Iterable[Any] | None) -> Selection:
    """The units to freeze. A city is matched on its English or Chinese name."""
    names = _clean_list(chosen_cities)
    codes = _clean_list(unit_codes)
    if len(names) + len(codes) > MAX_CHOICES:
        raise EmergencyError("too_many", limit=MAX_CHOICES)
    if not names and not codes:
        raise EmergencyError("nothing_frozen")
    roots: dict[int, OrgUnit] = {}
    canonical: list[str] = []
    for name in names:
        found = emergency_queries.active_units_in_city(session, name)
        if not found:
            raise EmergencyError("unknown_city", city=name)
        en = found[0].city_en or name
        if en not in canonical:
            canonical.append(en)
        roots.update({u.id: u for u in found})
    by_code = pq.units_by_codes(session, codes)
    for code in codes:
        unit = by_code.get(code)
        if unit is None or not unit.active:
            raise EmergencyError("unknown_unit", code=code)
        if unit.parent_id is None:
            raise EmergencyError("root_frozen", code=code)
        roots[unit.id] = unit
    for unit in roots.values():
        if unit.parent_id is None:
            raise EmergencyError("root_frozen", code=unit.code)
    ordered = sorted(roots.values(), key=lambda u: u.path)
    tops: list[OrgUnit] = []
    for unit in ordered:
        if not any(unit.path.startswith(t.path) for t in tops):
            tops.append(unit)
    frozen: set[int] = set()
    for top in tops:
        frozen.update(emergency_queries.active_ids_under(session, top.path))
    return Selection(cities=sorted(canonical), unit_codes=codes, tops=tops,
                     frozen_ids=sorted(frozen))


# -- the recompute and its diff ------------------------------------------------------------

@dataclass(frozen=True)
class RegionChange:
    code: str
    name_en: str
    name_zh: str
    old: int
    new: int

    @property
    def delta(self) -> int:
        return self.new - self.old

    @property
    def delta_pct(self) -> float | None:
        return self.delta / self.old if self.old else None


@dataclass(frozen=True)
class FrozenUnit:
    code: str
    name_en: str
    name_zh: str
    level: str
    city_en: str | None
    city_zh: str | None
    target: int
    new: int

    @property
    def kept(self) -> bool:
        return self.target == self.new


@dataclass(frozen=True, eq=False)
class Preview:
    """An emergency recompute as it would be published now (nothing saved)."""

    plan: Plan
    selection: Selection
    company_total: int
    requested_total: int  # the total the scenario places (a stretch preset may scale it)
    old_planned: int
    planned_total: int
    units: int
    changed: int
    changed_people: int
    regions: list[RegionChange]
    frozen: list[FrozenUnit]  # the top frozen units
    frozen_count: int
    frozen_moved: list[str]  # frozen units whose target would move (never, if exact)
    parents_not_exact: list[str]  # parents not equal to the sum of their children
    infeasible: list[dict[str, Any]]
    locks: dict[int, int] = field(repr=False)
    simulation: plan_service.Simulation = field(repr=False)
    changed_ids: list[int] = field(repr=False)
    old_targets: dict[int, int] = field(repr=False)
    new_targets: dict[int, int] = field(repr=False)

    @property
    def frozen_kept(self) -> bool:
        return not self.frozen_moved

    @property
    def sums_exact(self) -> bool:
        return not self.parents_not_exact

    @property
    def total_placed(self) -> bool:
        return self.planned_total == self.requested_total

    @property
    def ok(self) -> bool:
        return self.frozen_kept and self.sums_exact and self.total_placed

    def problems(self) -> str:
        out = []
        if self.frozen_moved:
            out.append("frozen units would move: " + ", ".join(self.frozen_moved[:10]))
        if self.parents_not_exact:
            out.append("parents not equal to the sum of their children: "
                       + ", ".join(self.parents_not_exact[:10]))
        if not self.total_placed:
            out.append(f"the units can take {self.planned_total:,} of the "
                       f"{self.requested_total:,} yuan total within their bounds")
        return "; ".join(out)

    def as_summary(self) -> dict[str, Any]:
        """JSON-ready: what a request keeps of its preview (and of its result)."""
        return {
            "plan_id": self.plan.id, "plan_number": self.plan.number,
            "company_total": self.company_total, "requested_total": self.requested_total,
            "old_planned_total": self.old_planned, "planned_total": self.planned_total,
            "units": self.units, "changed": self.changed, "changed_people": self.changed_people,
            "frozen_count": self.frozen_count,
            "frozen": [{"code": f.code, "name_en": f.name_en, "name_zh": f.name_zh,
                        "level": f.level, "city_en": f.city_en, "city_zh": f.city_zh,
                        "target": f.target, "new": f.new}
                       for f in self.frozen[:FROZEN_SHOWN]],
            "regions": [{"code": r.code, "name_en": r.name_en, "name_zh": r.name_zh,
                         "old": r.old, "new": r.new} for r in self.regions],
            "frozen_kept": self.frozen_kept, "sums_exact": self.sums_exact,
            "total_placed": self.total_placed,
            "infeasible": self.infeasible[:FROZEN_SHOWN],
        }


def _locks(session: Session, plan: Plan, frozen_ids: Sequence[int]) -> dict[int, int]:
    """Frozen unit id -> its target in ``plan`` (units not in the plan are skipped)."""
    return cq.plan_targets(session, plan.id, list(frozen_ids))


def _compute(session: Session, plan: Plan, selection: Selection, total: int | None) -> Preview:
    locks = _locks(session, plan, selection.frozen_ids)
    try:
        sim, _ = plan_service.recompute(session, plan, locks, total=total)
    except PlanError as exc:
        if exc.code == "bad_total":
            raise EmergencyError("bad_total", total=total) from None
        raise EmergencyError("allocation", detail=exc.message) from None
    result = sim.results[plan.scenario].plan
    tree = sim.data.tree
    ids = sim.data.unit_ids.astype(np.int64)
    target = result.target.astype(np.int64)
    new_targets = dict(zip(ids.tolist(), target.tolist(), strict=True))
    old_rows = cq.plan_tree(session, plan.id)
    old_targets = {uid: t for uid, _p, _path, t in old_rows}
    # Every parent is exactly the sum of its children.
    parent = tree.parent.astype(np.int64)
    nonroot = parent >= 0
    sums = np.zeros(tree.size, dtype=np.int64)
    np.add.at(sums, parent[nonroot], target[nonroot])
    has_children = np.zeros(tree.size, dtype=bool)
    has_children[parent[nonroot]] = True
    bad = np.flatnonzero(has_children & (sums != target))
    codes = tree.ids
    parents_not_exact = [str(codes[i]) for i in bad.tolist()]
    moved = sorted(str(codes[tree.index[u.code]]) for u in
                   pq.units_by_ids(session, list(locks)).values()
                   if u.code in tree.index and int(target[tree.index[u.code]]) != locks[u.id])
    all_ids = set(old_targets) | set(new_targets)
    changed_ids = sorted(u for u in all_ids if old_targets.get(u) != new_targets.get(u))
    deepest = tree.max_depth
    people = set(ids[tree.depth == deepest].tolist())
    regions = []
    if tree.max_depth >= 1:
        for i in tree.by_depth[1].tolist():
            uid = int(ids[i])
            regions.append(RegionChange(str(codes[i]), str(tree.labels["name_en"][i]),
                                        str(tree.labels["name_zh"][i]),
                                        old_targets.get(uid, 0), int(target[i])))
    frozen = [FrozenUnit(u.code, u.name_en, u.name_zh, u.level.key, u.city_en, u.city_zh,
                         locks.get(u.id, 0), new_targets.get(u.id, 0))
              for u in selection.tops]
    root = tree.root
    summary = sim.summary(plan.scenario)
    return Preview(
        plan=plan, selection=selection, company_total=sim.total,
        requested_total=int(result.total), old_planned=int(plan.planned_total),
        planned_total=int(target[root]), units=len(all_ids), changed=len(changed_ids),
        changed_people=sum(1 for u in changed_ids if u in people), regions=regions,
        frozen=frozen, frozen_count=len(locks), frozen_moved=moved,
        parents_not_exact=parents_not_exact, infeasible=list(summary.get("infeasible", [])),
        locks=locks, simulation=sim, changed_ids=changed_ids, old_targets=old_targets,
        new_targets=new_targets)


def _published(session: Session, period: Period) -> Plan:
    plan = cq.published_plan(session, period.id)
    if plan is None:
        raise EmergencyError("no_published", period=period.code)
    return plan


def _total(total: Any) -> int | None:
    if total is None or (isinstance(total, str) and not total.strip()):
        return None
    try:
        return plan_service.parse_total(total)
    except PlanError:
        raise EmergencyError("bad_total", total=total) from None


def preview(session: Session, period: Period, *, cities: Iterable[Any] | None = None,
            unit_codes: Iterable[Any] | None = None, total: Any = None) -> Preview:
    """The recompute of the period's published plan with the chosen units frozen, and
    its diff against that plan. Writes nothing."""
    plan = _published(session, period)
    selection = resolve(session, cities, unit_codes)
    return _compute(session, plan, selection, _total(total))


# -- requesting --------------------------------------------------------------------------

def _check_allowed(actor: User) -> None:
    from quotaflow.services.auth import principal_for

    principal: Principal = principal_for(actor)
    if not principal.has(PERMISSION):
        raise EmergencyError("not_allowed", user=actor.username)


def _reason(reason: Any) -> str:
    text = str(reason or "").strip()
    if len(text) < REASON_MIN:
        raise EmergencyError("reason_short", limit=REASON_MIN)
    if len(text) > REASON_MAX:
        raise EmergencyError("reason_long", limit=REASON_MAX)
    return text


def pending_request(session: Session, period_id: int) -> EmergencyRecompute | None:
    return emergency_queries.pending_request(session, period_id)


def submit(session: Session, period: Period, actor: User, *, reason: Any,
           cities: Iterable[Any] | None = None, unit_codes: Iterable[Any] | None = None,
           total: Any = None, remote_addr: str | None = None) -> EmergencyRecompute:
    """Store the request and start the fast-track flow. Commits (or nothing happens)."""
    from quotaflow.services import flows

    with unit_of_work(session):
        _check_allowed(actor)
        text = _reason(reason)
        cq.lock_period(session, period.id)
        waiting = pending_request(session, period.id)
        if waiting is not None:
            raise EmergencyError("pending", id=waiting.id, period=period.code)
        found = preview(session, period, cities=cities, unit_codes=unit_codes, total=total)
        if not found.ok:
            raise EmergencyError("not_exact", detail=found.problems())
        plan = found.plan
        new_total = _total(total)
        frozen_units = pq.units_by_ids(session, list(found.locks))
        request = EmergencyRecompute(
            period_id=period.id, plan_id=plan.id, cities=found.selection.cities,
            unit_codes=found.selection.unit_codes,
            frozen=sorted(u.code for u in frozen_units.values()), total=new_total,
            reason=text, status="pending", summary={"preview": found.as_summary()},
            requested_by_id=actor.id, requested_at=utcnow())
        session.add(request)
        session.flush()
        root = plan_service.plan_root(session, plan)
        if root is None:
            raise EmergencyError("no_published", period=period.code)
        audit.record(session, actor, "request_emergency_recompute", "emergency_recompute",
                     str(request.id),
                     after={"period": period.code, "plan_id": plan.id,
                            "cities": request.cities, "units": request.unit_codes,
                            "frozen": len(request.frozen), "total": new_total,
                            "reason": text, "changed": found.changed},
                     remote_addr=remote_addr)
        data = {"plan_id": plan.id, "period": period.code,
                "total": float(new_total if new_total is not None else plan.company_total),
                "reason": text, "request_id": request.id,
                "frozen": ", ".join([*request.cities, *request.unit_codes])}
        try:
            instance = flows.start(session, FLOW_KEY, unit=root, initiator=actor, data=data,
                                   subject_type=SUBJECT, subject_id=request.id)
        except flows.FlowRefused as exc:
            raise EmergencyError("flow_refused", detail=exc.message) from None
        request.flow_instance_id = instance.id
        return request


def get(session: Session, request_id: int) -> EmergencyRecompute:
    found = session.get(EmergencyRecompute, request_id)
    if found is None:
        raise EmergencyError("not_found", id=request_id)
    return found


def requests(session: Session, period_id: int | None = None, limit: int = 50
             ) -> list[EmergencyRecompute]:
    """Requests, newest first (of one period, if given)."""
    return emergency_queries.requests(session, period_id, limit)


# -- deciding (flow handlers) --------------------------------------------------------------

def _decider(session: Session, instance: Any) -> User | None:
    from quotaflow.services import flows

    return flows.decider(session, instance)


def _request_for(session: Session, instance: Any) -> EmergencyRecompute | None:
    if instance.subject_type != SUBJECT:
        return None
    found = session.get(EmergencyRecompute, instance.subject_id)
    if (found is None or found.status != "pending"
            or found.flow_instance_id not in (None, instance.id)):
        return None
    return found


def _yuan(value: int) -> str:
    return f"{int(value):,}"


def publish_recompute(session: Session, instance: Any) -> None:
    """Flow action "publish_recompute": recompute on the period's published plan now, check
    it, publish it as the next version and tell everyone concerned. Raising refuses the
    approval as a whole (the flow step rolls back)."""
    from quotaflow.services import confirmation, flows

    request = _request_for(session, instance)
    if request is None:
        return
    actor = _decider(session, instance)
    cq.lock_period(session, request.period_id)
    plan = cq.published_plan(session, request.period_id)
    if plan is None:
        raise flows.FlowRefused("recompute_failed", EmergencyError(
            "no_published", period=request.period.code).message, request=request.id)
    units = pq.units_by_codes(session, list(request.frozen or []))
    frozen_ids = {u.id for u in units.values()}
    tops = [u for u in units.values() if u.parent_id not in frozen_ids]
    selection = Selection(cities=list(request.cities or []),
                          unit_codes=list(request.unit_codes or []),
                          tops=sorted(tops, key=lambda u: u.path),
                          frozen_ids=sorted(frozen_ids))
    try:
        found = _compute(session, plan, selection, request.total)
    except EmergencyError as exc:
        raise flows.FlowRefused("recompute_failed", exc.message, request=request.id) from None
    if not found.ok:
        raise flows.FlowRefused("recompute_failed", EmergencyError(
            "not_exact", detail=found.problems()).message, request=request.id)
    note = f"Emergency recompute #{request.id}: {request.reason}"[:plan_service.NOTE_MAX]
    new_plan = plan_service.reallocate(
        session, plan, found.locks, actor, note, total=request.total,
        simulation=found.simulation,
        extra_summary={"emergency_recompute_id": request.id,
                       "frozen_units": found.frozen_count,
                       # Pages say the note in the reader's language from this.
                       "version_note": {"kind": "emergency", "request_id": request.id,
                                        "reason": request.reason}})
    request.status = "published"
    request.result_plan_id = new_plan.id
    request.decided_at = utcnow()
    request.summary = {**dict(request.summary or {}), "result": {
        **found.as_summary(), "new_plan_id": new_plan.id, "new_plan_number": new_plan.number}}
    session.flush()
    audit.record(session, actor, "publish_emergency_recompute", "emergency_recompute",
                 str(request.id), before={"status": "pending", "plan_id": plan.id},
                 after={"status": "published", "plan_id": new_plan.id,
                        "plan_number": new_plan.number, "company_total": new_plan.company_total,
                        "planned_total": new_plan.planned_total, "changed": found.changed,
                        "changed_people": found.changed_people,
                        "frozen": found.frozen_count})
    changed_items = confirmation.sync_items(session, plan, new_plan, actor)
    _notify(session, request, plan, new_plan, found,
            told={i.unit_id for i in changed_items})


def _notify(session: Session, request: EmergencyRecompute, old: Plan, new: Plan,
            found: Preview, told: set[int]) -> None:
    """"plan.version_created" to the heads of changed units the confirmation did not
    already tell (units without an open item), and to the requester."""
    from quotaflow.services import confirmation, outbox

    url = f"/plans/{new.id}/diff?against={old.id}"
    period = new.period.code
    ids = [u for u in found.changed_ids if u not in told]
    heads = cq.unit_heads(session, ids, confirmation.CONFIRM_ROLES)
    units = pq.units_by_ids(session, [u for u, users in heads.items() if users])
    for unit_id, users in heads.items():
        if not users or unit_id not in units:
            continue
        unit = units[unit_id]
        before, after = found.old_targets.get(unit_id, 0), found.new_targets.get(unit_id, 0)
        outbox.emit(session, "plan.version_created", {
            "title_en": f"The {period} target of {unit.name_en} changed",
            "title_zh": f"{unit.name_zh}的 {period} 目标已调整",
            "body_en": f"Emergency recompute, plan {new.number}: from {_yuan(before)} to "
                       f"{_yuan(after)} yuan ({after - before:+,} yuan).",
            "body_zh": f"应急重算，第 {new.number} 版计划：由 {_yuan(before)} 元调整为 "
                       f"{_yuan(after)} 元（{after - before:+,} 元）。",
            "url": url, "plan_id": new.id, "based_on_id": old.id, "unit": unit.code,
            "old_target": before, "new_target": after, "emergency_recompute_id": request.id},
            to_users=users, unit_id=unit_id)
    outbox.emit(session, "plan.version_created", {
        "title_en": f"Emergency recompute #{request.id} of {period} is published",
        "title_zh": f"{period} 应急重算 #{request.id} 已发布",
        "body_en": f"Plan {new.number} replaces plan {old.number}: {found.changed} units "
                   f"changed, {found.frozen_count} frozen.",
        "body_zh": f"第 {new.number} 版计划取代第 {old.number} 版：{found.changed} 个单元调整，"
                   f"{found.frozen_count} 个冻结。",
        "url": f"/emergency/{request.id}", "plan_id": new.id, "based_on_id": old.id,
        "emergency_recompute_id": request.id},
        to_users=[request.requested_by_id], unit_id=None)


def on_recompute_end(session: Session, instance: Any) -> None:
    """Flow end: approved (published, if no action node did it), or rejected / withdrawn."""
    request = _request_for(session, instance)
    if request is None:
        return
    if instance.status == "approved":
        publish_recompute(session, instance)
        return
    status = "rejected" if instance.status == "rejected" else "withdrawn"
    request.status = status
    request.decided_at = utcnow()
    session.flush()
    audit.record(session, _decider(session, instance), f"emergency_recompute_{status}",
                 "emergency_recompute", str(request.id), before={"status": "pending"},
                 after={"status": status, "period": request.period.code})

