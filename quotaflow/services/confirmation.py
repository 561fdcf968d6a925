"""Two-way confirmation of a published plan: accept or appeal, level by level.

Publishing a plan opens the first group: the company's children (the regions). Each
member's head accepts its target or appeals it (a form: a requested target within the
policy's range of the allocation, a reason, evidence files) through an approval flow.
A group is settled when every member has accepted and no appeal is open; then each
member's own children are opened as the next group, down to the people, whose targets
are then final (their commitment letters are issued).

An approved appeal makes a new plan version (:func:`quotaflow.services.plans.reallocate`):
every unit already agreed, and every unit outside the appealed sibling group, keeps its
target as a lock; the appealed unit is locked at the approved value; the model
re-spreads the difference over the siblings that have not accepted yet ("siblings"),
or the company reserve takes it ("reserve": the ancestors' targets and the plan's
planned total move by the difference, so every parent is still exactly the sum of its
children and the reserve is the company total minus the planned total). Items whose
target changed go back to pending with a "changed from X to Y" note, and their heads
are told.

Who answers for a unit: the users holding region_head / team_lead / sales exactly on
it; a unit nobody heads is answered for by the head of its nearest headed ancestor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.services import audit, specs
from quotaflow.services import plans as plan_service
from quotaflow.services.access import UNIT_PERMISSIONS
from quotaflow.services.plan_data import PlanError
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import plan_queries
from quotaflow.store.confirmation_models import Appeal, ConfirmationGroup, ConfirmationItem
from quotaflow.store.models import OrgUnit, Plan, SpecVersion, User, utcnow

POLICY_KIND = "confirmation_policy"
POLICY_KEY = "default"
CONFIRM_ROLES: tuple[str, ...] = tuple(sorted(UNIT_PERMISSIONS["unit.confirm"]))
SUBJECT = "appeal"
REASON_MAX = 2000
DEFAULT_REASON_MIN = 10
OPEN_ITEM_STATUSES = ("pending", "appealed")

POINTERS = {"requested": "/requested", "reason": "/reason", "evidence": "/evidence"}


class ConfirmationError(QuotaFlowError):
    """A refused confirmation action: a stable code, its parameters and where (a JSON
    pointer into the submitted form, or "")."""

    domain = "confirmation"
    # A refusal because of the period's or plan's state is a conflict (409), as for races.
    CODE_KINDS = code_kinds(not_found="not_found", not_yours="forbidden", stale="conflict",
                            not_pending="conflict", not_draft="conflict",
                            not_published="conflict", no_policy="conflict",
                            no_level_policy="conflict", flow_refused="conflict")
    CODES = messages.register(domain, {
        "no_policy": _l("No confirmation policy is active. Activate one before publishing."),
        "not_draft": _l("Plan %(number)s of %(period)s is already %(status)s; only a draft plan "
                        "can be published."),
        "not_published": _l("This period has no published plan."),
        "not_found": _l("This confirmation does not exist."),
        "not_yours": _l("Only the head of %(unit)s may answer for its target."),
        "not_pending": _l("The target of %(unit)s is not waiting for an answer any more."),
        "stale": _l("The target changed meanwhile. Reload the page and answer again."),
        "no_level_policy": _l("The confirmation policy has no rule for the level “%(level)s”."),
        "required": _l("This field is required."),
        "not_number": _l("Enter a whole number of yuan."),
        "out_of_range": _l("Requested target: enter between %(minimum)s and %(maximum)s yuan "
                           "(the allocated %(allocated)s ± %(range)s%%)."),
        "not_multiple": _l("Requested target: enter a multiple of %(unit)s yuan."),
        "no_change": _l("That is the allocated target: accept it instead of appealing."),
        "reason_short": _l("Reason: enter at least %(limit)s characters."),
        "reason_long": _l("Reason: enter at most %(limit)s characters."),
        "evidence_missing": _l("Evidence: attach at least %(minimum)s file(s) (%(count)s attached)."),
        "evidence_foreign": _l("Evidence: file %(upload)s does not belong to %(unit)s."),
        "flow_refused": _l("The approval flow “%(flow)s” could not start: %(detail)s"),
        "adjustment_failed": _l("The approved target of %(unit)s could not be applied: %(detail)s"),
    })


# -- policy --------------------------------------------------------------------------

def policy_version(session: Session) -> SpecVersion:
    version = specs.active_version(session, POLICY_KIND, POLICY_KEY)
    if version is None:
        raise ConfirmationError("no_policy")
    return version


def level_policy(version: SpecVersion, level: str) -> dict[str, Any]:
    found = (version.content or {}).get("levels", {}).get(level)
    if found is None:
        raise ConfirmationError("no_level_policy", level=level)
    return dict(found)


@dataclass(frozen=True)
class AppealBounds:
    """What an appeal of one item may ask for (whole yuan, multiples of ``step``)."""

    allocated: int
    minimum: int
    maximum: int
    step: int
    range_percent: float
    min_evidence: int
    reason_min: int
    flow: str
    absorb: str


def _rounding_unit(session: Session, plan: Plan, level: str) -> int:
    chosen = plan_service.pinned_specs(session, plan)
    model = (chosen.presets.get(plan.scenario).model if plan.scenario in chosen.presets.keys
             else chosen.model)
    try:
        return max(1, int(model.policy(level).rounding_unit))
    except (KeyError, ValueError):
        return 1


def appeal_bounds(session: Session, item: ConfirmationItem, *,
                  allocated: int | None = None) -> AppealBounds:
    """The range an appeal of ``item`` may ask for, from the group's pinned policy;
    ``allocated``: the amount an open appeal was made against (stored on the server),
    else the item's current target."""
    group = item.group
    rule = level_policy(session.get(SpecVersion, group.policy_version_id), group.level)
    pct = float(rule["range_percent"])
    step = _rounding_unit(session, item.plan, group.level)
    target = int(item.target if allocated is None else allocated)
    low = math.ceil(target * (1 - pct / 100) / step) * step
    high = math.floor(target * (1 + pct / 100) / step) * step
    return AppealBounds(allocated=target, minimum=max(0, low), maximum=max(high, 0), step=step,
                        range_percent=pct, min_evidence=int(rule.get("min_evidence", 0)),
                        reason_min=int(rule.get("reason_min_length", DEFAULT_REASON_MIN)),
                        flow=str(rule["flow"]), absorb=str(rule["absorb"]))


