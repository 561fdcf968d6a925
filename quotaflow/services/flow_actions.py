"""Two general flow actions (declared, like every flow handler, in
``quotaflow/services/registry.py``):

- ``publish``: publishes the draft plan named by the flow's ``plan_id`` field, opening its
  confirmation (a publication that needs, say, the CFO's approval first);
- ``sync_hr``: sends the flow's data to the HR system as an "hr.sync" event through the
  outbox (the seeded routes send it to the HR webhook).

Both run inside the step's transaction: a refusal rolls the whole step back.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from quotaflow.services import confirmation, flows, outbox
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import OrgUnit, Plan

PUBLISH, SYNC_HR = "publish", "sync_hr"
HR_TOPIC = "hr.sync"


def _plan_id(instance: FlowInstance) -> int:
    value = instance.data.get("plan_id")
    whole = isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)
    if not whole:
        raise flows.FlowRefused("publish_failed", f"the flow's field plan_id must name a plan "
                                f"by its id (a whole number), not {value!r}", field="plan_id")
    return int(value)


def publish(session: Session, instance: FlowInstance) -> None:
    """Publish the draft plan ``plan_id`` as the approver who completed the flow."""
    plan = session.get(Plan, _plan_id(instance))
    if plan is None:
        raise flows.FlowRefused("publish_failed", f"there is no plan {_plan_id(instance)}",
                                field="plan_id")
    try:
        confirmation.publish(session, plan, flows.decider(session, instance))
    except confirmation.ConfirmationError as exc:
        raise flows.FlowRefused("publish_failed", exc.message, field="plan_id") from None


def sync_hr(session: Session, instance: FlowInstance) -> None:
    """Hand the flow's data to HR, once per instance (the event key is the instance's)."""
    unit = session.get(OrgUnit, instance.unit_id) if instance.unit_id else None
    code = unit.code if unit is not None else None
    payload: dict[str, Any] = {
        "title_en": f"Request #{instance.id} ({instance.flow_key}) sent to HR",
        "title_zh": f"申请 #{instance.id}（{instance.flow_key}）已同步至人力资源系统",
        "body_en": f"Unit {code}." if code else "",
        "body_zh": f"单元 {code}。" if code else "",
        "url": f"/tasks/{instance.id}", "flow": instance.flow_key, "instance_id": instance.id,
        "unit": code, "data": dict(instance.data),
    }
    outbox.emit(session, HR_TOPIC, payload, unit_id=instance.unit_id,
                key=f"{HR_TOPIC}:{instance.id}")

