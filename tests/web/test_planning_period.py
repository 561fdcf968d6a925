"""The planning period is a company choice, not "the latest period": adding next year's
period moves no page, API default or command; HRBP and admins choose it (audited) on the
configuration page, through the API and the CLI; selectors mark it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from quotaflow.cli import main
from quotaflow.errors import Forbidden
from quotaflow.services import periods as period_service
from quotaflow.services.access import Grant, Principal
from quotaflow.services.seeding import add_period
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AuditEntry, Base, CompanySetting

LATER = "2027Q1"


def add_later_period(app) -> None:
    """Next year's draft period: later than every other, so "the latest" would pick it."""
    with app.app_context():
        add_period(db.session, LATER, dt.date(2027, 1, 1), dt.date(2027, 3, 31))
        db.session.commit()


def planning_code(app) -> str | None:
    with app.app_context():
        found = q.planning_period(db.session)
        return found.code if found else None


def audits(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(
            AuditEntry.action == "set_planning_period").order_by(AuditEntry.id)))


def selected(html: str, element_id: str = "period") -> str | None:
    select_html = re.search(rf'<select id="{element_id}" name="period"[^>]*>(.*?)</select>', html, re.S)
    assert select_html, f"no {element_id} selector"
    found = re.search(r'<option value="([^"]+)" selected', select_html.group(1))
    return found.group(1) if found else None


# -- the rule -------------------------------------------------------------------------------

def test_the_demo_plans_for_its_quarter_by_choice(app) -> None:
    assert planning_code(app) == "2026Q4"


def test_a_later_period_moves_no_page_api_default_or_command(app, as_user) -> None:
    add_later_period(app)
    with app.app_context():
        ctx = Context(session=db.session)
        assert period_service.period(ctx, None).code == "2026Q4"
        assert period_service.chosen_period(ctx, None)[0].code == "2026Q4"
        assert period_service.current_period(ctx).code != LATER  # today's period, as before
    hrbp = as_user("hrbp")
    assert selected(hrbp.get("/plans/simulate").data.decode()) == "2026Q4"
    collect = as_user("head.east").get("/collect").data.decode()
    assert selected(collect) == "2026Q4" and "2026Q4" in collect
    api = as_user("head.east")
    assert api.get("/api/v1/units/EAST/attributes").get_json()["period"] == "2026Q4"
    assert api.get("/api/v1/planning-period").get_json() == {
        "period": "2026Q4", "chosen": True,
        "periods": ["2025Q4", "2026Q1", "2026Q2", "2026Q3", "2026Q4", LATER]}


def test_the_default_follows_the_choice_not_the_calendar(app, as_user) -> None:
    hrbp = as_user("hrbp")
    assert hrbp.put("/api/v1/planning-period", json={"period": "2026Q3"}).status_code == 200
    assert hrbp.get("/api/v1/units/EAST/attributes").get_json()["period"] == "2026Q3"
    assert selected(hrbp.get("/plans/simulate").data.decode()) == "2026Q3"
    assert selected(as_user("head.east").get("/collect").data.decode()) == "2026Q3"


def _bare_database(tmp_path: Path) -> Session:
    engine = create_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    Base.metadata.create_all(engine)
    return Session(engine)


def test_without_a_choice_only_a_single_period_plans(tmp_path: Path) -> None:
    session = _bare_database(tmp_path)
    ctx = Context(session=session)
    with pytest.raises(period_service.PeriodNotFound) as none:
        period_service.period(ctx, None)
    assert none.value.code == "no_periods"
    add_period(session, "2030Q1", dt.date(2030, 1, 1), dt.date(2030, 3, 31))
    session.flush()
    assert period_service.period(ctx, None).code == "2030Q1"
    assert period_service.planning_choice(ctx) == {"period": "2030Q1", "chosen": False,
                                                   "periods": ["2030Q1"]}
    add_period(session, "2030Q2", dt.date(2030, 4, 1), dt.date(2030, 6, 30))
    session.flush()
    with pytest.raises(period_service.PeriodNotFound) as refused:
        period_service.period(ctx, None)
    assert (refused.value.code, refused.value.status, refused.value.pointer) == (
        "no_planning_period", 404, "/period")
    assert "HRBP" in refused.value.localized("en") and "规划期间" in refused.value.localized("zh")
    assert period_service.planning_choice(ctx)["period"] is None
    assert period_service.period(ctx, "2030Q1").code == "2030Q1"  # a named period still answers
    session.close()