def appeal_form_spec(bounds: AppealBounds) -> dict[str, Any]:
    """The appeal form (a form spec of the form engine) for one item: the requested
    target limited to the policy's range, and the reason. Evidence files are posted
    beside it (several files; the engine's file widget holds one)."""
    return {
        "key": "appeal",
        "title_en": "Appeal a target",
        "title_zh": "目标申诉",
        "schema": {
            "type": "object",
            "required": ["requested", "reason"],
            "properties": {
                "requested": {"type": "integer", "minimum": bounds.minimum,
                              "maximum": bounds.maximum, "multipleOf": bounds.step},
                "reason": {"type": "string", "minLength": bounds.reason_min,
                           "maxLength": REASON_MAX},
            },
        },
        "ui": {
            "order": ["requested", "reason"],
            "widgets": {"requested": "number", "reason": "textarea"},
            "labels": {"requested": {"en": "Requested target (yuan)", "zh": "申请目标（元）"},
                       "reason": {"en": "Reason", "zh": "申诉理由"}},
            "help": {"requested": {
                "en": f"Between {bounds.minimum:,} and {bounds.maximum:,} yuan "
                      f"(allocated {bounds.allocated:,} ± {bounds.range_percent:g}%), "
                      f"in steps of {bounds.step:,}.",
                "zh": f"{bounds.minimum:,} 至 {bounds.maximum:,} 元（分配目标 "
                      f"{bounds.allocated:,} ± {bounds.range_percent:g}%），步长 {bounds.step:,}。"}},
        },
    }


# -- who answers -----------------------------------------------------------------------

def _path_ids(unit: OrgUnit) -> list[int]:
    return [int(x) for x in unit.path.strip("/").split("/") if x]


def acting_heads(session: Session, unit: OrgUnit) -> list[int]:
    """The users who answer for ``unit``: its own heads, else its nearest headed ancestor's."""
    ids = _path_ids(unit)
    heads = cq.unit_heads(session, ids, CONFIRM_ROLES)
    for unit_id in reversed(ids):
        if heads.get(unit_id):
            return heads[unit_id]
    return []


def acting_heads_map(session: Session, units: Iterable[OrgUnit]) -> dict[int, list[int]]:
    """:func:`acting_heads` of many units with one query: unit id -> user ids."""
    paths = {u.id: _path_ids(u) for u in units}
    heads = cq.unit_heads(session, sorted({i for ids in paths.values() for i in ids}),
                          CONFIRM_ROLES)
    return {unit_id: next((heads[i] for i in reversed(ids) if heads.get(i)), [])
            for unit_id, ids in paths.items()}


def can_act(session: Session, item: ConfirmationItem, user: User) -> bool:
    return user.id in acting_heads(session, item.unit)


def _check_actor(session: Session, item: ConfirmationItem, user: User) -> None:
    if not can_act(session, item, user):
        raise ConfirmationError("not_yours", unit=item.unit.code)


# -- notifications ----------------------------------------------------------------------

def _emit(session: Session, topic: str, payload: Mapping[str, Any], *,
          to_users: Iterable[int] = (), unit_id: int | None = None) -> None:
    from quotaflow.services import outbox

    outbox.emit(session, topic, payload, to_users=list(to_users), unit_id=unit_id)


