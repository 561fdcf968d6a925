"""Plans from the database: loading, simulating, saving, explaining, impact preview."""

from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np
import pytest
from plan_support import OWN_PERIOD, own_period
from sqlalchemy import func, select

from quotaflow.services import plans, specs
from quotaflow.services.plan_data import PlanError, load_period_data
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, AuditEntry, OrgUnit, Plan, PlanUnit, SpecVersion

TOTAL = 249_500_000


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session


@pytest.fixture
def period(ctx):
    return own_period(ctx)


def _active_model(session) -> SpecVersion:
    return specs.active_version(session, "factor_model", "default")


def _rows(session, plan_id: int) -> dict[int, tuple[PlanUnit, OrgUnit]]:
    return {u.id: (pu, u) for pu, u in pq.plan_rows(session, plan_id)}


def test_period_data_is_the_active_tree_with_every_model_field(ctx, period) -> None:
    version = _active_model(ctx)
    model = plans.compile_model(version.content)
    data = load_period_data(ctx, period, model)
    active = ctx.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.active))
    assert data.tree.size == active
    assert data.tree.levels == ("company", "region", "team", "person")
    assert set(data.tree.fields) == set(model.field_names)
    east = q.unit_by_code(ctx, "EAST")
    row = data.tree.index["EAST"]
    assert int(data.unit_ids[row]) == east.id
    stored = q.unit_attributes(ctx, east.id, period.id)
    assert data.tree.fields["market_potential"][row] == stored["market_potential"]
    assert str(data.tree.ids[data.tree.parent[row]]) == "HQ"
    assert data.tree.labels["name_zh"][row] == "华东"


def test_missing_required_values_name_the_field_and_the_units(ctx, period) -> None:
    doc = copy.deepcopy(_active_model(ctx).content)
    doc["fields"].append({"name": "plans_test_missing", "type": "number", "min": 0})
    draft = SpecVersion(kind="factor_model", key="plans-test", version=1, content=doc)
    with pytest.raises(PlanError) as caught:
        plans.simulate(ctx, period, TOTAL, model_version=draft)
    error = caught.value
    assert error.code == "missing_values"
    assert error.params["field"] == "plans_test_missing"
    assert error.params["count"] == len(pq.active_unit_columns(ctx).ids)
    assert error.params["units"].startswith("HQ, EAST")  # the first few, by id
    assert "(+" in error.params["units"]
    assert "plans_test_missing" in error.message and OWN_PERIOD in error.message


def test_out_of_range_values_are_refused_with_the_units(ctx, period) -> None:
    doc = copy.deepcopy(_active_model(ctx).content)
    for field in doc["fields"]:
        if field["name"] == "headcount":
            field["max"] = 50
    draft = SpecVersion(kind="factor_model", key="plans-test", version=1, content=doc)
    with pytest.raises(PlanError) as caught:
        plans.simulate(ctx, period, TOTAL, model_version=draft)
    assert caught.value.code == "out_of_range"
    assert caught.value.params["field"] == "headcount"
    assert caught.value.params["units"].split(", ")[0] == "HQ"


@pytest.mark.parametrize("total", [0, -5, "abc", True, None, float("nan"), 1e16])
def test_bad_totals_point_at_the_total(ctx, period, total) -> None:
    with pytest.raises(PlanError) as caught:
        plans.simulate(ctx, period, total)
    assert (caught.value.code, caught.value.pointer) == ("bad_total", "/total")


def test_totals_may_be_typed_with_separators() -> None:
    assert plans.parse_total("249,500,000") == TOTAL
    assert plans.parse_total(" 249_500_000 ") == TOTAL
    assert plans.parse_total(249499999.6) == TOTAL


def test_unknown_scenario_points_at_the_scenario(ctx, period) -> None:
    with pytest.raises(PlanError) as caught:
        plans.simulate(ctx, period, TOTAL, scenario="reckless")
    assert (caught.value.code, caught.value.pointer) == ("unknown_scenario", "/scenario")
    assert "balanced" in caught.value.params["known"]


def test_simulate_runs_three_scenarios_and_saves_nothing(ctx, period) -> None:
    before = ctx.scalar(select(func.count()).select_from(Plan))
    sim = plans.simulate(ctx, period, TOTAL)
    assert list(sim.results) == ["aggressive", "balanced", "conservative"]
    assert ctx.scalar(select(func.count()).select_from(Plan)) == before
    aggressive = {r["code"]: r for r in sim.regions("aggressive")}
    assert any(risk["rule"] == "overload" for risk in aggressive["WEST"]["risks"])
    assert aggressive["WEST"]["metrics"]["load"] > 1
    conservative = sim.summary("conservative")
    assert conservative["planned_total"] < TOTAL
    assert [r["rule"] for r in conservative["plan_risks"]] == ["shortfall"]
    assert conservative["shortfall"] == TOTAL - conservative["planned_total"]
    assert sim.summary("balanced")["planned_total"] == TOTAL