def test_pages_and_the_api_ask_for_a_choice_when_none_is_made(app, as_user) -> None:
    with app.app_context():
        db.session.execute(update(CompanySetting).values(planning_period_id=None))
        db.session.commit()
    reader = as_user("head.east")
    page = reader.get("/collect")
    assert page.status_code == 404 and "规划期间" in page.data.decode()
    refused = reader.get("/api/v1/units/EAST/attributes")
    assert refused.status_code == 404
    assert refused.get_json()["error"]["code"] == "no_planning_period"
    assert reader.get("/api/v1/units/EAST/attributes?period=2026Q4").status_code == 200
    assert reader.get("/api/v1/planning-period").get_json()["period"] is None
    hrbp = as_user("hrbp")
    assert "尚未选定规划期间" in hrbp.get("/config").data.decode()
    assert hrbp.post("/config/planning-period", data={"period": "2026Q4"}).status_code == 302
    assert reader.get("/collect").status_code == 200
    (entry,) = audits(app)
    assert (entry.before, entry.after) == ({"period": None}, {"period": "2026Q4"})


# -- choosing it: who, and the audit ----------------------------------------------------------

def test_hrbp_chooses_on_the_configuration_page_and_it_is_audited(app, as_user) -> None:
    hrbp = as_user("hrbp")
    page = hrbp.get("/config").data.decode()
    assert 'data-testid="planning-period"' in page and selected(page, "planning-period") == "2026Q4"
    response = hrbp.post("/config/planning-period", data={"period": "2026Q3"})
    assert response.status_code == 302
    assert "2026Q3" in hrbp.get(response.headers["Location"]).data.decode()
    assert planning_code(app) == "2026Q3"
    (entry,) = audits(app)
    assert entry.actor_name == "hrbp" and entry.entity_type == "company_settings"
    assert (entry.before, entry.after) == ({"period": "2026Q4"}, {"period": "2026Q3"})
    # Choosing the period already chosen changes nothing and records nothing.
    hrbp.post("/config/planning-period", data={"period": "2026Q3"})
    assert len(audits(app)) == 1


def test_an_unknown_period_is_refused_and_nothing_changes(app, as_user) -> None:
    admin = as_user("admin")
    response = admin.post("/config/planning-period", data={"period": "1066Q4"},
                          follow_redirects=True)
    assert "1066Q4" in response.data.decode()
    assert planning_code(app) == "2026Q4" and audits(app) == []
    api = admin.put("/api/v1/planning-period", json={"period": "1066Q4"})
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"
    assert admin.put("/api/v1/planning-period", json={"period": 7}).status_code == 400
    assert admin.put("/api/v1/planning-period", json={}).status_code == 400
    assert planning_code(app) == "2026Q4" and audits(app) == []


@pytest.mark.parametrize("username", ["ceo", "head.east", "lead.east.t1", "sales.p0001"])
def test_only_hrbp_and_admins_may_choose(app, as_user, username: str) -> None:
    client = as_user(username)
    assert client.post("/config/planning-period", data={"period": "2026Q3"}).status_code == 403
    assert client.put("/api/v1/planning-period", json={"period": "2026Q3"}).status_code == 403
    assert client.get("/api/v1/planning-period").status_code == 200  # everyone may read it
    assert planning_code(app) == "2026Q4" and audits(app) == []


@pytest.mark.parametrize("username", ["admin", "hrbp"])
def test_hrbp_and_admins_choose_through_the_api(app, as_user, username: str) -> None:
    response = as_user(username).put("/api/v1/planning-period", json={"period": "2026Q2"})
    assert response.status_code == 200
    assert response.get_json()["period"] == "2026Q2" and response.get_json()["chosen"]
    (entry,) = audits(app)
    assert entry.actor_name == username and entry.after == {"period": "2026Q2"}


