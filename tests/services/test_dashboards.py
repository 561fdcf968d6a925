"""Dashboard view models on the demo: the figures are the tracking service's, the
forecast curve runs from the week's result to the forecast along the pacing curve,
resources are the period's headcount and cost inputs, and every view is JSON-ready.

Each test starts from the seeded demo (its transaction is rolled back at its end)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from quotaflow.services import dashboards, flows, outbox, specs, tracking
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, SpecVersion, utcnow
from quotaflow.store.tracking_models import Actual, Alert


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def demo(ctx):
    return q.period_by_code(ctx, "2026Q4")


def _json(value) -> object:
    return json.loads(json.dumps(value, allow_nan=False))


def test_view_kind_follows_the_level(ctx) -> None:
    kinds = {code: dashboards.view_kind(ctx, q.unit_by_code(ctx, code))
             for code in ("HQ", "EAST", "EAST-T1", "P0001")}
    assert kinds == {"HQ": "executive", "EAST": "region", "EAST-T1": "team",
                     "P0001": "person"}


def test_default_week_is_the_week_of_the_latest_result(ctx, demo) -> None:
    last = ctx.scalar(select(func.max(Actual.date)).where(
        Actual.date >= demo.start_date, Actual.date <= demo.end_date))
    week = dashboards.default_week(ctx, demo)
    row = demo.weeks[week - 1]
    assert row.start_date <= last <= row.end_date


def test_forecast_curve_runs_from_the_result_to_the_forecast(ctx, demo) -> None:
    p = tracking.progress(ctx, demo, 6)
    for code in ("HQ", "NORTH", "NORTH-T4"):
        c = dashboards.forecast_curve(p, code)
        u = p.unit(code)
        n = p.weeks
        assert c["weeks"] == list(range(n + 1)) and c["week"] == 6
        assert c["actual"][1:7] == [round(v) for v in p.series(code)["actual"]]
        assert c["actual"][0] == 0 and c["actual"][7:] == [None] * (n - 6)
        assert c["red_line"] == [round(u["target"] * v) for v in p.curve.values]
        assert c["red_line"][6] == round(u["red_line"]) and c["red_line"][n] == round(u["target"])
        assert c["target"] == [round(u["target"])] * (n + 1)
        assert c["forecast"][:6] == [None] * 6
        assert c["forecast"][6] == c["forecast_low"][6] == c["forecast_high"][6] == round(u["actual"])
        assert c["forecast"][n] == round(u["forecast"])
        assert c["forecast_low"][n] == round(u["forecast_low"])
        assert c["forecast_high"][n] == round(u["forecast_high"])
        for t in range(6, n + 1):
            assert c["forecast_low"][t] <= c["forecast"][t] <= c["forecast_high"][t]
            # The run-rate forecast follows the pacing curve: F x C(t).
            assert c["forecast"][t] == pytest.approx(u["forecast"] * p.curve.values[t], abs=1)


def test_executive_view_is_the_services_figures(ctx, demo) -> None:
    hq = q.unit_by_code(ctx, "HQ")
    view = dashboards.unit_dashboard(Context(ctx), demo, hq, week=6, with_alignment=True)
    assert _json(view) == view
    assert view["kind"] == "executive" and view["status"] == "ok" and view["week"] == 6
    p = tracking.progress(ctx, demo, 6)
    u = p.unit("HQ")
    assert view["unit"]["target"] == round(u["target"]) and view["unit"]["actual"] == round(u["actual"])
    assert view["unit"]["forecast"] == round(u["forecast"])
    assert view["wmape_now"] == pytest.approx(p.wmape_now, abs=1e-4)
    assert view["plan"] == {"id": p.plan_id, "number": p.plan_number, "status": p.plan_status,
                            "source": p.targets_source}
    regions = [str(p.codes[i]) for i in p.children_rows("HQ")]
    assert sorted(r["code"] for r in view["children"]) == sorted(regions)
    assert [r["rank"] for r in view["children"]] == list(range(1, len(regions) + 1))
    paces = [r["pace"] for r in view["children"]]
    assert paces == sorted(paces, reverse=True)
    assert view["curve"]["code"] == "HQ"
    assert [c["code"] for c in view["curve_choices"]] == ["HQ", *sorted(regions)]
    # Another curve: one of the regions.
    east = dashboards.unit_dashboard(Context(ctx), demo, hq, week=6, curve_code="EAST")
    assert east["curve"]["code"] == "EAST"
    assert east["curve"]["target"][0] == round(p.unit("EAST")["target"])
    # Outside the unit's children, the curve stays the unit's own.
    assert dashboards.unit_dashboard(Context(ctx), demo, hq, week=6,
                                     curve_code="EAST-T1")["curve"]["code"] == "HQ"
    assert view["alignment"] is not None and "dispute_rate" in view["alignment"]
    assert dashboards.unit_dashboard(Context(ctx), demo, hq, week=6)["alignment"] is None


def test_resources_are_the_periods_headcount_and_cost(ctx, demo) -> None:
    view = dashboards.unit_dashboard(Context(ctx), demo, q.unit_by_code(ctx, "HQ"), week=6)
    rows = {r["code"]: r for r in view["resources"]}
    stored = {(name, uid): v for name, uid, v in ctx.execute(
        select(AttributeValue.name, AttributeValue.unit_id, AttributeValue.value).where(
            AttributeValue.period_id == demo.id,
            AttributeValue.name.in_(("headcount", "cost"))))}
    ranked = {r["code"]: r for r in view["children"]}
    assert set(rows) == set(ranked)
    for code, row in rows.items():
        unit = q.unit_by_code(ctx, code)
        assert row["headcount"] == stored[("headcount", unit.id)]
        assert row["cost"] == round(stored[("cost", unit.id)])
        assert row["target"] == ranked[code]["target"] and row["actual"] == ranked[code]["actual"]
        assert row["target_per_head"] == round(row["target"] / row["headcount"])
        assert row["cost_to_target"] == pytest.approx(row["cost"] / row["target"], abs=1e-4)
    assert rows["EAST"]["headcount"] > 0 and rows["EAST"]["cost"] > 0
    chart = view["progress_bars"]
    assert chart["codes"] == sorted(rows)


def test_region_view_ranks_its_teams_and_warns_of_gaps(ctx, demo) -> None:
    north = q.unit_by_code(ctx, "NORTH")
    view = dashboards.unit_dashboard(Context(ctx), demo, north, week=6)
    assert view["kind"] == "region" and "resources" not in view
    codes = {r["code"] for r in view["children"]}
    assert codes == {u.code for u in q.children(ctx, north) if u.active}
    warned = [r["code"] for r in view["gap_warnings"]]
    assert "NORTH-T4" in warned and "NORTH-T1" not in warned  # the demo's lagging team
    assert all(r["gap"] > 0 for r in view["gap_warnings"])
    gaps = [r["gap"] for r in view["gap_warnings"]]
    assert gaps == sorted(gaps, reverse=True)
    assert view["children"][-1]["code"] == "NORTH-T4"  # the slowest pace ranks last
    assert view["curve"]["code"] == "NORTH"


def test_person_view_explains_the_target(ctx, demo) -> None:
    person = q.unit_by_code(ctx, "P0001")
    view = dashboards.unit_dashboard(Context(ctx), demo, person, week=6)
    assert view["kind"] == "person" and view["children"] == []
    ex = view["explanation"]
    assert ex is not None and ex["adds_up"]
    assert ex["target"] == view["unit"]["target"]
    assert sum(f["amount"] for f in ex["factors"]) + ex["bounds_adjustment"] \
        + ex["rounding_adjustment"] == ex["target"]
    assert ex["parent"]["code"] == "EAST-T1"
    assert "letter" in view
    team = dashboards.unit_dashboard(Context(ctx), demo, q.unit_by_code(ctx, "EAST-T1"), week=6)
    assert team["kind"] == "team" and team["explanation"]["target"] == team["unit"]["target"]
    assert {r["code"] for r in team["children"]} >= {"P0001"}


def test_alerts_of_the_subtree_only(ctx, demo) -> None:
    rules = specs.active_version(ctx, "alert_rules", "default")
    unit = q.unit_by_code(ctx, "NORTH-T4")
    alert = Alert(rule="dashtest", unit_id=unit.id, period_id=demo.id, week=6, level="team",
                  severity="high", run=3, metrics={}, label_en="Test alert",
                  label_zh="测试预警", message_en="Behind", message_zh="落后",
                  remedies=[{"key": "support", "message_en": "Send help",
                             "message_zh": "派人支援"}],
                  rules_version_id=rules.id, status="open")
    ctx.add(alert)
    ctx.flush()
    north = dashboards.unit_dashboard(Context(ctx), demo, q.unit_by_code(ctx, "NORTH"), week=6)
    mine = [a for a in north["alerts"] if a["rule"] == "dashtest"]
    assert len(mine) == 1 and mine[0]["unit"] == "NORTH-T4"
    assert mine[0]["remedies"] == [{"key": "support", "message_en": "Send help",
                                    "message_zh": "派人支援"}]
    assert north["alert_counts"]["high"] >= 1
    east = dashboards.unit_dashboard(Context(ctx), demo, q.unit_by_code(ctx, "EAST"), week=6)
    assert not [a for a in east["alerts"] if a["rule"] == "dashtest"]
    assert all(a["unit"].startswith("EAST") or a["unit"].startswith("P") for a in east["alerts"])


def test_no_plan_is_a_status_not_an_error(ctx) -> None:
    from quotaflow.services.seeding import add_period

    period = add_period(ctx, "1901Q1", dt.date(1901, 1, 1), dt.date(1901, 3, 31))
    ctx.flush()
    assert dashboards.default_week(ctx, period) == 1  # no results: the first week
    view = dashboards.unit_dashboard(Context(ctx), period, q.unit_by_code(ctx, "HQ"))
    assert view["status"] == "no_plan" and "no plan" in view["message"]


def test_operations_counts_drafts_problems_flows_and_outbox(ctx) -> None:
    now = utcnow()
    before = dashboards.operations(Context(ctx), ["/"], now=now)
    assert _json(before) == before
    kinds = {k["kind"]: k for k in before["config"]["kinds"]}
    assert kinds["factor_model"]["active"] >= 1 and kinds["flow"]["active"] >= 1

    # A draft newer than the active version waits; an active version that no longer
    # validates is a problem.
    model = specs.active_version(ctx, "factor_model", "default")
    specs.stage_version(ctx, "factor_model", "default", {**model.content, "id": "dash-draft"},
                        None, "dashboard test")
    ctx.add(SpecVersion(kind="form", key="dashtest", version=1, content={"nonsense": True},
                        content_hash="x" * 64, status="active"))
    # An active version of a kind nothing registers (a plugin removed): a problem, no crash.
    ctx.add(SpecVersion(kind="dashtest_gone", key="k", version=1, content={},
                        content_hash="y" * 64, status="active"))
    # A flow task three hours old with a one-hour deadline: overdue.
    flow = {"id": "dashtest-flow", "version": 1, "fields": {"amount": "number"},
            "nodes": [{"id": "start", "kind": "start", "next": "ok"},
                      {"id": "ok", "kind": "approval", "name_en": "Check", "name_zh": "审核",
                       "assignees": [{"user": "cfo"}], "mode": "single", "next": "done",
                       "due_hours": 1},
                      {"id": "done", "kind": "end"}]}
    specs.activate(ctx, specs.create_version(ctx, "flow", "dashtest-flow", flow, None, "t"), None)
    flows.start(ctx, "dashtest-flow", unit=q.unit_by_code(ctx, "EAST"),
                initiator=q.user_by_username(ctx, "head.east"), data={"amount": 1.0},
                subject_type="dashtest", subject_id=1,
                now=now - dt.timedelta(hours=3))
    # A dead delivery.
    outbox.emit(ctx, "alert.raised", {"title_en": "t", "title_zh": "t", "body_en": "b",
                                      "body_zh": "b", "url": "/"},
                to_users=[q.user_by_username(ctx, "ceo").id], key="dashtest-1")
    ctx.flush()
    from quotaflow.store.outbox_models import OutboxDelivery, OutboxEvent

    delivery = ctx.scalar(select(OutboxDelivery).join(OutboxEvent).where(
        OutboxEvent.key.like("dashtest-%")).order_by(OutboxDelivery.id.desc()).limit(1))
    delivery.status, delivery.last_error, delivery.attempts = "failed", "boom", 5
    ctx.flush()

    after = dashboards.operations(Context(ctx), ["/"], now=now)
    kinds = {k["kind"]: k for k in after["config"]["kinds"]}
    assert kinds["factor_model"]["drafts"] == {k["kind"]: k for k in before["config"]["kinds"]
                                               }["factor_model"]["drafts"] + 1
    assert any(d["kind"] == "factor_model" for d in after["config"]["drafts"])
    assert kinds["form"]["problems"] >= 1
    assert any(p["kind"] == "form" and p["key"] == "dashtest" for p in after["config"]["problems"])
    assert {"kind": "dashtest_gone", "key": "k", "code": "unknown_kind"} in [
        {k: p[k] for k in ("kind", "key", "code")} for p in after["config"]["problems"]]
    fl = after["flows"]
    assert fl["open_instances"] == before["flows"]["open_instances"] + 1
    assert fl["overdue_tasks"] == before["flows"]["overdue_tasks"] + 1
    row = next(f for f in fl["by_flow"] if f["flow_key"] == "dashtest-flow")
    assert row == {"flow_key": "dashtest-flow", "running": 1, "draft": 0, "pending_tasks": 1,
                   "overdue_tasks": 1}
    assert any(t["flow_key"] == "dashtest-flow" and t["assignee"] == "cfo"
               and t["overdue_hours"] == pytest.approx(2.0, abs=0.1) for t in fl["overdue"])
    ob = after["outbox"]
    assert ob["totals"]["failed"] == before["outbox"]["totals"]["failed"] + 1
    assert ob["problems"][0]["id"] == delivery.id and ob["problems"][0]["topic"] == "alert.raised"
    # Out of scope: the flow about EAST is not counted for a scope of WEST.
    west = q.unit_by_code(ctx, "WEST")
    scoped = dashboards.flows_waiting(ctx, [west.path], now)
    assert not [f for f in scoped["by_flow"] if f["flow_key"] == "dashtest-flow"]
    assert dashboards.flows_waiting(ctx, [], now)["pending_tasks"] == 0