def _yuan(value: int) -> str:
    return f"{int(value):,}"


# -- publishing and opening groups ---------------------------------------------------------

def publish(session: Session, plan: Plan, actor: User | None, *,
            remote_addr: str | None = None) -> Plan:
    """Publish a draft plan (the period's published plan before it is superseded) and open
    the confirmation of its first level, or re-target the open confirmation; one unit of
    work (a savepoint inside a flow's "publish" action)."""
    with unit_of_work(session):
        cq.lock_period(session, plan.period_id)
        session.refresh(plan)
        if plan.status != "draft":
            raise ConfirmationError("not_draft", number=plan.number, period=plan.period.code,
                                    status=plan.status)
        policy = policy_version(session)
        previous = cq.published_plan(session, plan.period_id)
        if previous is not None:
            previous.status = "superseded"
        plan.status = "published"
        if previous is not None:
            plan.based_on_id = plan.based_on_id or previous.id
        session.flush()
        audit.record(session, actor, "publish_plan", "plan", f"{plan.period.code}#{plan.number}",
                     before={"status": "draft"},
                     after={"status": "published", "id": plan.id,
                            "superseded": previous.number if previous else None},
                     remote_addr=remote_addr)
        root = plan_service.plan_root(session, plan)
        _emit(session, "plan.published", {
            "title_en": f"Plan {plan.number} of {plan.period.code} is published",
            "title_zh": f"{plan.period.code} 第 {plan.number} 版计划已发布",
            "body_en": f"Planned total {_yuan(plan.planned_total)} yuan.",
            "body_zh": f"计划总额 {_yuan(plan.planned_total)} 元。",
            "url": f"/plans/{plan.id}", "plan_id": plan.id, "period": plan.period.code,
            "number": plan.number}, unit_id=root.id if root else None)
        if root is not None:
            if cq.group(session, plan.period_id, root.id) is None:
                open_group(session, plan, root, policy, actor)
            elif previous is not None:
                _sync_items(session, previous, plan, actor)
        return plan


def open_group(session: Session, plan: Plan, parent: OrgUnit, policy: SpecVersion,
               actor: User | None) -> ConfirmationGroup | None:
    """Open the children of ``parent`` for confirmation (no commit). None: no children."""
    existing = cq.group(session, plan.period_id, parent.id)
    if existing is not None:
        return existing
    children = cq.active_children(session, [parent.id])[parent.id]
    targets = cq.plan_targets(session, plan.id, [c.id for c in children])
    members = [c for c in children if c.id in targets]
    if not members:
        return None
    group = ConfirmationGroup(period_id=plan.period_id, parent_unit_id=parent.id,
                              level=members[0].level.key, policy_version_id=policy.id,
                              opened_plan_id=plan.id, status="open", opened_at=utcnow())
    session.add(group)
    session.flush()
    for unit in members:
        item = ConfirmationItem(group_id=group.id, unit_id=unit.id, plan_id=plan.id,
                                target=targets[unit.id], status="pending")
        session.add(item)
        session.flush()
        _emit(session, "confirmation.opened", {
            "title_en": f"Confirm the {plan.period.code} target of {unit.name_en}",
            "title_zh": f"请确认{unit.name_zh}的 {plan.period.code} 目标",
            "body_en": f"Target {_yuan(targets[unit.id])} yuan: accept it or appeal.",
            "body_zh": f"目标 {_yuan(targets[unit.id])} 元：请确认或申诉。",
            "url": f"/confirm?period={plan.period.code}", "item_id": item.id,
            "unit": unit.code, "period": plan.period.code, "plan_id": plan.id,
            "target": targets[unit.id]},
            to_users=acting_heads(session, unit), unit_id=unit.id)
    audit.record(session, actor, "open_confirmation", "confirmation_group", str(group.id),
                 after={"period": plan.period.code, "parent": parent.code, "level": group.level,
                        "members": [u.code for u in members], "plan_id": plan.id})
    return group


def _settle_if_done(session: Session, group: ConfirmationGroup, actor: User | None) -> bool:
    """Settle ``group`` when every member accepted; open the next level or issue letters."""
    session.flush()
    cq.lock_group(session, group.id)
    if group.status == "settled" or any(s != "accepted" for s in cq.item_statuses(session,
                                                                                  group.id)):
        return False
    group.status = "settled"
    group.settled_at = utcnow()
    audit.record(session, actor, "settle_confirmation", "confirmation_group", str(group.id),
                 after={"parent": group.parent_unit.code, "level": group.level})
    plan = cq.published_plan(session, group.period_id)
    if plan is None:
        return True
    policy = session.get(SpecVersion, group.policy_version_id)
    unit_ids = [i.unit_id for i in group.items]
    children = cq.active_children(session, unit_ids)
    leaves = []
    for item in group.items:
        if children[item.unit_id]:
            open_group(session, plan, item.unit, policy, actor)
        else:
            leaves.append(item.unit_id)
    if leaves:
        from quotaflow.services import letters

        # A group settling again after a new version: people whose target did not move
        # keep the card they have (and its signatures).
        letters.issue_letters(session, plan, leaves, actor, keep_same_target=True)
    return True


