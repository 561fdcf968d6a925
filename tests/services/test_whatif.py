"""What-if sandbox: a region's subtree recomputed with other inputs and weights, unsaved."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from plan_support import own_period
from sqlalchemy import func, select, update

from quotaflow.rules import load_model
from quotaflow.services import plans, spec_kinds, specs, whatif
from quotaflow.services.seeding import SEED_DIR
from quotaflow.store import db
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store.models import AttributeValue, AuditEntry, Plan, PlanUnit, Upload

TOTAL = 249_500_000


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session


@pytest.fixture
def plan(ctx):
    """A fresh plan on the plan tests' own period (the demo inputs, topped up)."""
    period = own_period(ctx)
    admin = q.user_by_username(ctx, "admin")
    return plans.create_plan(ctx, admin, period, "balanced", TOTAL, "what-if tests")


def _east(ctx):
    return q.unit_by_code(ctx, "EAST")


def _stored(ctx, plan: Plan, code: str) -> int:
    unit = q.unit_by_code(ctx, code)
    return int(pq.plan_unit(ctx, plan.id, unit.id).target)


def test_nothing_changed_reproduces_the_plan(ctx, plan) -> None:
    box = whatif.run(ctx, _east(ctx), plan)
    base = box.base
    assert base.root.code == "EAST" and base.region_target == _stored(ctx, plan, "EAST")
    assert not base.drift
    assert np.array_equal(box.target, base.plan_target)
    teams = box.rows()
    assert [t["code"] for t in teams] == sorted(t["code"] for t in teams)
    assert all(t["code"].startswith("EAST-T") and t["diff"] == 0 for t in teams)
    assert sum(t["whatif"] for t in teams) == base.region_target
    people = box.rows(teams[0]["row"])
    assert people and all(p["level"] == "person" for p in people)
    assert sum(p["whatif"] for p in people) == teams[0]["whatif"]
    assert not box.changes and not box.weights_changed


def test_weights_move_within_the_band_and_total_100(ctx, plan) -> None:
    # North's teams sit inside their bounds (East's are all at their upper bound, so
    # weights cannot move them there; see the next test).
    base = whatif.open_base(ctx, q.unit_by_code(ctx, "NORTH"), plan)
    band = base.policy.weight_band
    assert band == 10
    keys = base.factor_keys
    asked = {keys[0]: float(base.base_weights[0]) + 50}  # far outside the band
    box = whatif.compute(base, {}, asked)
    assert box.weights.sum() == pytest.approx(100, abs=1e-9)
    assert box.weights[0] == pytest.approx(base.base_weights[0] + band)
    lo, hi = base.band
    assert (box.weights >= lo - 1e-9).all() and (box.weights <= hi + 1e-9).all()
    assert box.weights_changed
    # The region's target is fixed: the teams still add up to it.
    assert sum(t["whatif"] for t in box.rows()) == base.region_target
    assert any(t["diff"] != 0 for t in box.rows())


def test_teams_at_their_bounds_say_so(ctx, plan) -> None:
    box = whatif.compute(whatif.open_base(ctx, _east(ctx), plan), {},
                         {"historical_performance": 40})
    teams = box.rows()
    assert all(t["diff"] == 0 and t["at_bound"] == "upper" for t in teams)


def test_balance_weights_shifts_equally_and_keeps_bands() -> None:
    base = [30, 25, 20, 15, 10]
    out = whatif.balance_weights([34, 25, 20, 15, 10], base, 10)
    assert out.sum() == pytest.approx(100) and out[0] == pytest.approx(34)
    assert np.allclose(out[1:], np.array(base[1:]) - 1)  # the others make room equally
    # The others cannot make room: the moved weight gives way too.
    out = whatif.balance_weights([40, 25, 20, 15, 10], base, 1)
    assert out.sum() == pytest.approx(100) and out[0] == pytest.approx(31)
    out = whatif.balance_weights([0, 0, 0, 0, 0], base, 5)
    assert out.sum() == pytest.approx(100)
    assert (out >= np.array(base) - 5 - 1e-9).all()
    assert np.array_equal(whatif.balance_weights(base, base, 0), np.array(base, dtype=float))


