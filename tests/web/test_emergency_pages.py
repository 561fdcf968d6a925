"""Emergency recompute pages: the form (cities from the units), the htmx preview, submit,
the request page through the fast-track approval to the new plan and its diff; who may."""

from __future__ import annotations

import pytest
from confirm_support import TOTAL, draft_plan, fresh_period, user

from quotaflow.flows.interpreter import Action
from quotaflow.services import confirmation as conf
from quotaflow.services import flows
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store.emergency_models import EmergencyRecompute
from quotaflow.store.models import Plan

REASON = "Local policy change froze the Shanghai and Jinan targets."


@pytest.fixture
def setup(app):
    # Requests must not run inside this app context (they would share its ``g``).
    with app.app_context():
        period = fresh_period(db.session)
        plan = draft_plan(db.session, period)
        conf.publish(db.session, plan, user(db.session, "hrbp"))
        return period.id, period.code, plan.id


def _form(code: str, **extra) -> dict:
    return {"period": code, "city": ["Shanghai", "Jinan"], "units": "", "total": "",
            "reason": REASON, **extra}


def test_the_form_lists_cities_and_the_plan_page_links_to_it(setup, as_user) -> None:
    _, code, plan_id = setup
    hrbp = as_user("hrbp")
    page = hrbp.get(f"/emergency?period={code}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'value="Shanghai"' in html and 'value="Jinan"' in html
    assert 'data-testid="requests"' not in html  # none yet
    plan_page = hrbp.get(f"/plans/{plan_id}").get_data(as_text=True)
    assert 'data-testid="emergency-link"' in plan_page
    head = as_user("head.east").get(f"/plans/{plan_id}").get_data(as_text=True)
    assert 'data-testid="emergency-link"' not in head


def test_region_heads_and_people_are_refused(setup, as_user) -> None:
    _, code, _ = setup
    for name in ("head.east", "lead.east.t1", "sales.p0001"):
        client = as_user(name)
        assert client.get(f"/emergency?period={code}").status_code == 403
        assert client.post("/emergency/preview", data=_form(code)).status_code == 403
        assert client.post("/emergency", data=_form(code)).status_code == 403


def test_htmx_preview_shows_the_diff_summary_and_writes_nothing(app, setup, as_user) -> None:
    period_id, code, plan_id = setup
    cfo = as_user("cfo")
    response = cfo.post("/emergency/preview", data=_form(code, total=f"{TOTAL + 2_000_000:,}"),
                        headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'data-testid="emergency-preview"' in html
    assert 'data-testid="region-changes"' in html and 'data-testid="frozen-EAST-T1"' in html
    assert 'data-testid="frozen-NORTH-T4"' in html and 'class="up"' in html  # sums check
    assert f"{TOTAL + 2_000_000:,}" in html
    bad = cfo.post("/emergency/preview", data=_form(code, city=["Atlantis"]),
                   headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-testid="preview-error"' in bad and "Atlantis" in bad
    full = cfo.post("/emergency/preview", data=_form(code)).get_data(as_text=True)
    assert "<html" in full and 'data-testid="frozen-count"' in full
    with app.app_context():
        assert db.session.query(EmergencyRecompute).filter_by(period_id=period_id).count() == 0
        assert cq.published_plan(db.session, period_id).id == plan_id


def test_submit_approve_and_follow_to_the_new_plan(app, setup, as_user) -> None:
    period_id, code, plan_id = setup
    hrbp = as_user("hrbp")
    refused = hrbp.post("/emergency", data=_form(code, reason=""))
    assert refused.status_code == 422
    assert 'data-testid="emergency-error"' in refused.get_data(as_text=True)
    response = hrbp.post("/emergency", data=_form(code, units="P0174"))
    assert response.status_code == 302
    with app.app_context():
        req = db.session.query(EmergencyRecompute).filter_by(period_id=period_id).one()
        req_id, instance_id = req.id, req.flow_instance_id
        assert req.unit_codes == ["P0174"]
    page = hrbp.get(f"/emergency/{req_id}").get_data(as_text=True)
    assert 'data-testid="flow-link"' in page and 'data-testid="new-plan-link"' not in page
    listing = hrbp.get(f"/emergency?period={code}").get_data(as_text=True)
    assert f"/emergency/{req_id}" in listing
    # The CFO approves from the task page of the flow.
    assert as_user("cfo").get(f"/tasks/{instance_id}").status_code == 200
    with app.app_context():
        flows.act(db.session, instance_id, user(db.session, "cfo"), Action("approve"))
        db.session.commit()
        req = db.session.get(EmergencyRecompute, req_id)
        new_id = req.result_plan_id
        assert req.status == "published" and new_id
        assert db.session.get(Plan, new_id).status == "published"
    page = as_user("ceo").get(f"/emergency/{req_id}").get_data(as_text=True)
    assert 'data-testid="new-plan-link"' in page
    assert f"/plans/{new_id}/diff?against={plan_id}" in page
    diff = hrbp.get(f"/plans/{new_id}/diff?against={plan_id}")
    assert diff.status_code == 200
    assert as_user("head.east").get(f"/emergency/{req_id}").status_code == 403


def test_the_alert_remedy_links_to_the_request_form(app, setup, as_user) -> None:
    from sqlalchemy import select

    from quotaflow.services import alert_scan
    from quotaflow.store import queries as q
    from quotaflow.store.tracking_models import Alert

    with app.app_context():
        period = q.period_by_code(db.session, "2026Q4")
        alert_scan.scan(db.session, period, 6, trigger="test")  # idempotent
        found = [a for a in db.session.scalars(select(Alert).where(
            Alert.period_id == period.id, Alert.week == 6))
            if any(r["key"] == "emergency_recompute" for r in a.remedies or [])]
        assert found, "the demo's week 6 has an alert suggesting an emergency recompute"
        alert_id, message = found[0].id, found[0].message_en
    page = as_user("admin").get("/alerts/?period=2026Q4&status=all").get_data(as_text=True)
    assert f"/emergency?period=2026Q4&amp;alert={alert_id}" in page
    head = as_user("head.north").get("/alerts/?period=2026Q4&status=all").get_data(as_text=True)
    assert 'data-testid="emergency-remedy"' not in head
    _, code, _ = setup  # a period with a published plan shows the form
    form = as_user("admin").get(f"/emergency?period={code}&alert={alert_id}")
    assert form.status_code == 200
    from markupsafe import escape

    assert str(escape(message)) in form.get_data(as_text=True)  # the reason starts from it


def test_the_preview_names_why_bounds_could_not_hold_in_words(app) -> None:
    """An infeasibility is said as on the plan page, not by its code."""
    from flask import render_template

    summary = {"frozen_kept": True, "sums_exact": True, "total_placed": False,
               "planned_total": 1, "requested_total": 2, "plan_number": 1,
               "company_total": 2, "old_planned_total": 2, "changed": 0,
               "changed_people": 0, "frozen_count": 0, "regions": [], "frozen": [],
               "infeasible": [{"unit": "HQ", "kind": "total_short", "shortfall": 1}]}
    with app.test_request_context("/emergency"):
        html = render_template("emergency/_preview.html", s=summary, error=None)
    assert "total_short" not in html and "HQ: " in html
