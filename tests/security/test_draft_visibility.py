"""Issue 11, finding 10 (tracking): with only a draft plan in a period, progress fell back
to the draft, so a sales person's dashboard, the progress API and the alerts raised
against it showed an unpublished target. Replayed through the real app: those who may
not read drafts are told there is no published plan yet and see none of its amounts;
plan makers (HRBP) still track against the draft."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quotaflow.store import db
from quotaflow.store.outbox_models import OutboxEvent
from quotaflow.store.queries import user_by_username

API = "/api/v1"
DRAFT_TOTAL = 249_500_000
NO_PUBLISHED = ("No published plan yet", "尚无已发布的方案")


@pytest.fixture(scope="module")
def draft(app) -> dict:
    """The plan tests' own period with only a draft plan, alerts scanned against it by
    the system, and the sales person's own unit and draft target."""
    from plan_support import own_period

    from quotaflow.services import alert_scan, plans
    from quotaflow.store import plan_queries

    with app.app_context():
        period = own_period(db.session)
        plan = plans.create_plan(db.session, user_by_username(db.session, "cfo"), period,
                                 "balanced", DRAFT_TOTAL, "draft replay")
        assert plan.status == "draft"
        unit = user_by_username(db.session, "sales.p0001").person_unit
        target = plan_queries.plan_unit(db.session, plan.id, unit.id).target
        scan = alert_scan.scan(db.session, period, len(period.weeks))
        assert scan.targets_source == "latest" and scan.raised
        # Nobody is notified of an alert against a draft (inbox or channel).
        keys = {f"{alert_scan.TOPIC}:{alert_id}" for alert_id in scan.raised}
        assert not db.session.scalars(select(OutboxEvent.key).where(
            OutboxEvent.key.in_(keys))).all()
        return {"period": period.code, "plan_id": plan.id, "unit": unit.code,
                "target": int(target)}


def _amounts(target: int) -> tuple[str, ...]:
    """How the sales person's draft target could appear on a page or in JSON."""
    return (str(target), f"{target:,}")


@pytest.mark.parametrize("username", ["sales.p0001", "lead.east.t1", "head.east"])
def test_no_draft_amounts_for_those_who_may_not_read_drafts(as_user, draft,
                                                            username: str) -> None:
    client = as_user(username)
    period, unit = draft["period"], draft["unit"]
    page = client.get(f"/dashboard/unit/{unit}?period={period}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert any(text in html for text in NO_PUBLISHED), html[:2000]
    assert not any(amount in html for amount in _amounts(draft["target"]))

    progress = client.get(f"{API}/units/{unit}/progress?period={period}")
    assert progress.status_code == 404
    assert progress.get_json()["error"]["code"] == "no_published_plan"

    view = client.get(f"{API}/dashboard/units/{unit}?period={period}").get_json()
    assert view["status"] == "no_published_plan" and "unit" not in view
    assert "no published plan" in view["message"]

    listed = client.get(f"{API}/alerts?period={period}&status=all").get_json()["alerts"]
    assert [a for a in listed if a["plan_id"] == draft["plan_id"]] == []
    alerts_page = client.get(f"/alerts/?period={period}&status=all").get_data(as_text=True)
    assert not any(amount in alerts_page for amount in _amounts(draft["target"]))


def test_an_alert_raised_against_a_draft_cannot_be_read_or_acknowledged(app, as_user,
                                                                       draft) -> None:
    hrbp = as_user("hrbp")
    raised = hrbp.get(f"{API}/alerts?period={draft['period']}&status=all").get_json()["alerts"]
    own = [a for a in raised if a["unit"] == draft["unit"]]
    assert own and all(a["plan_id"] == draft["plan_id"] for a in own)
    lead = as_user("lead.east.t1")  # may write the person's unit, may not read drafts
    for alert in own:
        refused = lead.post(f"{API}/alerts/{alert['id']}/acknowledge")
        assert refused.status_code == 404
        assert refused.get_json()["error"]["code"] == "not_found"
    after = hrbp.get(f"{API}/alerts?period={draft['period']}&status=all").get_json()["alerts"]
    assert {a["id"]: a["status"] for a in after if a["unit"] == draft["unit"]} == {
        a["id"]: "open" for a in own}


def test_hrbp_still_tracks_against_the_draft(as_user, draft) -> None:
    hrbp = as_user("hrbp")
    period, unit = draft["period"], draft["unit"]
    progress = hrbp.get(f"{API}/units/{unit}/progress?period={period}")
    assert progress.status_code == 200
    body = progress.get_json()
    assert body["targets"]["source"] == "latest"
    assert body["targets"]["plan_id"] == draft["plan_id"]
    assert round(body["unit"]["target"]) == draft["target"]
    view = hrbp.get(f"{API}/dashboard/units/{unit}?period={period}").get_json()
    assert view["status"] == "ok" and view["plan"]["source"] == "latest"
    html = hrbp.get(f"/dashboard/unit/{unit}?period={period}").get_data(as_text=True)
    assert not any(text in html for text in NO_PUBLISHED)
    assert any(amount in html for amount in _amounts(draft["target"]))


def test_publishing_shows_the_plan_to_everyone(app, as_user, draft) -> None:
    """Once the plan is published the same reader tracks against it (the refusal was
    about the draft, not the person)."""
    from plan_support import readable_by_all

    with app.app_context():
        readable_by_all(db.session, draft["plan_id"])
    sales = as_user("sales.p0001")
    body = sales.get(f"{API}/units/{draft['unit']}/progress?period={draft['period']}")
    assert body.status_code == 200 and body.get_json()["targets"]["source"] == "published"
    listed = sales.get(f"{API}/alerts?period={draft['period']}&status=all").get_json()["alerts"]
    assert any(a["plan_id"] == draft["plan_id"] for a in listed)
