"""The alert scan on the demo: NORTH-T4's streak alert with three concrete remedies,
sent to its lead and region head; scanning again adds nothing; cooldown; job leases
and the schedule. Each test starts from the seeded demo (its transaction is rolled back
at its end)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import func, select

from quotaflow.cli import main
from quotaflow.services import alert_scan, jobs, tracking
from quotaflow.store import db, tracking_queries
from quotaflow.store import queries as q
from quotaflow.store.models import User
from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent
from quotaflow.store.tracking_models import Alert, JobLease, ScanRun


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def demo(ctx):
    return q.period_by_code(ctx, "2026Q4")


def _alert(session, period, code: str, rule: str, week: int) -> Alert | None:
    unit = q.unit_by_code(session, code)
    return session.scalar(select(Alert).where(Alert.unit_id == unit.id, Alert.rule == rule,
                                              Alert.period_id == period.id, Alert.week == week))


def _count(session) -> int:
    return session.scalar(select(func.count()).select_from(Alert))


def test_progress_tracks_the_demo_plan_on_a_seasonal_curve(ctx, demo) -> None:
    p = tracking.progress(ctx, demo, 6)
    assert p.targets_source in ("published", "latest")
    assert p.curve_kind == "seasonal" and len(p.curve.values) == len(demo.weeks) + 1
    assert p.history_quarters == ("2025Q4", "2026Q1", "2026Q2", "2026Q3")
    lagging, ahead = p.unit("NORTH-T4"), p.unit("NORTH-T1")
    assert lagging["pace"] < 0.7 < 1.1 < ahead["pace"]
    assert lagging["streak"] >= 2
    assert lagging["forecast_low"] <= lagging["forecast"] <= lagging["forecast_high"]
    assert lagging["forecast"] < lagging["target"]
    hq = p.unit("HQ")
    assert hq["actual"] == pytest.approx(sum(p.unit(str(p.codes[i]))["actual"]
                                             for i in p.children_rows("HQ")))
    assert p.wmape_now is not None and 0 <= p.wmape_now < 1
    series = p.series("NORTH-T4")
    assert series["week"] == [1, 2, 3, 4, 5, 6] and series["actual"][-1] == lagging["actual"]
    north = q.unit_by_code(ctx, "NORTH")
    rows = p.rows_in([north.path])
    assert "NORTH-T4" in p.codes[rows] and "EAST" not in p.codes[rows]
    with pytest.raises(tracking.TrackingError, match=r"weeks 1\.\.14"):
        tracking.progress(ctx, demo, 15)


def test_week_six_raises_the_streak_alert_with_three_concrete_remedies(ctx, demo) -> None:
    alert_scan.scan(ctx, demo, 6, trigger="test")
    alert = _alert(ctx, demo, "NORTH-T4", "team_under_line", 6)
    assert alert is not None
    assert alert.severity == "high" and alert.run >= 2 and alert.level == "team"
    assert alert.message_en.startswith("NORTH-T4 (Jinan Team 4) is at ")
    assert "济南4组" in alert.message_zh
    remedies = alert.remedies
    assert len(remedies) == 3
    assert [r["priority"] for r in remedies] == sorted((r["priority"] for r in remedies),
                                                        reverse=True)
    top = remedies[0]
    assert top["key"] == "send_support"
    assert top["message_en"].startswith("Send support from Beijing Team 1 (")
    assert top["message_en"].endswith("% ahead of pace, same region)")
    assert "北京1组" in top["message_zh"]
    assert {r["key"] for r in remedies} == {"send_support", "emergency_recompute", "coaching"}
    assert "NORTH-T4 is at" in remedies[1]["message_en"]
    # Pinned to what it ran under.
    assert alert.rules_version_id and alert.remedies_version_id and alert.plan_id
    assert alert.metrics["pace"] < 0.7
    # People get a peer in their own team, never "support from another team".
    for person in ctx.scalars(select(Alert).where(Alert.period_id == demo.id, Alert.week == 6,
                                                  Alert.level == "person")):
        assert all(r["key"] != "send_support" for r in person.remedies)
        assert all("same region" not in r["message_en"] for r in person.remedies)
    # Teams on or ahead of the line raise nothing.
    assert _alert(ctx, demo, "NORTH-T1", "team_under_line", 6) is None
    # Sent to the team lead and the region head (by role grants over the unit).
    event = ctx.scalar(select(OutboxEvent).where(OutboxEvent.key == f"alert.raised:{alert.id}"))
    assert event is not None and event.topic == "alert.raised"
    names = set(ctx.scalars(select(User.username).where(User.id.in_(event.to_users))))
    assert {"lead.north.t4", "head.north"} <= names
    assert not names & {"lead.east.t1", "head.east", "sales.p0001"}
    assert event.payload["remedies"][0]["key"] == "send_support"
    assert event.payload["url"].startswith("/alerts/")
    assert event.payload["title_zh"] and event.payload["body_en"]
    # The rule asks for "in_app" and "email": an inbox and an e-mail delivery per person.
    deliveries = ctx.execute(select(OutboxDelivery.channel, OutboxDelivery.recipient_id).where(
        OutboxDelivery.event_id == event.id)).all()
    by_channel = {c: sorted(r for ch, r in deliveries if ch == c) for c, _ in deliveries}
    assert by_channel["inbox"] == by_channel["email"] == sorted(event.to_users)


def test_scanning_the_same_week_again_adds_nothing(ctx, demo) -> None:
    alert_scan.scan(ctx, demo, 6, trigger="test")
    before, events = _count(ctx), ctx.scalar(select(func.count()).select_from(OutboxEvent))
    again = alert_scan.scan(ctx, demo, 6, trigger="test")
    assert again.raised == ()
    assert again.existing == again.hits > 0
    assert _count(ctx) == before
    assert ctx.scalar(select(func.count()).select_from(OutboxEvent)) == events
    run = ctx.get(ScanRun, again.run_id)
    assert run.raised == 0 and run.finished_at is not None and run.trigger == "test"


def test_the_next_week_is_quiet_for_units_in_cooldown(ctx, demo) -> None:
    alert_scan.scan(ctx, demo, 6, trigger="test")
    # Week 7 without committing: NORTH-T4 is still under the line, but its rule's
    # cooldown (2 weeks) keeps it quiet after the week 6 alert.
    try:
        result = alert_scan._scan(ctx, demo, 7, "test", None, None, dt.datetime(2026, 11, 16))
        raised = {(a.unit.code, a.rule) for a in ctx.scalars(
            select(Alert).where(Alert.id.in_(result.raised or [-1])))}
        assert ("NORTH-T4", "team_under_line") not in raised
        assert result.suppressed >= 1
        p = tracking.progress(ctx, demo, 7)
        assert p.unit("NORTH-T4")["pace"] < 0.7  # the condition still holds
    finally:
        ctx.rollback()
    assert _alert(ctx, demo, "NORTH-T4", "team_under_line", 7) is None


def test_cli_scan_reports_and_adds_nothing_the_second_time(app, ctx, demo) -> None:
    alert_scan.scan(ctx, demo, 6, trigger="test")
    runner = app.test_cli_runner()
    result = runner.invoke(main, args=["alerts", "scan", "--period", "2026Q4", "--week", "6"])
    assert result.exit_code == 0, result.output
    assert "2026Q4 week 6" in result.output and "0 new alert(s)" in result.output
    bad = runner.invoke(main, args=["alerts", "scan", "--period", "2026Q4", "--week", "40"])
    assert bad.exit_code != 0 and "weeks 1..14" in bad.output
    unknown = runner.invoke(main, args=["alerts", "scan", "--period", "1066Q4"])
    assert unknown.exit_code != 0 and "1066Q4" in unknown.output


def test_a_lease_has_one_holder_until_it_expires(ctx) -> None:
    name = "test-lease"
    now = dt.datetime(2026, 11, 30, 0, 0)
    ttl = dt.timedelta(minutes=10)
    assert jobs.acquire(ctx, name, "worker-a", ttl, now=now)
    assert not jobs.acquire(ctx, name, "worker-b", ttl, now=now + dt.timedelta(minutes=5))
    assert jobs.acquire(ctx, name, "worker-a", ttl, now=now + dt.timedelta(minutes=5))  # renew
    # The renewal moved the expiry: at +12 min it still holds; at +16 it has expired.
    assert not jobs.acquire(ctx, name, "worker-b", ttl, now=now + dt.timedelta(minutes=12))
    assert jobs.lease_holder(ctx, name, now=now + dt.timedelta(minutes=12)) == "worker-a"
    assert jobs.acquire(ctx, name, "worker-b", ttl, now=now + dt.timedelta(minutes=16))
    assert jobs.lease_holder(ctx, name, now=now + dt.timedelta(minutes=16)) == "worker-b"
    assert not jobs.release(ctx, name, "worker-a")  # not the holder any more
    assert jobs.release(ctx, name, "worker-b")
    assert ctx.get(JobLease, name) is None


@pytest.mark.committing
def test_two_sessions_racing_for_a_free_lease_get_one_holder(app) -> None:
    from sqlalchemy.orm import Session

    name = "race"
    now = dt.datetime(2026, 11, 30, 0, 0)
    with app.app_context(), Session(bind=db.engine) as a, Session(bind=db.engine) as b:
        got = [jobs.acquire(a, name, "a", now=now), jobs.acquire(b, name, "b", now=now)]
        assert got == [True, False]
        jobs.release(a, name, "a")


def test_scheduler_starts_only_when_configured(app) -> None:
    from types import SimpleNamespace

    assert jobs.start_scheduler(SimpleNamespace(config={"ALERT_SCHEDULE": ""})) is None
    with pytest.raises(ValueError, match="alert schedule"):
        jobs.start_scheduler(SimpleNamespace(config={"ALERT_SCHEDULE": "someday"},
                                             extensions={}))
    assert "quotaflow_alert_scheduler" not in app.extensions  # tests run without it


def test_schedule_parsing_and_slots() -> None:
    schedule = jobs.parse_schedule("mon 07:00")
    assert (schedule.weekday, schedule.at) == (0, dt.time(7, 0))
    # Monday 2026-11-09 07:00 in Shanghai is 2026-11-08 23:00 UTC.
    assert schedule.last_slot(dt.datetime(2026, 11, 9, 1, 0)) == dt.datetime(2026, 11, 8, 23, 0)
    assert schedule.last_slot(dt.datetime(2026, 11, 8, 22, 59)) == dt.datetime(2026, 11, 1, 23, 0)
    for bad in ("07:00", "MON", "XYZ 07:00", "MON 7h"):
        with pytest.raises(ValueError, match="alert schedule"):
            jobs.parse_schedule(bad)


def test_the_scheduled_scan_runs_once_per_slot_under_the_lease(ctx, demo) -> None:
    alert_scan.scan(ctx, demo, 6, trigger="test")  # week 6 is already scanned: idempotent
    schedule = jobs.parse_schedule("MON 07:00")
    now = dt.datetime(2026, 11, 8, 23, 5)  # just after Monday 9 Nov 07:00 in Shanghai
    slot = schedule.last_slot(now)
    assert ctx.scalar(select(ScanRun.id).where(ScanRun.trigger == "schedule",
                                             ScanRun.started_at >= slot)) is None
    # Another worker holds the lease: this one does nothing.
    assert jobs.acquire(ctx, jobs.SCAN_JOB, "other-worker", now=now)
    try:
        assert jobs.run_due(ctx, schedule, "this-worker", now=now) is None
    finally:
        jobs.release(ctx, jobs.SCAN_JOB, "other-worker")
    result = jobs.run_due(ctx, schedule, "this-worker", now=now)
    # Scans the week that just ended (Nov 2-8 = week 6): nothing new.
    assert (result.period, result.week, result.raised) == ("2026Q4", 6, ())
    # The slot is done (its run is recorded): no second scan, and the lease is free.
    assert jobs.run_due(ctx, schedule, "this-worker", now=now) is None
    assert jobs.lease_holder(ctx, jobs.SCAN_JOB, now=now) is None
    # Long after the slot (beyond the grace period) nothing runs either.
    assert jobs.run_due(ctx, schedule, "this-worker", now=now + dt.timedelta(hours=7)) is None


def test_tracking_spec_kinds_are_seeded_active_and_checked_with_pointers(ctx) -> None:
    import copy

    from quotaflow.services import specs

    for kind in ("pacing_curve", "alert_rules", "remedies"):
        version = specs.active_version(ctx, kind, "default")
        assert version is not None, kind
        assert specs.validate_content(ctx, kind, "default", version.content) == []
    rules = copy.deepcopy(specs.active_version(ctx, "alert_rules", "default").content)
    rules["rules"][0]["when"] = "pace < "
    rules["rules"][1]["message_en"] = "{nope}"
    issues = specs.validate_content(ctx, "alert_rules", "default", rules)
    assert {i.pointer for i in issues} == {"/rules/0/when", "/rules/1/message_en"}
    remedies = copy.deepcopy(specs.active_version(ctx, "remedies", "default").content)
    remedies["remedies"][0]["priority"] = "pace < 1"
    assert [i.pointer for i in specs.validate_content(ctx, "remedies", "default", remedies)] \
        == ["/remedies/0/priority"]
    curve = {"kind": "seasonal", "weeks": 13}
    assert [i.pointer for i in specs.validate_content(ctx, "pacing_curve", "default", curve)]
    assert specs.validate_content(ctx, "pacing_curve", "default", {"kind": "linear"}) == []


def test_alert_pages_are_slices_of_one_order_newest_week_then_severity(ctx) -> None:
    """A page (limit/offset) is cut after sorting by severity: a high alert of a team
    comes before a low one of its region on the first page, not on a later one."""
    from quotaflow.services import alerts as alert_service
    from quotaflow.services import specs
    from tests.plan_support import own_period

    period = own_period(ctx)
    rules_vid = specs.active_version(ctx, "alert_rules", "default").id
    for code, severity in (("NORTH", "low"), ("NORTH-T4", "high"), ("NORTH-T1", "medium")):
        alert = Alert(rule="pagetest", unit_id=q.unit_by_code(ctx, code).id,
                      period_id=period.id, week=1, level="x", severity=severity, run=1,
                      metrics={}, label_en="t", label_zh="t", message_en="t", message_zh="t",
                      remedies=[], rules_version_id=rules_vid)
        ctx.add(alert)
    ctx.commit()
    paths = [q.unit_by_code(ctx, "NORTH").path]
    pages = [alert_service.alerts_in_scope(ctx, paths, period_id=period.id, limit=1,
                                           offset=k) for k in range(3)]
    assert [page[0].severity for page in pages] == ["high", "medium", "low"]
    whole = alert_service.alerts_in_scope(ctx, paths, period_id=period.id)
    assert [a.unit.code for a in whole] == ["NORTH-T4", "NORTH-T1", "NORTH"]


def test_targets_and_attribute_columns_follow_the_ids_given(ctx, demo) -> None:
    """Vectorised look-ups: any order of ids, ids without a value (0 / left out) and
    values of units not asked for (ignored) give the same as a dict look-up."""
    from quotaflow.store.models import AttributeValue, Plan, PlanUnit

    p = tracking.progress(ctx, demo, 6)
    plan = ctx.get(Plan, p.plan_id)
    ids = np.r_[p.unit_ids[::-1], 10**9]  # reversed, plus an id that is nobody's
    targets, has = tracking._targets(ctx, plan, ids)
    got = dict(ctx.execute(select(PlanUnit.unit_id, PlanUnit.target)
                           .where(PlanUnit.plan_id == plan.id)).all())
    assert targets.tolist() == [float(got.get(int(u), 0)) for u in ids]
    assert has.tolist() == [int(u) in got for u in ids]
    name = ctx.scalar(select(AttributeValue.name).where(AttributeValue.period_id == demo.id)
                      .limit(1))
    cols = tracking.attribute_columns(ctx, demo, ids[::7], [name, "no-such-attribute"])
    assert set(cols) == {name}
    values = dict(ctx.execute(select(AttributeValue.unit_id, AttributeValue.value).where(
        AttributeValue.period_id == demo.id, AttributeValue.name == name)).all())
    assert cols[name].tolist() == [float(values.get(int(u), 0.0)) for u in ids[::7]]
    # No ids at all (the old look-up indexed an empty array here and raised IndexError).
    empty = tracking.attribute_columns(ctx, demo, np.zeros(0, dtype=np.int64), [name])
    assert [len(c) for c in empty.values()] == [0]


def test_recipients_by_the_grants_over_the_unit_and_people_in_chunks(ctx, monkeypatch) -> None:
    """Recipients are looked up by the prefixes of the unit's path (no loop over every
    grant per alert), and the people's own accounts in chunks of parameters."""
    unit = q.unit_by_code(ctx, "NORTH-T4")
    grants = alert_scan.role_grants(ctx)
    names = {ctx.get(User, uid).username
             for uid in alert_scan.recipients(unit, ["team_lead", "region_head"], grants, {})}
    assert {"lead.north.t4", "head.north"} <= names
    assert not names & {"lead.east.t1", "head.east", "lead.north.t1"}
    # A grant over a unit whose path merely starts like this one's is no ancestor.
    fake = alert_scan.UnitRef(unit.id, unit.code, unit.path, "", "")
    tricky = {unit.path[:-1] + "9/": [(999_999, "team_lead")]}
    assert alert_scan.recipients(fake, ["team_lead"], tricky, {}) == []
    assert alert_scan.recipients(fake, ["team_lead", "self"], tricky, {unit.id: 7}) == [7]
    people = [q.unit_by_code(ctx, c).id for c in ("P0001", "P0002", "P0003")]
    whole = alert_scan.person_users(ctx, people)
    monkeypatch.setattr(tracking_queries, "IN_CHUNK", 1)
    assert alert_scan.person_users(ctx, people) == whole
    assert ctx.get(User, whole[people[0]]).username == "sales.p0001"