# -- answering ---------------------------------------------------------------------------

def _item(session: Session, item_id: int) -> ConfirmationItem:
    found = cq.item(session, item_id)
    if found is None:
        raise ConfirmationError("not_found", id=item_id)
    return found


def _check_open(session: Session, item: ConfirmationItem, version: int | None) -> None:
    # Lock the group first: answers that complete it one after another see each other.
    cq.lock_group(session, item.group_id)
    session.refresh(item)
    if version is not None and int(version) != item.version:
        raise ConfirmationError("stale", unit=item.unit.code)
    if item.status != "pending" or item.group.status != "open":
        raise ConfirmationError("not_pending", unit=item.unit.code, status=item.status)


def _accept_one(session: Session, item: ConfirmationItem, actor: User, version: int | None,
                remote_addr: str | None) -> None:
    """Record ``actor``'s acceptance of ``item`` (checked; no settling, no commit)."""
    _check_actor(session, item, actor)
    _check_open(session, item, version)
    item.status = "accepted"
    item.decided_by_id = actor.id
    item.decided_at = utcnow()
    session.flush()
    audit.record(session, actor, "accept_target", "confirmation_item", str(item.id),
                 before={"status": "pending"},
                 after={"status": "accepted", "unit": item.unit.code,
                        "target": int(item.target), "plan_id": item.plan_id},
                 remote_addr=remote_addr)
    parent = item.group.parent_unit
    _emit(session, "confirmation.accepted", {
        "title_en": f"{item.unit.name_en} accepted its target",
        "title_zh": f"{item.unit.name_zh}已确认目标",
        "body_en": f"{_yuan(item.target)} yuan accepted by {actor.display_name}.",
        "body_zh": f"{actor.display_name} 已确认 {_yuan(item.target)} 元。",
        "url": f"/plans/{item.plan_id}/units/{item.unit.code}",
        "item_id": item.id, "unit": item.unit.code, "target": int(item.target)},
        to_users=acting_heads(session, parent) if parent.parent_id else (),
        unit_id=item.unit_id)


def accept(session: Session, item_id: int, actor: User, *, version: int | None = None,
           remote_addr: str | None = None) -> ConfirmationItem:
    """``actor`` accepts the current target of the item. Commits."""
    return _accept_items(session, [(item_id, version)], actor, remote_addr,
                         skip_accepted=False)[0]


def accept_many(session: Session, answers: Sequence[tuple[int, int | None]], actor: User, *,
                remote_addr: str | None = None) -> list[ConfirmationItem]:
    """``actor`` accepts several targets at once: ``answers`` are (item id, version seen)
    pairs, as the page listed them. All or nothing: if any of them is not the actor's,
    not pending or changed since (a stale version), nothing is accepted and the error
    names that unit. Targets already accepted are skipped. Commits."""
    return _accept_items(session, answers, actor, remote_addr, skip_accepted=True)


def _accept_items(session: Session, answers: Sequence[tuple[int, int | None]], actor: User,
                  remote_addr: str | None, *, skip_accepted: bool) -> list[ConfirmationItem]:
    """Accept each answer, then settle the groups they complete once, after all of them
    (the next level opens, or letters are issued); one commit, or none."""
    code = "?"
    try:
        with unit_of_work(session):
            items: list[ConfirmationItem] = []
            seen: set[int] = set()
            for item_id, version in answers:
                if item_id in seen:
                    continue
                seen.add(item_id)
                item = _item(session, item_id)
                code = item.unit.code
                if skip_accepted:
                    cq.lock_group(session, item.group_id)
                    session.refresh(item)
                    if item.status == "accepted" and can_act(session, item, actor):
                        continue  # already accepted (one by one, or by a co-head)
                _accept_one(session, item, actor, version, remote_addr)
                items.append(item)
            groups: dict[int, ConfirmationGroup] = {}
            for item in items:
                groups.setdefault(item.group_id, item.group)
            for group in groups.values():
                _settle_if_done(session, group, actor)
            return items
    except StaleDataError:
        raise ConfirmationError("stale", unit=code) from None