def test_inputs_change_the_teams_and_are_clipped_to_the_limits(ctx, plan) -> None:
    base = whatif.open_base(ctx, _east(ctx), plan)
    row = int(base.rows_of(["EAST-T1"])[0])
    current = float(base.tree.fields["market_potential"][row])
    box = whatif.compute(base, {("EAST-T1", "market_potential"): current * 1.4}, {})
    t1 = next(t for t in box.rows() if t["code"] == "EAST-T1")
    assert t1["whatif"] >= t1["plan"]
    assert sum(t["whatif"] for t in box.rows()) == base.region_target
    [change] = box.changes
    assert change.value == pytest.approx(current * 1.4) and not change.clipped
    # Beyond the policy's max_change (+50%) the value is clipped, and says so.
    box = whatif.compute(base, {("EAST-T1", "market_potential"): str(current * 3)}, {})
    [change] = box.changes
    assert change.clipped and change.value == pytest.approx(current * 1.5)
    # An integer field is rounded; a model max (share 0..1) holds.
    box = whatif.compute(base, {("EAST-T1", "new_city_share"): "7"}, {})
    assert box.changes[0].value == 1.0
    # Blank and unchanged values are no change.
    box = whatif.compute(base, {("EAST-T1", "market_potential"): "",
                                ("EAST-T2", "market_potential"): str(
                                    base.tree.fields["market_potential"][
                                        int(base.rows_of(["EAST-T2"])[0])])}, {})
    assert box.changes == () and np.array_equal(box.target, base.plan_target)


def test_a_person_input_moves_targets_inside_their_team_only(ctx, plan) -> None:
    base = whatif.open_base(ctx, q.unit_by_code(ctx, "NORTH"), plan)
    team_row = int(base.rows_of(["NORTH-T2"])[0])
    people = [str(base.tree.ids[k]) for k in base.children(team_row)]
    box = whatif.compute(base, {(p, "product_fit"): 100 for p in people[:3]}, {})
    changed = {str(base.tree.ids[i]) for i in box.changed_rows()}
    assert changed, "a better product fit moves the team's split"
    assert changed <= set(people)
    assert box.rows(team_row) and sum(r["diff"] for r in box.rows(team_row)) == 0


def test_refuses_units_outside_the_sandbox_and_fields_outside_the_policy(ctx, plan) -> None:
    base = whatif.open_base(ctx, _east(ctx), plan)
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.compute(base, {("NORTH-T1", "market_potential"): 1}, {})
    assert caught.value.code == "unknown_unit"
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.compute(base, {("EAST", "market_potential"): 1}, {})
    assert caught.value.code == "unknown_unit"  # the region's own inputs are not split
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.compute(base, {("EAST-T1", "hist_sales"): 1}, {})
    assert caught.value.code == "unknown_field"
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.compute(base, {("EAST-T1", "market_potential"): "lots"}, {})
    assert caught.value.code == "not_a_number" and "EAST-T1" in str(caught.value)
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.compute(base, {}, {"charisma": 10})
    assert caught.value.code == "unknown_factor"
    with pytest.raises(whatif.WhatIfError) as caught:
        whatif.run(ctx, q.root_unit(ctx), plan)
    assert caught.value.code == "is_root"


def _counts(ctx) -> tuple[int, int, int, int]:
    return tuple(ctx.scalar(select(func.count()).select_from(t))
                 for t in (Plan, PlanUnit, AttributeValue, Upload))


def test_many_what_ifs_save_nothing(ctx, plan) -> None:
    before = _counts(ctx)
    audit_before = ctx.scalar(select(func.max(AuditEntry.id)))
    unit = _east(ctx)
    for k in range(40):
        whatif.run(ctx, unit, plan,
                   inputs={("EAST-T1", "market_potential"): 1e6 * (k + 1),
                           ("EAST-T2", "product_fit"): k},
                   weights={"historical_performance": 25 + k % 10})
    ctx.commit()
    assert _counts(ctx) == before
    assert ctx.scalar(select(func.max(AuditEntry.id))) == audit_before


def test_the_base_is_cached_until_the_database_changes(ctx, plan) -> None:
    unit = _east(ctx)
    first = whatif.open_base(ctx, unit, plan)
    assert whatif.open_base(ctx, unit, plan) is first
    from quotaflow.services import audit

    audit.record(ctx, None, "test_touch", "unit", "EAST")
    ctx.commit()
    assert whatif.open_base(ctx, unit, plan) is not first


