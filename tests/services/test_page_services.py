"""The services pages read and act through: scope decided with the principal, refusals as
NotFound/Forbidden, state changes as use cases, previews that write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from quotaflow.errors import Forbidden, NotFound
from quotaflow.services import admin as admin_service
from quotaflow.services import alert_scan, alerts, commands, inbox, letter_reads, periods, units
from quotaflow.services.auth import principal_for
from quotaflow.services.uow import Context, discarded, unit_of_work
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, LoginAttempt, OrgUnit
from quotaflow.store.tracking_models import Alert


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session()
        db.session.rollback()


def ctx_of(session, username: str | None) -> Context:
    if username is None:
        return Context(session=session)
    user = q.user_by_username(session, username)
    return Context(session=session, principal=principal_for(user), remote_addr="127.0.0.1")


def test_the_planning_period_is_the_chosen_one_and_an_unknown_one_is_not_found(session) -> None:
    ctx = ctx_of(session, "head.east")
    chosen, every = periods.chosen_period(ctx, None)
    assert chosen.code == "2026Q4" == periods.planning_period(ctx).code  # the demo's choice
    assert periods.chosen_period(ctx, every[0].code)[0] == every[0]
    with pytest.raises(NotFound):
        periods.chosen_period(ctx, "1999Q1")


def test_units_are_read_within_the_principal_scope(session) -> None:
    east, north = ctx_of(session, "head.east"), ctx_of(session, "head.north")
    assert units.readable_unit(east, "EAST").code == "EAST"
    with pytest.raises(NotFound):
        units.readable_unit(north, "EAST")
    with pytest.raises(NotFound):
        units.readable_unit(east, "NO-SUCH-UNIT")
    assert [u.code for u in units.scope_roots(east)] == ["EAST"]
    assert all(u.path.startswith(units.readable_unit(east, "EAST").path)
               for u in units.search(east, "T1"))
    assert units.readable_units_by_codes(north, ["EAST", "NORTH"]).keys() == {"NORTH"}
    team = units.children(east, units.readable_unit(east, "EAST"))[0]
    # The company above the region is shown but not readable by the region head.
    flags = [(a.code, readable) for a, readable in units.ancestors(east, team)]
    assert flags[-1] == ("EAST", True)
    assert flags[0][1] is False
    assert [a.code for a in units.readable_ancestors(east, team)] == ["EAST"]


def test_acknowledging_an_alert_is_refused_out_of_scope_and_read_only(session) -> None:
    period = periods.chosen_period(ctx_of(session, "admin"), "2026Q4")[0]
    alert_scan.scan(session, period, 6, trigger="test")
    alert = session.scalar(select(Alert).join(OrgUnit, OrgUnit.id == Alert.unit_id).where(
        OrgUnit.code == "NORTH-T4", Alert.status == "open").limit(1))
    assert alert is not None
    alert_id = alert.id
    with pytest.raises(NotFound):
        alerts.acknowledge_alert(ctx_of(session, "head.east"), alert_id)
    with pytest.raises(Forbidden):
        alerts.acknowledge_alert(ctx_of(session, "ceo"), alert_id)  # reads, may not write
    assert session.get(Alert, alert_id).status == "open"
    done = alerts.acknowledge_alert(ctx_of(session, "head.north"), alert_id)
    assert done.status == "acknowledged"
    assert done.acknowledged_by.username == "head.north"


def test_someone_elses_message_looks_absent(session) -> None:
    with pytest.raises(NotFound):
        inbox.my_message(ctx_of(session, "head.east"), 10**9)
    with pytest.raises(NotFound):
        inbox.mark_read(ctx_of(session, "head.east"), 10**9)
    with pytest.raises(NotFound):
        inbox.unread_count(ctx_of(session, None))  # nobody signed in has no inbox


def test_a_card_out_of_scope_is_not_found_and_only_leads_countersign(session) -> None:
    with pytest.raises(NotFound):
        letter_reads.readable_letter(ctx_of(session, "head.east"), 10**9)
    assert letter_reads.is_lead(ctx_of(session, "lead.east.t1"))
    assert not letter_reads.is_lead(ctx_of(session, "head.east"))
    assert letter_reads.team_letters(ctx_of(session, "sales.p0001")) == []


def test_a_use_case_commits_the_sign_in_attempt(app, session) -> None:
    def attempts() -> int:
        return session.scalar(select(func.count()).select_from(LoginAttempt)
                              .where(LoginAttempt.username == "head.east"))

    before = attempts()
    result = commands.sign_in_with_password(ctx_of(session, None), "head.east", "wrong password",
                                            max_failures=100, window_seconds=1)
    assert result.user is None
    session.rollback()  # what is committed stays
    assert attempts() == before + 1


@pytest.mark.usefixtures("inputs_open")
def test_setting_inputs_is_one_unit_of_work(session) -> None:
    ctx = ctx_of(session, "head.east")
    unit = units.readable_unit(ctx, "EAST-T1")
    period = periods.planning_period(ctx)
    before = units.attributes(ctx, unit, period.id)
    name = next(iter(before), "headcount")
    commands.set_attributes(ctx, unit, period, {name: 42.0})
    session.rollback()  # what the use case committed stays
    assert units.attributes(ctx, unit, period.id)[name] == 42.0


def test_a_discarded_block_writes_nothing_inside_or_outside_a_unit_of_work(session) -> None:
    def count() -> int:
        return session.scalar(select(func.count()).select_from(AttributeValue))

    period = periods.planning_period(ctx_of(session, "admin"))
    before = count()
    with discarded(session):
        session.add(AttributeValue(unit_id=1, period_id=period.id, name="zz_preview", value=1.0))
        session.flush()
        assert count() == before + 1
    assert count() == before
    with unit_of_work(session):
        with discarded(session):
            session.add(AttributeValue(unit_id=1, period_id=period.id, name="zz_preview",
                                       value=1.0))
            session.flush()
        assert count() == before
    assert count() == before


def test_a_new_unit_needs_a_level_below_its_parent(session) -> None:
    person = session.scalar(select(OrgUnit).order_by(OrgUnit.depth.desc()).limit(1))
    with session.no_autoflush:
        orphan = OrgUnit(code="ZZ-NEW", name_en="New", name_zh="新", parent=person)
        assert admin_service.place_new_unit(session, orphan) is False
        if orphan in session:
            session.expunge(orphan)
    assert admin_service.identity(person) == str(person.id)
    assert admin_service.table_name(OrgUnit) == "org_units"
    assert "path" in admin_service.snapshot(person)


def test_roles_at_names_the_grants_on_or_above_a_unit() -> None:
    from quotaflow.services.access import Grant, Principal

    p = Principal(1, "x", (Grant("region_head", "EAST", "/1/2/"),
                           Grant("team_lead", "EAST-T1", "/1/2/5/")))
    assert p.roles_at("/1/2/5/9/") == {"region_head", "team_lead"}
    assert p.roles_at("/1/2/") == {"region_head"}
    assert p.roles_at("/1/3/") == frozenset()