def _whole_yuan(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ConfirmationError("not_number", POINTERS["requested"],
                                    field="requested") from None
    if not isinstance(value, int | float) or not math.isfinite(value) or value != int(value):
        raise ConfirmationError("not_number", POINTERS["requested"], field="requested")
    return int(value)


def check_amount(bounds: AppealBounds, requested: Any, pointer: str = POINTERS["requested"]
                 ) -> int | None:
    """A requested target checked against the range (None when nothing was entered)."""
    try:
        amount = _whole_yuan(requested)
    except ConfirmationError as exc:
        raise ConfirmationError(exc.code, pointer, **exc.params) from None
    if amount is None:
        return None
    if not bounds.minimum <= amount <= bounds.maximum:
        raise ConfirmationError("out_of_range", pointer, field="requested",
                                minimum=bounds.minimum, maximum=bounds.maximum,
                                allocated=bounds.allocated, range=f"{bounds.range_percent:g}")
    if amount % bounds.step:
        raise ConfirmationError("not_multiple", pointer, field="requested", unit=bounds.step)
    if amount == bounds.allocated:
        raise ConfirmationError("no_change", pointer, field="requested")
    return amount


def check_appeal(session: Session, item: ConfirmationItem, requested: Any, reason: Any,
                 evidence: Sequence[int]) -> tuple[AppealBounds, int, str, list[int]]:
    """The server's own check of an appeal (whatever the page enforced)."""
    bounds = appeal_bounds(session, item)
    amount = check_amount(bounds, requested)
    if amount is None:
        raise ConfirmationError("required", POINTERS["requested"], field="requested")
    text = str(reason or "").strip()
    if len(text) < bounds.reason_min:
        raise ConfirmationError("reason_short", POINTERS["reason"], field="reason",
                                limit=bounds.reason_min)
    if len(text) > REASON_MAX:
        raise ConfirmationError("reason_long", POINTERS["reason"], field="reason",
                                limit=REASON_MAX)
    files: list[int] = []
    from quotaflow.services.uploads import get_upload

    for upload_id in evidence:
        if upload_id in files:
            continue
        upload = get_upload(session, int(upload_id))
        if upload is None or upload.unit_id != item.unit_id:
            raise ConfirmationError("evidence_foreign", POINTERS["evidence"], field="evidence",
                                    upload=upload_id, unit=item.unit.code)
        files.append(int(upload_id))
    if len(files) < bounds.min_evidence:
        raise ConfirmationError("evidence_missing", POINTERS["evidence"], field="evidence",
                                minimum=bounds.min_evidence, count=len(files))
    return bounds, amount, text, files


def submit_appeal(session: Session, item_id: int, actor: User, *, requested: Any, reason: Any,
                  evidence: Sequence[int], version: int | None = None,
                  remote_addr: str | None = None) -> Appeal:
    """``actor`` appeals the item's target; the policy's flow decides it. Commits."""
    from quotaflow.services import flows

    code = "?"
    try:
        with unit_of_work(session):
            item = _item(session, item_id)
            code = item.unit.code
            _check_actor(session, item, actor)
            _check_open(session, item, version)
            bounds, amount, text, files = check_appeal(session, item, requested, reason, evidence)
            pct = change_pct(bounds.allocated, amount)
            appeal = Appeal(item_id=item.id, period_id=item.group.period_id, unit_id=item.unit_id,
                            plan_id=item.plan_id, level=item.group.level,
                            allocated=bounds.allocated, requested=amount, reason=text,
                            evidence=files, status="open", flow_key=bounds.flow,
                            submitted_by_id=actor.id, submitted_at=utcnow())
            session.add(appeal)
            item.status = "appealed"
            session.flush()
            audit.record(session, actor, "submit_appeal", "appeal", str(appeal.id),
                         after={"unit": item.unit.code, "allocated": bounds.allocated,
                                "requested": amount, "change_pct": pct,
                                "evidence": files, "flow": bounds.flow},
                         remote_addr=remote_addr)
            parent = item.group.parent_unit
            _emit(session, "appeal.submitted", {
                "title_en": f"{item.unit.name_en} appeals its target",
                "title_zh": f"{item.unit.name_zh}对目标提出申诉",
                "body_en": f"From {_yuan(bounds.allocated)} to {_yuan(amount)} yuan "
                           f"({pct:+g}%): {text[:200]}",
                "body_zh": f"由 {_yuan(bounds.allocated)} 元申请调整为 {_yuan(amount)} 元"
                           f"（{pct:+g}%）：{text[:200]}",
                "url": f"/confirm/appeals/{appeal.id}", "appeal_id": appeal.id,
                "unit": item.unit.code, "allocated": bounds.allocated, "requested": amount},
                to_users=acting_heads(session, parent) if parent.parent_id else (),
                unit_id=item.unit_id)
            try:
                instance = flows.start(session, bounds.flow, unit=item.unit, initiator=actor,
                                       data={"allocated": bounds.allocated, "requested": amount,
                                             "change_pct": pct, "reason": text},
                                       subject_type=SUBJECT, subject_id=appeal.id)
            except flows.FlowRefused as exc:
                raise ConfirmationError("flow_refused", flow=bounds.flow,
                                        detail=exc.message) from None
            appeal.flow_instance_id = instance.id
            return appeal
    except StaleDataError:
        raise ConfirmationError("stale", unit=code) from None


# -- deciding appeals (flow handlers) -----------------------------------------------------

def _decider(session: Session, instance: Any) -> User | None:
    from quotaflow.services import flows

    return flows.decider(session, instance)


def _appeal_for(session: Session, instance: Any) -> Appeal | None:
    """The open appeal a flow instance decides (None for anything else: another subject,
    an appeal run by another instance, one already decided)."""
    if instance.subject_type != SUBJECT:
        return None
    appeal = cq.appeal(session, instance.subject_id)
    if (appeal is None or appeal.status != "open" or appeal.unit_id != instance.unit_id
            or appeal.flow_instance_id not in (None, instance.id)):
        return None
    return appeal


def change_pct(allocated: int, requested: int) -> float:
    """How far ``requested`` is from ``allocated``, in percent (2 decimals); the flow
    specs derive the same figure (``derived``)."""
    return round((requested - allocated) / allocated * 100, 2) if allocated else 100.0


def _server_amount(session: Session, appeal: Appeal, data: Mapping[str, Any],
                   pointer: str) -> int:
    """The flow data's requested target, checked against the policy's range of the
    allocation stored with the appeal (never a value the client sent)."""
    bounds = appeal_bounds(session, appeal.item, allocated=int(appeal.allocated))
    amount = check_amount(bounds, data.get("requested"), pointer)
    if amount is None:
        raise ConfirmationError("required", pointer, field="requested")
    return amount


def check_appeal_data(session: Session, instance: Any, data: Mapping[str, Any]) -> None:
    """Flow data check (services/registry.py): a submit, resubmit or edit of an appeal
    keeps the allocation the server stored and a requested target within the policy's
    range of it; the appeal's ``requested`` then follows the flow's data (one value).
    ``change_pct`` is derived by the interpreter from these two (the flow spec's
    ``derived``), so routing is decided on server-side values."""
    appeal = _appeal_for(session, instance)
    if appeal is None:
        return
    from quotaflow.services import flows

    if data.get("allocated") != int(appeal.allocated):
        refused = flows.FlowRefused("field_not_editable", "the allocation is the server's",
                                    field="allocated")
        refused.pointer = "/changes/allocated"
        raise refused
    try:
        amount = _server_amount(session, appeal, data, "/changes/requested")
    except ConfirmationError as exc:
        refused = flows.FlowRefused(exc.code, exc.message, **exc.params)
        refused.pointer = exc.pointer
        raise refused from None
    # Flow versions saved before "derived" existed take change_pct as data: it must be
    # the server's own figure, or it would route the appeal (e.g. around a countersign).
    pct = data.get("change_pct")
    if pct is not None and not (isinstance(pct, int | float) and not isinstance(pct, bool)
                                and abs(pct - change_pct(appeal.allocated, amount)) < 0.01):
        refused = flows.FlowRefused("field_not_editable", "change_pct is the server's",
                                    field="change_pct")
        refused.pointer = "/changes/change_pct"
        raise refused
    if amount != appeal.requested:
        audit.record(session, None, "appeal_requested_changed", "appeal", str(appeal.id),
                     before={"requested": int(appeal.requested)},
                     after={"requested": amount, "flow_instance": instance.id})
        appeal.requested = amount
        session.flush()


def apply_adjustment(session: Session, instance: Any) -> None:
    """Flow action "apply_adjustment": make the plan version the approved appeal asks for,
    after checking the flow's requested target against the policy again (an instance
    stored before that check, or changed behind the flow's back, is refused, and with it
    the approval that reached this node)."""
    appeal = _appeal_for(session, instance)
    if appeal is None or appeal.result_plan_id is not None:
        return
    from quotaflow.services import flows

    data = dict(instance.data or {})
    try:
        value = _server_amount(session, appeal, data, POINTERS["requested"])
        _approve(session, appeal, value, _decider(session, instance))
    except ConfirmationError as exc:
        # The approval is refused as a whole (the flow rolls back), with the reason.
        refused = flows.FlowRefused("adjustment_failed", exc.message, appeal=appeal.id)
        refused.pointer = exc.pointer
        raise refused from None


def on_appeal_end(session: Session, instance: Any) -> None:
    """Flow end: approved (applied if no action node did), or rejected / withdrawn."""
    appeal = _appeal_for(session, instance)
    if appeal is None:
        return
    actor = _decider(session, instance)
    if instance.status == "approved":
        apply_adjustment(session, instance)
        return
    appeal.status = "rejected" if instance.status == "rejected" else "withdrawn"
    appeal.decided_at = utcnow()
    item = appeal.item
    if item.status == "appealed":
        item.status = "pending"
    word_en, word_zh = (("rejected", "驳回") if appeal.status == "rejected"
                        else ("withdrawn", "撤回"))
    item.note_en = (f"Appeal for {_yuan(appeal.requested)} yuan {word_en}; the target stays "
                    f"{_yuan(item.target)} yuan.")
    item.note_zh = f"申请 {_yuan(appeal.requested)} 元的申诉已{word_zh}；目标仍为 {_yuan(item.target)} 元。"
    appeal.decision_note = item.note_en
    session.flush()
    audit.record(session, actor, f"appeal_{appeal.status}", "appeal", str(appeal.id),
                 before={"status": "open"}, after={"status": appeal.status,
                                                   "unit": item.unit.code})
    _emit(session, "confirmation.opened", {
        "title_en": f"Your appeal was {word_en}: confirm the target of {item.unit.name_en}",
        "title_zh": f"申诉已{word_zh}：请确认{item.unit.name_zh}的目标",
        "body_en": item.note_en, "body_zh": item.note_zh,
        "url": f"/confirm?period={item.group.period.code}",
        "item_id": item.id, "appeal_id": appeal.id, "unit": item.unit.code,
        "target": int(item.target)},
        to_users=acting_heads(session, item.unit), unit_id=item.unit_id)


def _approve(session: Session, appeal: Appeal, value: int, actor: User | None) -> Plan:
    item = appeal.item
    group = item.group
    cq.lock_period(session, appeal.period_id)
    plan = cq.published_plan(session, appeal.period_id)
    if plan is None:
        raise ConfirmationError("not_published", number="?", period=str(appeal.period_id))
    rule = level_policy(session.get(SpecVersion, group.policy_version_id), group.level)
    locks = adjustment_locks(session, plan, item, value, str(rule["absorb"]))
    # The plan's note is free text in one language and readable by anyone who can read
    # the plan: it names no unit. Pages say it in the reader's language, with the unit
    # and amounts for those who may read the unit, from the structured "version_note".
    note = f"New version after appeal #{appeal.id} was approved."
    version_note = {"kind": "appeal", "appeal_id": appeal.id, "unit": item.unit.code,
                    "old": int(item.target), "new": int(value)}
    try:
        new_plan = plan_service.reallocate(session, plan, locks, actor, note,
                                           extra_summary={"version_note": version_note})
    except PlanError as exc:
        raise ConfirmationError("adjustment_failed", unit=item.unit.code,
                                detail=exc.message) from None
    old_target = int(item.target)
    appeal.approved = value
    appeal.result_plan_id = new_plan.id
    appeal.status = "approved"
    appeal.decided_at = utcnow()
    appeal.decision_note = (f"Approved: {item.unit.code} from {_yuan(item.target)} to "
                            f"{_yuan(value)} yuan in plan {new_plan.number}.")
    new_value = cq.plan_targets(session, new_plan.id, [item.unit_id]).get(item.unit_id, value)
    item.target = new_value
    item.plan_id = new_plan.id
    item.status = "accepted"
    item.decided_by_id = appeal.submitted_by_id
    item.decided_at = utcnow()
    item.note_en = f"Appeal approved: changed from {_yuan(old_target)} to {_yuan(new_value)} yuan."
    item.note_zh = f"申诉已通过：由 {_yuan(old_target)} 元调整为 {_yuan(new_value)} 元。"
    session.flush()
    audit.record(session, actor, "appeal_approved", "appeal", str(appeal.id),
                 before={"status": "open", "target": old_target},
                 after={"status": "approved", "approved": value, "plan_id": new_plan.id,
                        "plan_number": new_plan.number, "unit": item.unit.code})
    _notify_change(session, item, old_target, new_value, plan, new_plan)
    _sync_items(session, plan, new_plan, actor, skip={item.id})
    _settle_if_done(session, group, actor)
    return new_plan


def adjustment_locks(session: Session, plan: Plan, item: ConfirmationItem, value: int,
                     absorb: str) -> dict[int, int]:
    """Unit id -> locked yuan for re-running ``plan`` with ``item``'s unit at ``value``.

    "siblings": everything keeps its target except the appealed group's members that have
    not accepted (and everything below them and below the appealed unit); if every
    sibling has accepted, they all absorb (and go back to pending). "reserve": everything
    keeps its target except the appealed unit's ancestors (they take the difference, up to
    the company's planned total) and everything below the appealed unit.
    """
    rows = cq.plan_tree(session, plan.id)
    unit = item.unit
    free_roots: list[str] = [unit.path]
    free_ids: set[int] = set()
    if absorb == "reserve":
        free_ids.update(_path_ids(unit)[:-1])
    else:
        siblings = [i for i in item.group.items if i.id != item.id]
        open_ones = [i for i in siblings if i.status != "accepted"]
        for sib in open_ones or siblings:
            free_roots.append(sib.unit.path)
    locks: dict[int, int] = {}
    for unit_id, parent_id, path, target in rows:
        if parent_id is None or unit_id in free_ids:
            continue
        if any(path.startswith(root) for root in free_roots):
            continue
        locks[unit_id] = int(target)
    locks[unit.id] = int(value)
    return locks


def _notify_change(session: Session, item: ConfirmationItem, old: int, new: int, old_plan: Plan,
                   new_plan: Plan, heads: Sequence[int] | None = None) -> None:
    url = f"/plans/{new_plan.id}/diff?against={old_plan.id}"
    _emit(session, "plan.version_created", {
        "title_en": f"The {new_plan.period.code} target of {item.unit.name_en} changed",
        "title_zh": f"{item.unit.name_zh}的 {new_plan.period.code} 目标已调整",
        "body_en": f"Plan {new_plan.number}: from {_yuan(old)} to {_yuan(new)} yuan "
                   f"({new - old:+,} yuan).",
        "body_zh": f"第 {new_plan.number} 版计划：由 {_yuan(old)} 元调整为 {_yuan(new)} 元"
                   f"（{new - old:+,} 元）。",
        "url": url, "plan_id": new_plan.id, "based_on_id": old_plan.id,
        "unit": item.unit.code, "old_target": old, "new_target": new},
        to_users=acting_heads(session, item.unit) if heads is None else heads,
        unit_id=item.unit_id)


def _sync_items(session: Session, old_plan: Plan, new_plan: Plan, actor: User | None,
                skip: set[int] | None = None) -> list[ConfirmationItem]:
    """Point the period's items at ``new_plan``; changed ones go back to pending (a note
    says from what to what) and their heads are told. Returns the changed items."""
    items = [i for i in cq.period_items(session, new_plan.period_id)
             if i.id not in (skip or set())]
    targets = cq.plan_targets(session, new_plan.id, [i.unit_id for i in items])
    changed = []
    reopened: set[int] = set()
    moved = [i for i in items if targets.get(i.unit_id) not in (None, i.target)]
    heads = acting_heads_map(session, [i.unit for i in moved])  # one query for them all
    for item in items:
        new = targets.get(item.unit_id)
        item.plan_id = new_plan.id
        if new is None or new == item.target:
            continue
        old = int(item.target)
        item.target = new
        item.note_en = f"Changed from {_yuan(old)} to {_yuan(new)} yuan in plan {new_plan.number}."
        item.note_zh = f"第 {new_plan.number} 版计划中由 {_yuan(old)} 元调整为 {_yuan(new)} 元。"
        if item.status == "accepted":
            item.status = "pending"
            item.decided_at = None
            item.decided_by_id = None
            if item.group.status == "settled":
                item.group.status = "open"
                item.group.settled_at = None
                reopened.add(item.group_id)
        changed.append(item)
        _notify_change(session, item, old, new, old_plan, new_plan, heads[item.unit_id])
    from quotaflow.services import letters

    # Cards already issued for a person whose target moved must be signed again.
    letters.supersede_for_plan(session, new_plan, actor)
    if changed:
        audit.record(session, actor, "retarget_confirmation", "plan", str(new_plan.id),
                     after={"changed": {i.unit.code: int(i.target) for i in changed},
                            "reopened_groups": sorted(reopened)})
    session.flush()
    return changed


def sync_items(session: Session, old_plan: Plan, new_plan: Plan, actor: User | None
               ) -> list[ConfirmationItem]:
    """After a new published version replaced ``old_plan`` (e.g. an emergency recompute):
    items follow ``new_plan``; changed ones go back to pending and their heads are told;
    people's cards whose target moved are superseded by new ones to sign (no commit)."""
    return _sync_items(session, old_plan, new_plan, actor)


# -- reading -------------------------------------------------------------------------------

@dataclass(frozen=True)
class MyItem:
    item: ConfirmationItem
    period_code: str
    open_appeal: Appeal | None


def my_items(ctx: Context, user: User) -> list[MyItem]:
    """Items waiting for ``user``'s answer (or with an open appeal of theirs)."""
    session = ctx.session
    headed = cq.headed_units(session, user.id, CONFIRM_ROLES)
    if not headed:
        return []
    units = plan_queries.units_by_ids(session, headed)
    paths = [u.path for u in units.values()]
    candidates = cq.open_items_in(session, paths, OPEN_ITEM_STATUSES)
    heads = acting_heads_map(session, [i.unit for i in candidates])
    mine = [i for i in candidates if user.id in heads[i.unit_id]]
    appeals = {a.item_id: a for a in cq.open_appeals(session, [i.id for i in mine])}
    return [MyItem(i, i.group.period.code, appeals.get(i.id)) for i in mine]