def test_create_plan_persists_every_unit_with_exact_sums(ctx, period) -> None:
    hrbp = q.user_by_username(ctx, "hrbp")
    number = pq.next_plan_number(ctx, period.id)
    plan = plans.create_plan(ctx, hrbp, period, "aggressive", TOTAL, "  first try  ")
    assert (plan.number, plan.scenario, plan.note) == (number, "aggressive", "first try")
    assert plan.model_version_id == _active_model(ctx).id
    assert plan.presets_version_id == specs.active_version(ctx, "scenario_presets", "default").id
    assert plan.risks_version_id == specs.active_version(ctx, "risk_rules", "default").id
    summary = plan.summary
    assert summary["company_total"] == TOTAL
    assert summary["requested_total"] == round(TOTAL * 1.1 / 10000) * 10000
    assert summary["planned_total"] == plan.planned_total
    assert summary["weights"]["regional_potential"] == 40
    overloaded = next(r for r in summary["plan_risks"] if r["rule"] == "overloaded_units")
    assert "WEST" in overloaded["message_en"] and "WEST" in overloaded["message_zh"]

    rows = _rows(ctx, plan.id)
    active = ctx.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.active))
    assert len(rows) == active
    children = defaultdict(int)
    for pu, unit in rows.values():
        if unit.parent_id is not None:
            children[unit.parent_id] += pu.target
    for parent_id, total in children.items():
        assert rows[parent_id][0].target == total, rows[parent_id][1].code
    root = next(pu for pu, u in rows.values() if u.parent_id is None)
    assert root.target == plan.planned_total
    assert summary["requested_total"] + root.bounds_adjustment + root.rounding_adjustment \
        == root.target
    for pu, unit in rows.values():
        if unit.parent_id is not None:
            assert len(pu.factor_amounts) == 5
            assert sum(pu.factor_amounts) + pu.bounds_adjustment + pu.rounding_adjustment \
                == pu.target, unit.code
    west = next(pu for pu, u in rows.values() if u.code == "WEST")
    assert [r["rule"] for r in west.risks][:1] == ["overload"]
    assert west.risks[0]["message_zh"].startswith("WEST（西部）")
    entry = ctx.scalars(select(AuditEntry).where(AuditEntry.action == "create_plan")
                        .order_by(AuditEntry.id.desc())).first()
    assert entry.entity_id == f"{OWN_PERIOD}#{plan.number}"
    assert entry.after["id"] == plan.id and entry.actor_name == "hrbp"


def test_explanations_add_up_at_every_level(ctx, period) -> None:
    plan = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    for code in ("HQ", "EAST", "EAST-T1", "P0001", "WEST-T2"):
        unit = q.unit_by_code(ctx, code)
        ex = plans.plan_explanation(ctx, plan, unit)
        assert ex["adds_up"], code
        stored = pq.plan_unit(ctx, plan.id, unit.id)
        assert ex["target"] == stored.target
        assert sum(c["target"] for c in ex["children"]) in (0, ex["target"])
        if code == "HQ":
            assert ex["requested"] == TOTAL and ex["factors"] == []
            continue
        assert ex["factors"][0]["key"] == "historical_performance"
        assert ex["factors"][0]["label_zh"] == "历史业绩"
        assert ex["factors_total"] + ex["bounds_adjustment"] + ex["rounding_adjustment"] \
            == ex["target"]
        assert sum(f["weight_percent"] for f in ex["factors"]) == 100
        parent = pq.plan_unit(ctx, plan.id, unit.parent_id).target
        assert ex["parent"]["target"] == parent
        for f in ex["factors"]:
            # share among siblings, recovered from the stored amount to within a yuan
            assert 0 <= f["share"] <= 1.0001
            assert abs(f["share"] * parent * f["weight_percent"] / 100 - f["amount"]) <= 1


def test_a_failed_save_writes_nothing(ctx, period, monkeypatch) -> None:
    plans_before = ctx.scalar(select(func.count()).select_from(Plan))
    audit_before = ctx.scalar(select(func.count()).select_from(AuditEntry))

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pq, "insert_plan_units", broken)
    with pytest.raises(RuntimeError):
        plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    assert ctx.scalar(select(func.count()).select_from(Plan)) == plans_before
    assert ctx.scalar(select(func.count()).select_from(AuditEntry)) == audit_before


def test_note_too_long_is_refused(ctx, period) -> None:
    with pytest.raises(PlanError) as caught:
        plans.create_plan(ctx, None, period, "balanced", TOTAL, "x" * 2001)
    assert (caught.value.code, caught.value.pointer) == ("note_too_long", "/note")


