"""Issue 11, finding 1: the appeal range bypass, replayed through the real app.

The attack: head.east appealed EAST within the policy's range; HRBP returned it to the
initiator; head.east resubmitted with ``{"requested": 2 x allocated, "change_pct": 1}``,
which re-routed the flow from the HRBP+CFO countersign to "any one" and, once HRBP
approved, published a plan with EAST at twice its allocation. The policy is now enforced
where the change is applied, on server-side values: every submit, resubmit, edit and
apply re-checks the range against the allocation stored with the appeal; ``change_pct``
is derived by the server (the flow spec's ``derived``) and refused from the client.
"""

from __future__ import annotations

from typing import Any

import pytest
from confirm_support import draft_plan, evidence, fresh_period, user
from sqlalchemy import func, select

from quotaflow.services import confirmation as conf
from quotaflow.services import spec_kinds, specs
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.flow_models import FlowInstance
from quotaflow.store.models import Plan

API = "/api/v1"
REASON = "Two key accounts left the region."


@pytest.fixture
def east(app, tmp_path) -> dict[str, Any]:
    """A published plan of a period of its own and EAST's bounds, evidence and item."""
    with app.app_context():
        session = db.session
        period = fresh_period(session)
        plan = draft_plan(session, period)
        conf.publish(session, plan, user(session, "hrbp"))
        item = cq.item_for_unit(session, period.id, q.unit_by_code(session, "EAST").id)
        bounds = conf.appeal_bounds(session, item)
        upload = evidence(session, item.unit, tmp_path)
        session.commit()
        return {"period_id": period.id, "item_id": item.id, "bounds": bounds,
                "upload": upload}


def _step_round(bounds: conf.AppealBounds, value: float) -> int:
    return int(value) // bounds.step * bounds.step


def _appeal(app, east: dict[str, Any], requested: int) -> tuple[int, int]:
    """head.east appeals EAST for ``requested``: (appeal id, flow instance id)."""
    with app.app_context():
        session = db.session
        appeal = conf.submit_appeal(session, east["item_id"], user(session, "head.east"),
                                    requested=requested, reason=REASON,
                                    evidence=[east["upload"]])
        return appeal.id, appeal.flow_instance_id


def _snapshot(app, east: dict[str, Any], appeal_id: int, flow_id: int) -> dict[str, Any]:
    with app.app_context():
        session = db.session
        instance = session.get(FlowInstance, flow_id)
        appeal = cq.appeal(session, appeal_id)
        plan = cq.published_plan(session, east["period_id"])
        return {"status": instance.status, "revision": instance.revision,
                "data": dict(instance.state["data"]),
                "current": list(instance.state["current"]),
                "appeal": (appeal.status, int(appeal.requested)), "plan": plan.id,
                "plans": session.scalar(select(func.count()).select_from(Plan).where(
                    Plan.period_id == east["period_id"]))}


def _error(response) -> dict[str, Any]:
    return response.get_json()["error"]


def _countersign_returned(app, east, as_user) -> tuple[int, int, int]:
    """An appeal of +7.75%ish (HRBP and CFO countersign) returned to head.east."""
    bounds = east["bounds"]
    big = _step_round(bounds, bounds.allocated * 1.0775)
    assert bounds.allocated < big <= bounds.maximum
    appeal_id, flow_id = _appeal(app, east, big)
    before = _snapshot(app, east, appeal_id, flow_id)
    assert before["current"] == ["countersign"]
    returned = as_user("hrbp").post(f"{API}/flows/{flow_id}/actions",
                                    json={"action": "return", "target": "initiator"})
    assert returned.status_code == 200, returned.get_json()
    return appeal_id, flow_id, big