def test_snapshot_upload_freezes_the_what_if_as_evidence(ctx, plan, tmp_path) -> None:
    unit = _east(ctx)
    head = q.user_by_username(ctx, "head.east")
    box = whatif.run(ctx, unit, plan, inputs={("EAST-T1", "market_potential"): 9e7},
                     weights={"regional_potential": 30})
    uploads = ctx.scalar(select(func.count()).select_from(Upload))
    plan_rows = ctx.scalar(select(func.count()).select_from(PlanUnit))
    upload = whatif.snapshot_upload(ctx, box, head, storage_dir=tmp_path)
    assert ctx.scalar(select(func.count()).select_from(Upload)) == uploads + 1
    assert ctx.scalar(select(func.count()).select_from(PlanUnit)) == plan_rows
    assert upload.unit_id == unit.id and upload.uploaded_by_id == head.id
    assert upload.original_name.endswith(".csv") and upload.content_type.startswith("text/csv")
    text = (tmp_path / upload.storage_name).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][:3] == ["code", "name_en", "name_zh"]
    assert any(r[:2] == ["EAST-T1", "market_potential"] for r in rows)
    entry = ctx.scalar(select(AuditEntry).where(AuditEntry.action == "whatif_snapshot")
                       .order_by(AuditEntry.id.desc()).limit(1))
    snap = entry.after["snapshot"]
    assert snap["unit"]["code"] == "EAST" and snap["plan"]["id"] == plan.id
    assert entry.after["sha256"] == rows[-1][1]
    assert {c["unit"] for c in snap["changes"]} == {"EAST-T1"}
    assert sum(u["whatif"] for u in snap["units"] if u["level"] == "team") == snap["planned"]


def test_the_plan_is_the_latest_published_else_the_latest(ctx, plan) -> None:
    period = plan.period
    assert whatif.sandbox_plan(ctx, period).id == max(p.id for p in pq.plans(ctx, period.id))


def test_policy_spec_is_validated_against_the_model(ctx) -> None:
    model = load_model(SEED_DIR / "specs" / "factor_model.json")
    good = {"id": "w", "version": 1, "weight_band": 5, "fields": [{"name": "headcount"}]}
    assert whatif.load_policy(good, model).field_names == ("headcount",)
    bad = {"id": "w", "version": 1, "weight_band": 5,
           "fields": [{"name": "nope"}, {"name": "headcount"}, {"name": "headcount"}]}
    with pytest.raises(whatif.WhatIfPolicyError) as caught:
        whatif.load_policy(bad, model)
    assert [i.pointer for i in caught.value.issues] == ["/fields/0/name", "/fields/2/name"]
    with pytest.raises(whatif.WhatIfPolicyError) as caught:
        whatif.load_policy({"id": "w", "version": 1, "weight_band": 500, "fields": []}, model)
    assert caught.value.issues[0].pointer == "/weight_band"
    kind = spec_kinds.get("whatif_policy")
    assert kind is not None and kind.depends_on == ("factor_model",)
    active = specs.active_version(ctx, "whatif_policy", "default")
    assert active is not None
    assert kind.validate(active.content, lambda _k: model, "default") == []


def test_what_if_refuses_the_inputs_the_planner_refuses(ctx, plan) -> None:
    """Both load through the one loader and the one field check: a value out of its
    field's range (stored before the write paths checked) stops both, naming the unit."""
    from quotaflow.services.plan_data import PlanError

    unit = q.unit_by_code(ctx, "EAST-T2")
    where = (AttributeValue.period_id == plan.period_id, AttributeValue.unit_id == unit.id,
             AttributeValue.name == "new_city_share")
    good = ctx.scalar(select(AttributeValue.value).where(*where))
    ctx.execute(update(AttributeValue).where(*where).values(value=55.0))
    ctx.commit()
    whatif.clear_cache()
    try:
        with pytest.raises(PlanError) as planner:
            plans.simulate(ctx, plan.period, TOTAL)
        with pytest.raises(PlanError) as sandbox:
            whatif.open_base(ctx, _east(ctx), plan)
        for caught in (planner, sandbox):
            assert caught.value.code == "out_of_range"
            assert caught.value.params["field"] == "new_city_share"
            assert "EAST-T2" in caught.value.params["units"]
    finally:
        ctx.execute(update(AttributeValue).where(*where).values(value=good))
        ctx.commit()
        whatif.clear_cache()
    assert whatif.open_base(ctx, _east(ctx), plan).root.code == "EAST"
