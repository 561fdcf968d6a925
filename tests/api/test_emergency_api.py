"""Emergency recomputes through the API: who may preview and request, the refusals, and
the approval as a flow action by an executive, which publishes the new plan version."""

from __future__ import annotations

import pytest
from confirm_support import draft_plan, fresh_period, user
from support import sign_in

from quotaflow.services import confirmation as conf
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q

API = "/api/v1"
REASON = "Local policy change froze the Jinan targets."


def api(app, username: str):
    return sign_in(app.test_client(), username)


@pytest.fixture
def period(app) -> str:
    with app.app_context():
        found = fresh_period(db.session)
        conf.publish(db.session, draft_plan(db.session, found), user(db.session, "hrbp"))
        return found.code


@pytest.mark.parametrize(("username", "status"), [
    ("admin", 200), ("hrbp", 200), ("ceo", 200), ("head.east", 403), ("lead.east.t1", 403),
    ("sales.p0001", 403)])
def test_who_may_preview(app, period, username, status) -> None:
    client = api(app, username)
    preview = client.post(f"{API}/emergency/preview",
                          json={"period": period, "cities": ["Jinan"]})
    assert preview.status_code == status
    assert client.get(f"{API}/emergency", query_string={"period": period}).status_code == status
    if status == 200:
        body = preview.get_json()
        assert body["frozen_kept"] and body["sums_exact"] and body["frozen_count"] > 0
        assert client.post(f"{API}/emergency", json={
            "period": period, "cities": ["Jinan"], "reason": "x"}).status_code == 422
    else:
        assert client.post(f"{API}/emergency", json={
            "period": period, "cities": ["Jinan"], "reason": REASON}).status_code == 403


def test_request_refusals_and_approval_as_a_flow_action(app, period) -> None:
    hrbp = api(app, "hrbp")
    refusals = [({"cities": ["Atlantis"], "reason": REASON}, "unknown_city", "/cities"),
                ({"cities": [], "reason": REASON}, "nothing_frozen", "/cities"),
                ({"cities": ["Jinan"], "reason": "abc"}, "reason_short", "/reason"),
                ({"cities": ["Jinan"], "reason": REASON, "total": "-5"}, "bad_total",
                 "/total")]
    for body, code, pointer in refusals:
        refused = hrbp.post(f"{API}/emergency", json={"period": period, **body})
        assert refused.status_code == 422, body
        error = refused.get_json()["error"]
        assert (error["code"], error["details"]["pointer"]) == (code, pointer)
    assert hrbp.post(f"{API}/emergency", json={"period": "1066Q4", "cities": ["Jinan"],
                                               "reason": REASON}).status_code == 404

    made = hrbp.post(f"{API}/emergency", json={"period": period, "cities": ["Jinan"],
                                               "reason": REASON})
    assert made.status_code == 201
    request = made.get_json()
    assert request["status"] == "pending" and request["flow_instance_id"]
    again = hrbp.post(f"{API}/emergency", json={"period": period, "cities": ["Jinan"],
                                                "reason": REASON})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "pending"
    assert api(app, "head.east").get(f"{API}/emergency/{request['id']}").status_code == 403

    # Approving is the flow's step: the requester cannot, an executive does.
    flow = f"{API}/flows/{request['flow_instance_id']}/actions"
    ceo = api(app, "ceo")
    task = ceo.get(f"{API}/flows/{request['flow_instance_id']}")
    assert task.status_code == 200
    approved = ceo.post(flow, json={"action": "approve", "comment": "Go ahead."})
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    done = ceo.get(f"{API}/emergency/{request['id']}").get_json()
    assert done["status"] == "published" and done["result_plan_id"]
    with app.app_context():
        published = cq.published_plan(db.session, q.period_by_code(db.session, period).id)
        assert published.id == done["result_plan_id"]