def test_a_resubmission_out_of_range_through_the_api_is_refused(app, east, as_user) -> None:
    """(a) The exact attack: return to the initiator, resubmit with twice the allocation
    and change_pct 1. Refused; the flow, the appeal and the plan are as they were."""
    appeal_id, flow_id, big = _countersign_returned(app, east, as_user)
    before = _snapshot(app, east, appeal_id, flow_id)
    assert before["status"] == "draft"
    head = as_user("head.east")
    attack = head.post(f"{API}/flows/{flow_id}/actions", json={
        "action": "submit",
        "changes": {"requested": 2 * east["bounds"].allocated, "change_pct": 1}})
    assert attack.status_code == 422
    # change_pct is the server's: naming it is refused before the range is even looked at
    assert (_error(attack)["code"], _error(attack)["details"]["pointer"]) == (
        "field_not_editable", "/changes/change_pct")
    # without change_pct, the range of the server's allocation refuses it
    attack = head.post(f"{API}/flows/{flow_id}/actions", json={
        "action": "submit", "changes": {"requested": 2 * east["bounds"].allocated}})
    assert attack.status_code == 422
    assert (_error(attack)["code"], _error(attack)["details"]["pointer"]) == (
        "out_of_range", "/changes/requested")
    # nor can the allocation the range is taken from be moved, nor unknown fields be set
    for changes, field in (({"allocated": 2 * east["bounds"].allocated, "requested": big},
                            "allocated"), ({"approved": True}, "approved")):
        refused = head.post(f"{API}/flows/{flow_id}/actions",
                            json={"action": "submit", "changes": changes})
        assert refused.status_code == 422
        assert (_error(refused)["code"], _error(refused)["details"]["pointer"]) == (
            "field_not_editable", f"/changes/{field}")
    assert _snapshot(app, east, appeal_id, flow_id) == before


def test_a_resubmission_out_of_range_through_the_draft_form_is_refused(app, east,
                                                                       as_user) -> None:
    """(b) The same through the web draft form (/tasks/{id}/act): refused, nothing moves;
    the form offers no change_pct (derived), and a forged one is not taken."""
    appeal_id, flow_id, _big = _countersign_returned(app, east, as_user)
    before = _snapshot(app, east, appeal_id, flow_id)
    head = as_user("head.east")
    page = head.get(f"/tasks/{flow_id}").get_data(as_text=True)
    assert 'name="field:requested"' in page and 'name="field:change_pct"' not in page
    attack = head.post(f"/tasks/{flow_id}/act", data={
        "action": "submit", "field:requested": str(2 * east["bounds"].allocated),
        "field:change_pct": "1", "field:reason": REASON,
        "field:allocated": str(east["bounds"].allocated)})
    assert attack.status_code == 422
    assert 'out_of_range' in attack.get_data(as_text=True)
    assert _snapshot(app, east, appeal_id, flow_id) == before


def test_an_approvers_edit_is_checked_and_the_appeal_follows_it(app, east, as_user) -> None:
    """(c) An approver's edit out of range is refused, change_pct cannot be edited; an
    edit within range recomputes change_pct and the appeal shows the edited amount."""
    bounds = east["bounds"]
    big = _step_round(bounds, bounds.allocated * 1.0775)
    appeal_id, flow_id = _appeal(app, east, big)
    before = _snapshot(app, east, appeal_id, flow_id)
    hrbp = as_user("hrbp")
    for changes, code, field in (
            ({"requested": 2 * bounds.allocated}, "out_of_range", "requested"),
            ({"requested": bounds.minimum - bounds.step}, "out_of_range", "requested"),
            ({"change_pct": 1}, "field_not_editable", "change_pct"),
            ({"allocated": 2 * bounds.allocated}, "field_not_editable", "allocated")):
        refused = hrbp.post(f"{API}/flows/{flow_id}/actions",
                            json={"action": "edit", "changes": changes})
        assert refused.status_code == 422, changes
        assert (_error(refused)["code"], _error(refused)["details"]["pointer"]) == (
            code, f"/changes/{field}")
    assert _snapshot(app, east, appeal_id, flow_id) == before
    # the same through the task page's edit form
    page = hrbp.post(f"/tasks/{flow_id}/act", data={
        "action": "edit", "field:requested": str(2 * bounds.allocated)})
    assert page.status_code == 422
    assert _snapshot(app, east, appeal_id, flow_id) == before
    smaller = _step_round(bounds, bounds.allocated * 1.06)
    done = hrbp.post(f"{API}/flows/{flow_id}/actions",
                     json={"action": "edit", "changes": {"requested": smaller}})
    assert done.status_code == 200, done.get_json()
    after = _snapshot(app, east, appeal_id, flow_id)
    assert after["data"]["requested"] == smaller
    assert after["data"]["change_pct"] == round(
        (smaller - bounds.allocated) / bounds.allocated * 100, 2)
    assert after["appeal"] == ("open", smaller)  # one value: the page shows the flow's
    shown = as_user("head.east").get(f"/confirm/appeals/{appeal_id}").get_data(as_text=True)
    assert f"{smaller:,}" in shown