def _changed_model(doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    doc["version"] = doc.get("version", 1) + 100
    doc["weights"] = {**doc["weights"], "historical_performance": 40, "regional_potential": 15}
    doc["factors"][0]["label_en"] = "Last year's sales"
    doc["factors"][0]["label_zh"] = "去年业绩"
    return doc


def test_explanations_stay_pinned_to_the_plans_model(ctx, period) -> None:
    original = _active_model(ctx)
    plan = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    east = q.unit_by_code(ctx, "EAST")
    before = plans.plan_explanation(ctx, plan, east)
    changed = specs.create_version(ctx, "factor_model", "default",
                                   _changed_model(original.content), None, "plans test")
    specs.activate(ctx, changed, None)
    ctx.commit()
    try:
        ctx.expire_all()
        again = ctx.get(Plan, plan.id)
        after = plans.plan_explanation(ctx, again, q.unit_by_code(ctx, "EAST"))
        assert after == before
        assert after["factors"][0]["label_en"] == "Historical performance"
        assert after["model"]["version_id"] == original.id
        # A new simulation does use the new model.
        sim = plans.simulate(ctx, period, TOTAL, scenario="balanced")
        assert sim.specs.model_version.id == changed.id
        assert sim.summary("balanced")["weights"]["historical_performance"] == 40
    finally:
        specs.activate(ctx, ctx.get(SpecVersion, original.id), None)
        ctx.commit()
    assert _active_model(ctx).id == original.id


def test_impact_preview_moves_targets_between_regions(ctx, period) -> None:
    plan = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    same = plans.impact_preview(Context(ctx), plan.model_version, plan)
    assert {r.code for r in same.regions} == {"CENTRAL", "EAST", "NE", "NORTH", "SOUTH", "WEST"}
    assert all(r.delta == 0 for r in same.regions)
    draft = _changed_model(plan.model_version.content)
    preview = plans.impact_preview(Context(ctx), draft, plan)
    assert sum(r.delta for r in preview.regions) == 0
    assert preview.company.delta == 0 and preview.company.new_target == TOTAL
    assert any(r.delta != 0 for r in preview.regions)
    for r in preview.regions:
        assert r.new_target - r.old_target == r.delta
        assert r.delta_pct == pytest.approx(r.delta / r.old_target)
    # Nothing is saved by a preview.
    assert ctx.scalar(select(func.count()).select_from(Plan).where(Plan.id > plan.id)) == 0


def test_impact_preview_of_an_invalid_draft_names_the_place(ctx, period) -> None:
    plan = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    draft = copy.deepcopy(plan.model_version.content)
    draft["weights"]["product_fit"] = 99
    with pytest.raises(PlanError) as caught:
        plans.impact_preview(Context(ctx), draft, plan)
    assert caught.value.code == "model_invalid"
    assert caught.value.params["at"] == "/weights"


def test_plan_table_shows_share_and_the_risk_columns(ctx, period) -> None:
    plan = plans.create_plan(ctx, None, period, "aggressive", TOTAL, None)
    hq = q.unit_by_code(ctx, "HQ")
    metrics, rows = plans.plan_table(Context(ctx), plan, pq.plan_rows(ctx, plan.id, parent_id=hq.id))
    assert [m.name for m in metrics] == ["capacity", "load", "growth"]
    assert [m.percent for m in metrics] == [False, True, True]
    west = next(r for r in rows if r.unit.code == "WEST")
    capacity = q.unit_attributes(ctx, west.unit.id, period.id)
    assert west.metrics["capacity"] == pytest.approx(
        capacity["headcount"] * capacity["ramped_productivity"])
    assert west.metrics["load"] == pytest.approx(west.target / west.metrics["capacity"])
    assert west.metrics["load"] > 1
    assert sum(r.share for r in rows) == pytest.approx(1)
    assert np.isclose(west.share, west.target / plan.planned_total)


def test_units_in_scope_only(ctx, period) -> None:
    plan = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    east = q.unit_by_code(ctx, "EAST")
    records = plans.unit_records(Context(ctx), plan, [east.path])
    assert records[0]["code"] == "EAST"
    codes = {r["code"] for r in records}
    expected = ctx.scalar(select(func.count()).select_from(OrgUnit)
                          .where(OrgUnit.path.startswith(east.path)))
    assert len(codes) == expected and "WEST" not in codes
    summary = plans.summary_for_scope(Context(ctx), plan, [east.path])
    assert "plan_risks" not in summary
    hq = q.unit_by_code(ctx, "HQ")
    assert "plan_risks" in plans.summary_for_scope(Context(ctx), plan, [hq.path])


def test_values_do_not_leak_between_periods(ctx) -> None:
    older = q.period_by_code(ctx, "2026Q3")
    stored = ctx.scalar(select(func.count()).select_from(AttributeValue)
                        .where(AttributeValue.period_id == older.id))
    if stored:
        pytest.skip("2026Q3 has inputs in this database")
    with pytest.raises(PlanError) as caught:
        plans.simulate(ctx, older, TOTAL)
    assert caught.value.code == "missing_values"
    assert caught.value.params["period"] == "2026Q3"


def test_a_taken_plan_number_is_retried_with_the_next(ctx, period, monkeypatch) -> None:
    first = plans.create_plan(ctx, None, period, "balanced", TOTAL, None)
    real = pq.next_plan_number
    calls = []

    def stale(session, period_id):  # another worker saved plan `first` meanwhile
        calls.append(period_id)
        return first.number if len(calls) == 1 else real(session, period_id)

    monkeypatch.setattr(pq, "next_plan_number", stale)
    second = plans.create_plan(ctx, None, period, "conservative", TOTAL, None)
    assert len(calls) == 2
    assert second.number > first.number
    assert len(pq.plan_rows(ctx, second.id)) == len(pq.plan_rows(ctx, first.id))
