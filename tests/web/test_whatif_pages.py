"""What-if pages: the sandbox, the htmx partial, scope, evidence, and that nothing is saved."""

from __future__ import annotations

import re

import pytest
from plan_support import OWN_PERIOD, own_period, readable_by_all
from sqlalchemy import func, select

from quotaflow.services import plans
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, AuditEntry, Plan, PlanUnit, Upload

TOTAL = 249_500_000
HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def plan_id(app) -> int:
    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, q.user_by_username(db.session, "admin"), period,
                                 "balanced", TOTAL, "what-if pages")
        return readable_by_all(db.session, plan.id)  # region heads do not see drafts


def _diff(html: str, code: str) -> str:
    found = re.search(rf'data-testid="diff-{re.escape(code)}">([^<]*)<', html)
    assert found, f"no row for {code}"
    return found.group(1).strip()


def _counts(app) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(t))
                     for t in (Plan, PlanUnit, AttributeValue, Upload, AuditEntry))


def test_a_region_head_goes_to_their_region(as_user, plan_id) -> None:
    response = as_user("head.east").get(f"/whatif?period={OWN_PERIOD}")
    assert response.status_code == 302
    assert f"/whatif/EAST?period={OWN_PERIOD}" in response.location


def test_the_sandbox_page_shows_inputs_weights_and_targets(as_user, plan_id) -> None:
    response = as_user("head.east").get(f"/whatif/EAST?plan={plan_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(rf'data-testid="whatif-title">[^<]*· {OWN_PERIOD}<', html)  # the plan's
    assert 'data-testid="whatif-scope"' in html
    assert 'hx-post="/whatif/EAST/results"' in html
    assert 'name="w:historical_performance"' in html and 'min="20" max="40"' in html
    assert 'name="in:EAST-T1:market_potential"' in html
    assert 'name="in:EAST-T1:hist_sales"' not in html  # not in the policy: a fact
    assert 'data-testid="whatif-EAST-T1"' in html and _diff(html, "EAST-T1") == "0"
    assert "NORTH-T1" not in html


def test_the_partial_recomputes_the_teams(as_user, plan_id) -> None:
    client = as_user("head.north")
    response = client.post("/whatif/NORTH/results", headers=HTMX,
                           data={"plan": plan_id, "w:historical_performance": "40"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<section id="whatif-results"')
    diffs = [_diff(html, f"NORTH-T{k}") for k in range(1, 7)]
    assert any(d != "0" for d in diffs)
    # The used weights come back out of band: historical performance got its 40%.
    assert re.search(r'id="weff-historical_performance"[^>]*hx-swap-oob="true">40%<', html)
    assert re.search(r'id="weff-regional_potential"[^>]*>22.5%<', html)


def test_a_changed_person_opens_their_team(as_user, plan_id, app) -> None:
    with app.app_context():
        team = q.unit_by_code(db.session, "NORTH-T2")
        person = sorted(c.code for c in team.children if c.active)[0]
    client = as_user("head.north")
    html = client.post("/whatif/NORTH/results", headers=HTMX, data={
        "plan": plan_id, f"in:{person}:product_fit": "100"}).get_data(as_text=True)
    assert f'data-testid="whatif-{person}"' in html
    assert 'data-testid="whatif-changes">1<' in html


def test_values_out_of_range_are_clipped_and_bad_values_explained(as_user, plan_id) -> None:
    client = as_user("head.east")
    html = client.post("/whatif/EAST/results", headers=HTMX, data={
        "plan": plan_id, "in:EAST-T1:new_city_share": "5"}).get_data(as_text=True)
    assert 'data-testid="whatif-clipped"' in html
    response = client.post("/whatif/EAST/results", headers=HTMX, data={
        "plan": plan_id, "in:EAST-T1:market_potential": "lots"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="whatif-error"' in html and "EAST-T1" in html
    html = client.post("/whatif/EAST/results", headers=HTMX, data={
        "plan": plan_id, "in:NORTH-T1:market_potential": "1"}).get_data(as_text=True)
    assert 'data-testid="whatif-error"' in html


def test_people_rows_load_into_the_form_and_ask_for_a_recompute(as_user, plan_id) -> None:
    client = as_user("head.east")
    response = client.get(f"/whatif/EAST/people?team=EAST-T1&plan={plan_id}", headers=HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Trigger-After-Settle"] == "whatif-recompute"
    html = response.get_data(as_text=True)
    assert 'name="expand" value="EAST-T1"' in html
    assert re.search(r'name="in:P\d+:market_potential"', html)
    assert client.get(f"/whatif/EAST/people?team=NORTH-T1&plan={plan_id}").status_code == 404
    # The opened team's people are listed with the targets.
    html = client.post("/whatif/EAST/results", headers=HTMX, data={
        "plan": plan_id, "expand": "EAST-T1"}).get_data(as_text=True)
    assert re.search(r'data-testid="whatif-P\d+"', html)


@pytest.mark.parametrize("username, code, status", [
    ("head.east", "NORTH", 404),  # outside the scope looks absent
    ("lead.east.t1", "EAST-T1", 403),  # team leads do not run what-ifs
    ("ceo", "NORTH", 200),
    ("hrbp", "WEST", 200),
])
def test_who_may_run_a_what_if_where(as_user, plan_id, username, code, status) -> None:
    client = as_user(username)
    assert client.get(f"/whatif/{code}?plan={plan_id}").status_code == status
    posted = client.post(f"/whatif/{code}/results", headers=HTMX, data={"plan": plan_id})
    assert posted.status_code == status


def test_the_menu_and_the_list(as_user, plan_id) -> None:
    assert 'href="/whatif"' in as_user("head.east").get("/").get_data(as_text=True)
    assert 'href="/whatif"' not in as_user("lead.east.t1").get("/").get_data(as_text=True)
    assert as_user("lead.east.t1").get("/whatif").status_code == 403
    html = as_user("ceo").get(f"/whatif?period={OWN_PERIOD}").get_data(as_text=True)
    assert 'href="/whatif/EAST?period=' in html and 'href="/whatif/NORTH?period=' in html


def test_many_what_ifs_save_nothing(as_user, plan_id, app) -> None:
    client = as_user("head.north")
    before = _counts(app)
    for k in range(30):
        response = client.post("/whatif/NORTH/results", headers=HTMX, data={
            "plan": plan_id, "w:product_fit": str(10 + k % 10),
            "in:NORTH-T1:headcount": str(15 + k % 10),
            "in:NORTH-T2:market_potential": str(1e7 + k * 1e5)})
        assert response.status_code == 200
    assert _counts(app) == before


def test_attach_to_an_appeal_stores_a_frozen_snapshot(as_user, plan_id, app) -> None:
    client = as_user("head.east")
    uploads = _counts(app)[3]
    response = client.post("/whatif/EAST/snapshot", data={
        "plan": plan_id, "in:EAST-T1:product_fit": "99.5"})
    assert response.status_code == 302
    found = re.search(r"/whatif/EAST/evidence/(\d+)\?plan=", response.location)
    assert found
    upload_id = int(found.group(1))
    assert _counts(app)[3] == uploads + 1
    page = client.get(response.location)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'href="/uploads/{upload_id}"' in html
    assert 'data-testid="appeal-link"' in html or 'data-testid="appeal-hint"' in html
    file = client.get(f"/uploads/{upload_id}")
    assert file.status_code == 200 and b"EAST-T1,product_fit," in file.data
    # Another region's head can see neither the page nor the file.
    other = as_user("head.north")
    assert other.get(response.location).status_code == 404
    assert other.get(f"/uploads/{upload_id}").status_code == 404