def test_a_resubmission_within_range_is_routed_by_the_servers_change_pct(app, east,
                                                                         as_user) -> None:
    """(d) A small appeal (any one approves) returned and resubmitted at +7.75%: the
    server computes change_pct and the flow goes to the HRBP and CFO countersign."""
    bounds = east["bounds"]
    small = _step_round(bounds, bounds.allocated * 0.97)
    appeal_id, flow_id = _appeal(app, east, small)
    assert _snapshot(app, east, appeal_id, flow_id)["current"] == ["any_one"]
    assert as_user("hrbp").post(f"{API}/flows/{flow_id}/actions", json={
        "action": "return", "target": "initiator"}).status_code == 200
    big = _step_round(bounds, bounds.allocated * 1.0775)
    head = as_user("head.east")
    sent = head.post(f"{API}/flows/{flow_id}/actions",
                     json={"action": "submit", "changes": {"requested": big}})
    assert sent.status_code == 200, sent.get_json()
    after = _snapshot(app, east, appeal_id, flow_id)
    pct = round((big - bounds.allocated) / bounds.allocated * 100, 2)
    assert pct > 5 and after["data"]["change_pct"] == pct
    assert after["current"] == ["countersign"] and after["status"] == "running"
    assert after["appeal"] == ("open", big)
    with app.app_context():
        instance = db.session.get(FlowInstance, flow_id)
        pending = sorted(t["assignee"] for t in instance.state["tasks"]
                         if t["status"] == "pending" and t["node"] == "countersign"
                         and t["visit"] == instance.state["visit"])
    assert pending == ["cfo", "hrbp"]
    # HRBP alone does not decide it any more
    assert as_user("hrbp").post(f"{API}/flows/{flow_id}/actions",
                                json={"action": "approve"}).status_code == 200
    assert _snapshot(app, east, appeal_id, flow_id)["status"] == "running"


def test_apply_refuses_a_tampered_stored_instance_and_rolls_back(app, east, as_user) -> None:
    """(e) An instance whose stored data asks for more than the range (stored before the
    fix, or changed behind the flow's back) is not applied: the approval that reaches
    apply_adjustment is refused as a whole."""
    bounds = east["bounds"]
    small = _step_round(bounds, bounds.allocated * 0.97)
    appeal_id, flow_id = _appeal(app, east, small)
    with app.app_context():
        instance = db.session.get(FlowInstance, flow_id)
        state = dict(instance.state)
        state["data"] = {**state["data"], "requested": 2 * bounds.allocated, "change_pct": 1}
        instance.state = state
        db.session.commit()
    before = _snapshot(app, east, appeal_id, flow_id)
    approve = as_user("hrbp").post(f"{API}/flows/{flow_id}/actions",
                                   json={"action": "approve"})
    assert approve.status_code == 422
    assert (_error(approve)["code"], _error(approve)["details"]["pointer"]) == (
        "adjustment_failed", "/requested")
    assert _snapshot(app, east, appeal_id, flow_id) == before
    with app.app_context():
        instance = db.session.get(FlowInstance, flow_id)
        assert any(t["assignee"] == "hrbp" and t["status"] == "pending"
                   for t in instance.state["tasks"])


def test_a_flow_version_from_before_derived_fields_still_routes_on_the_servers_figure(
        app, east, as_user) -> None:
    """An appeal flow version saved before 'derived' existed (the demo's database) takes
    change_pct as data: a figure other than the server's is refused, so it cannot route
    an appeal of +7.75% around the countersign."""
    with app.app_context():
        session = db.session
        content = dict(specs.active_version(session, spec_kinds.FLOW, "appeal").content)
        content.pop("derived")
        specs.activate(session, specs.create_version(session, spec_kinds.FLOW, "appeal",
                                                     content, None, "before the fix"), None)
        session.commit()
    appeal_id, flow_id, big = _countersign_returned(app, east, as_user)
    before = _snapshot(app, east, appeal_id, flow_id)
    head = as_user("head.east")
    attack = head.post(f"{API}/flows/{flow_id}/actions", json={
        "action": "submit", "changes": {"requested": big, "change_pct": 1}})
    assert attack.status_code == 422
    assert (_error(attack)["code"], _error(attack)["details"]["pointer"]) == (
        "field_not_editable", "/changes/change_pct")
    assert _snapshot(app, east, appeal_id, flow_id) == before
    pct = round((big - east["bounds"].allocated) / east["bounds"].allocated * 100, 2)
    sent = head.post(f"{API}/flows/{flow_id}/actions", json={
        "action": "submit", "changes": {"requested": big, "change_pct": pct}})
    assert sent.status_code == 200, sent.get_json()
    assert _snapshot(app, east, appeal_id, flow_id)["current"] == ["countersign"]