def test_the_use_case_refuses_a_principal_without_the_permission(app) -> None:
    with app.app_context():
        head = Principal(user_id=0, username="head.east",
                         grants=(Grant("region_head", "HQ", "/1/"),))  # even over the company
        with pytest.raises(Forbidden):
            period_service.set_planning_period(Context(session=db.session, principal=head), "2026Q3")
        assert q.planning_period(db.session).code == "2026Q4"


def test_the_command_line_lists_and_chooses(app) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(main, args=["periods", "list"])
    assert listed.exit_code == 0, listed.output
    assert "* 2026Q4" in listed.output and "  2026Q3" in listed.output
    refused = runner.invoke(main, args=["periods", "use", "2026Q3", "--as", "head.east"])
    assert refused.exit_code != 0 and planning_code(app) == "2026Q4"
    unknown = runner.invoke(main, args=["periods", "use", "1066Q4", "--as", "hrbp"])
    assert unknown.exit_code != 0 and "1066Q4" in unknown.output
    chosen = runner.invoke(main, args=["periods", "use", "2026Q3", "--as", "hrbp"])
    assert chosen.exit_code == 0 and "planning period: 2026Q3" in chosen.output
    assert planning_code(app) == "2026Q3"
    assert audits(app)[-1].actor_name == "hrbp"


# -- every page says which period it shows ------------------------------------------------------

def test_selectors_mark_the_planning_period(app, as_user) -> None:
    admin = as_user("admin")  # reads English
    add_later_period(app)
    for url in ("/plans/simulate", "/alerts/", "/hr/", "/sheets/", "/org/EAST", "/collect"):
        html = admin.get(url).data.decode()
        assert "2026Q4 (planning period)</option>" in html, url
        assert f"{LATER} (planning period)" not in html, url


def test_collect_switches_period_and_saves_where_it_read(app, as_user) -> None:
    lead = as_user("head.east")
    page = lead.get("/collect?period=2026Q3").data.decode()
    assert selected(page) == "2026Q3"
    assert re.search(r'href="/collect/EAST-T1\?period=2026Q3"', page)
    form = lead.get("/collect/EAST-T1?period=2026Q3").data.decode()
    assert 'action="/collect/EAST-T1?period=2026Q3"' in form
    assert lead.get("/collect?period=1066Q4").status_code == 404


def test_the_builder_s_impact_names_the_period_it_compares_with(as_user) -> None:
    admin = as_user("admin")
    draft = {"key": "cross_border", "label_zh": "跨境服务能力", "label_en": "Cross-border",
             "normalisation": "score", "expression": "cross_border_rating", "scale": "headcount",
             "weight": "10", "rebalance": "on", "level": "2",
             "field-0-name": "cross_border_rating", "field-0-type": "number", "field-0-min": "0",
             "field-0-max": "100", "field-0-default": "50", "field-0-label_zh": "跨境评分",
             "field-0-label_en": "Cross-border rating"}
    assert admin.post("/builder/factor", data=draft).status_code == 302
    page = admin.get("/builder/").data.decode()
    assert re.search(r'data-testid="impact-period">Period 2026Q4 \(planning period\)<', page)


@settings(max_examples=40, deadline=None)
@given(years=st.lists(st.integers(2000, 2090), min_size=1, max_size=6, unique=True),
       later=st.lists(st.integers(2091, 2120), max_size=3, unique=True), data=st.data())
def test_periods_added_later_never_move_the_planning_period(years, later, data) -> None:
    """Whatever periods exist and whichever is chosen, adding more (later ones included)
    leaves the default where it was; without a choice only a single period plans."""
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        ctx = Context(session=session)

        def add(year: int) -> object:
            return add_period(session, f"{year}Q1", dt.date(year, 1, 1), dt.date(year, 3, 31))

        made = [add(y) for y in years]
        session.flush()
        if len(made) == 1:
            assert period_service.period(ctx, None) is made[0]
        chosen = data.draw(st.sampled_from(made))
        q.set_planning_period(session, chosen)
        for year in later:
            add(year)
        session.flush()
        assert period_service.period(ctx, None) is chosen
        assert period_service.chosen_period(ctx, None)[0] is chosen
        assert period_service.planning_choice(ctx)["period"] == chosen.code
    engine.dispose()
