"""The alerts page and API within scope, acknowledging with htmx, and the actuals
upload page. Alerts come from the (idempotent) scan of the demo's week 6."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from quotaflow.services import alert_scan
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.tracking_models import Alert

PAGE = "/alerts/?period=2026Q4&status=all"


@pytest.fixture
def north_t4_alert(app):
    """The week-6 streak alert of NORTH-T4, open; its status is restored afterwards."""
    with app.app_context():
        period = q.period_by_code(db.session, "2026Q4")
        alert_scan.scan(db.session, period, 6, trigger="test")
        unit = q.unit_by_code(db.session, "NORTH-T4")
        alert = db.session.scalar(select(Alert).where(
            Alert.unit_id == unit.id, Alert.rule == "team_under_line",
            Alert.period_id == period.id, Alert.week == 6))
        state = (alert.id, alert.status, alert.acknowledged_by_id, alert.acknowledged_at)
        db.session.execute(update(Alert).where(Alert.id == alert.id).values(
            status="open", acknowledged_by_id=None, acknowledged_at=None))
        db.session.commit()
    yield state[0]
    with app.app_context():
        db.session.execute(update(Alert).where(Alert.id == state[0]).values(
            status=state[1], acknowledged_by_id=state[2], acknowledged_at=state[3]))
        db.session.commit()


def test_region_head_sees_the_alert_with_its_remedies_in_chinese(as_user, north_t4_alert) -> None:
    page = as_user("head.north").get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'id="alert-{north_t4_alert}"' in html
    assert 'data-unit="NORTH-T4"' in html
    assert "从北京1组调派支援" in html  # the first remedy, concrete, in the user's language
    assert 'data-unit="EAST-T6"' not in html  # another region's team: out of scope
    assert 'data-testid="acknowledge"' in html


def test_english_user_sees_english_messages(as_user, north_t4_alert) -> None:
    client = as_user("admin")  # locale en
    html = client.get(PAGE).get_data(as_text=True)
    assert "Send support from Beijing Team 1 (" in html
    assert "NORTH-T4 (Jinan Team 4) is at" in html


def test_out_of_scope_and_read_only_users(as_user, north_t4_alert) -> None:
    east = as_user("lead.east.t1")
    assert 'data-unit="NORTH-T4"' not in east.get(PAGE).get_data(as_text=True)
    assert east.post(f"/alerts/{north_t4_alert}/acknowledge").status_code == 404
    ceo = as_user("ceo")  # sees everything, acknowledges nothing (no unit.write)
    html = ceo.get(PAGE).get_data(as_text=True)
    assert 'data-unit="NORTH-T4"' in html and 'data-testid="acknowledge"' not in html
    assert ceo.post(f"/alerts/{north_t4_alert}/acknowledge").status_code == 403
    assert as_user("sales.p0001").get(PAGE).status_code == 200


def test_team_lead_acknowledges_with_htmx(app, as_user, north_t4_alert) -> None:
    lead = as_user("lead.north.t4")
    response = lead.post(f"/alerts/{north_t4_alert}/acknowledge", headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith(f'<li id="alert-{north_t4_alert}"')
    assert 'data-status="acknowledged"' in fragment and 'data-testid="acknowledge"' not in fragment
    with app.app_context():
        alert = db.session.get(Alert, north_t4_alert)
        assert alert.status == "acknowledged"
        assert alert.acknowledged_by.username == "lead.north.t4"
    # Acknowledging again changes nothing; the open list no longer shows it.
    assert lead.post(f"/alerts/{north_t4_alert}/acknowledge").status_code == 200
    open_page = lead.get("/alerts/?period=2026Q4").get_data(as_text=True)
    assert f'id="alert-{north_t4_alert}"' not in open_page


def test_alerts_api_is_scoped(as_user, north_t4_alert) -> None:
    body = as_user("head.north").get("/api/v1/alerts?period=2026Q4&week=6").get_json()
    mine = [a for a in body["alerts"] if a["unit"] == "NORTH-T4" and a["rule"] == "team_under_line"]
    assert len(mine) == 1
    assert len(mine[0]["remedies"]) == 3
    assert mine[0]["remedies"][0]["message_en"].startswith("Send support from Beijing Team 1")
    assert all(a["unit"] not in ("EAST-T6",) for a in body["alerts"])
    east = as_user("lead.east.t1").get("/api/v1/alerts?period=2026Q4").get_json()
    assert all(a["unit"] != "NORTH-T4" for a in east["alerts"])
    assert as_user("head.north").get("/api/v1/alerts?status=nope").status_code == 400
    ack = as_user("lead.east.t1").post(f"/api/v1/alerts/{north_t4_alert}/acknowledge")
    assert ack.status_code == 404


def test_progress_api_for_a_unit_in_scope(as_user) -> None:
    body = as_user("head.north").get("/api/v1/units/NORTH/progress?period=2026Q4&week=6")
    assert body.status_code == 200
    data = body.get_json()
    assert data["unit"]["code"] == "NORTH" and data["week"] == 6
    assert {c["code"] for c in data["children"]} >= {"NORTH-T1", "NORTH-T4"}
    assert data["curve"]["kind"] == "seasonal"
    assert as_user("head.north").get("/api/v1/units/EAST/progress").status_code == 404
    # A week the period does not have (the route accepts 1..60) says where: /week.
    bad = as_user("head.north").get("/api/v1/units/NORTH/progress?period=2026Q4&week=40")
    assert bad.status_code == 400
    error = bad.get_json()["error"]
    assert error["code"] == "bad_week" and error["details"] == {"pointer": "/week"}
    assert "weeks 1..14" in error["message"]


def test_actuals_page_for_writers_only(as_user) -> None:
    hrbp = as_user("hrbp")
    page = hrbp.get("/actuals/")
    assert page.status_code == 200 and 'data-testid="upload-actuals"' in page.get_data(as_text=True)
    assert hrbp.get("/actuals/template.csv").status_code == 200
    assert hrbp.get("/actuals/template.xlsx").status_code == 200
    assert as_user("ceo").get("/actuals/").status_code == 403
    assert as_user("sales.p0001").get("/actuals/").status_code == 403


def test_actuals_upload_reports_rows_and_columns(as_user) -> None:
    import io

    lead = as_user("lead.east.t1")
    data = b"unit_code,date,value\nP0001,2026-10-07,abc\nP0480,2026-10-07,5\n"
    response = lead.post("/actuals/", data={"file": (io.BytesIO(data), "mine.csv")},
                         content_type="multipart/form-data")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-row="2"' in html and 'data-column="C"' in html
    assert 'data-row="3"' in html and 'data-code="unit.unknown"' in html
    missing = lead.post("/actuals/", data={}, content_type="multipart/form-data")
    assert missing.status_code == 422
