"""The allocation cascade on small, hand-checked trees, the unit tree, and the seed data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quotaflow.rules.allocation import Plan, allocate
from quotaflow.rules.model import load_model
from quotaflow.rules.rounding import round_groups, round_rows
from quotaflow.rules.scoring import AllocationError, score
from quotaflow.rules.tree import TreeError, build_tree, load_units_csv, tree_from_parent_ids

ROOT = Path(__file__).resolve().parents[2]


def model(factors: list[tuple[str, str, str]] | None = None, weights: dict | None = None,
          policies: dict | None = None, scale: str | None = None):
    """A model over fields a, b, s (0-100); factors as (key, expression, normalisation)."""
    factors = factors or [("fa", "a", "share")]
    docs = []
    for key, expr, norm in factors:
        names = [n for n in ("a", "b", "s") if n in expr]
        doc = {"key": key, "fields": names, "expression": expr, "normalisation": norm}
        if scale and norm == "score":
            doc["scale"], doc["fields"] = scale, sorted({*names, scale})
        docs.append(doc)
    return load_model({
        "id": "t", "version": 1, "levels": ["company", "region", "team", "person"],
        "fields": [{"name": "a", "type": "number", "min": 0},
                   {"name": "b", "type": "number", "min": 0},
                   {"name": "s", "type": "number", "min": 0, "max": 100}],
        "factors": docs,
        "weights": weights or {factors[0][0]: 100},
        "policies": policies or {},
    })


def flat(values: dict[str, list[float]], n: int | None = None):
    """Root 'HQ' with children c0..c{n-1}."""
    n = n or len(next(iter(values.values())))
    ids = ["HQ"] + [f"c{i}" for i in range(n)]
    fields = {k: [0.0, *v] for k, v in values.items()}
    for k in ("a", "b", "s"):
        fields.setdefault(k, [0.0] * (n + 1))
    return build_tree(ids, [-1] + [0] * n, fields)


def targets(plan: Plan) -> dict[str, int]:
    return dict(zip(plan.tree.ids.tolist(), plan.target.tolist(), strict=True))


def assert_explained(plan: Plan) -> None:
    total = (plan.requested + plan.factor_amounts.sum(axis=1) + plan.bounds_adjustment
             + plan.rounding_adjustment)
    assert np.array_equal(total, plan.target)


# -- splitting -----------------------------------------------------------------------

def test_share_split_is_exact() -> None:
    plan = allocate(model(), flat({"a": [1, 2, 3, 4]}), 1000)
    assert targets(plan) == {"HQ": 1000, "c0": 100, "c1": 200, "c2": 300, "c3": 400}
    assert plan.infeasible == () and plan.shortfall == 0
    assert_explained(plan)


def test_weighted_factors_and_explanation() -> None:
    m = model([("fa", "a", "share"), ("fb", "b", "share")], {"fa": 60, "fb": 40})
    plan = allocate(m, flat({"a": [1, 1], "b": [1, 3]}), 10_000)
    # c0: 0.6 * 0.5 + 0.4 * 0.25 = 0.4
    assert targets(plan)["c0"] == 4000 and targets(plan)["c1"] == 6000
    ex = plan.explain("c1")
    assert [f["amount"] for f in ex["factors"]] == [3000, 3000]
    assert ex["bounds_adjustment"] == 0 and ex["rounding_adjustment"] == 0
    assert ex["factors"][1]["share"] == pytest.approx(0.75)
    assert ex["parent"] == "HQ" and ex["parent_target"] == 10_000
    root = plan.explain("HQ")
    assert root["requested"] == 10_000 and root["target"] == 10_000


def test_score_normalisation_with_and_without_scale() -> None:
    plain = allocate(model([("fs", "s", "score")]), flat({"s": [50, 100, 50]}), 400)
    assert list(targets(plain).values())[1:] == [100, 200, 100]
    scaled = allocate(model([("fs", "s", "score")], scale="a"),
                      flat({"s": [50, 100], "a": [4, 1]}), 300)
    assert list(targets(scaled).values())[1:] == [200, 100]  # 50*4 vs 100*1


def test_rank_normalisation_averages_ties() -> None:
    plan = allocate(model([("fr", "a", "rank")]), flat({"a": [10, 30, 30, 5]}), 1000)
    # ranks: 10 -> 2, 30 -> 3.5 (tie of 3 and 4), 5 -> 1; total 10
    assert list(targets(plan).values())[1:] == [200, 350, 350, 100]


def test_zero_sum_group_falls_back_to_equal_shares() -> None:
    m = model([("fa", "a", "share"), ("fb", "b", "share")], {"fa": 50, "fb": 50})
    plan = allocate(m, flat({"a": [0, 0], "b": [1, 3]}), 800)
    # fa: equal shares (0.5 each); fb: 0.25 / 0.75
    assert list(targets(plan).values())[1:] == [300, 500]
    ex = plan.explain("c0")
    assert ex["factors"][0]["equal_share_fallback"] is True
    assert any("equal shares" in note for note in ex["notes"])
    assert ex["factors"][1]["equal_share_fallback"] is False


def test_cascade_over_levels() -> None:
    # HQ -> R1 (a=3), R2 (a=1); R1 -> T1 (a=1), T2 (a=2)
    tree = tree_from_parent_ids(["HQ", "R1", "R2", "T1", "T2"], ["", "HQ", "HQ", "R1", "R1"],
                                {"a": [4, 3, 1, 1, 2], "b": [0] * 5, "s": [0] * 5})
    plan = allocate(model(), tree, 1200)
    assert targets(plan) == {"HQ": 1200, "R1": 900, "R2": 300, "T1": 300, "T2": 600}
    assert list(plan.tree.levels) == ["company", "region", "team"]  # named by the model


# -- bounds --------------------------------------------------------------------------

def test_bounds_are_enforced_and_the_rest_re_spread() -> None:
    m = model(policies={"default": {"upper": "b"}})
    plan = allocate(m, flat({"a": [1, 1, 1, 1], "b": [100, 1000, 1000, 1000]}), 1000)
    t = targets(plan)
    assert t["c0"] == 100 and t["c1"] == t["c2"] == t["c3"] == 300
    ex = plan.explain("c0")
    assert sum(f["amount"] for f in ex["factors"]) == 250
    assert ex["bounds_adjustment"] == -150
    ex1 = plan.explain("c1")
    assert ex1["bounds_adjustment"] == 50
    assert_explained(plan)


def test_lower_bounds_lift_units() -> None:
    m = model(policies={"default": {"lower": "b"}})
    plan = allocate(m, flat({"a": [1, 9], "b": [500, 0]}), 1000)
    assert list(targets(plan).values())[1:] == [500, 500]


def test_bounds_are_rounded_inward_so_rounding_keeps_them() -> None:
    m = model(policies={"default": {"lower": "b", "upper": "b * 1.2", "rounding_unit": 100}})
    plan = allocate(m, flat({"a": [1, 1, 1], "b": [1050, 990, 2000]}), 4200)
    t = plan.target[1:]
    assert np.all(t % 100 == 0)
    assert plan.lower[1:].tolist() == [1100, 1000, 2000]
    assert plan.upper[1:].tolist() == [1200, 1100, 2400]
    assert np.all((plan.lower[1:] <= t) & (t <= plan.upper[1:]))
    assert t.sum() == 4200 and plan.infeasible == ()


def test_too_narrow_interval_is_pinned() -> None:
    # [1010, 1090] holds no multiple of 100: the unit is pinned to 1090.
    m = model(policies={"default": {"lower": "b", "upper": "b + 80", "rounding_unit": 100}})
    plan = allocate(m, flat({"a": [1, 1], "b": [1010, 5000]}), 6090)
    assert targets(plan)["c0"] == 1090 and targets(plan)["c1"] == 5000
    assert plan.lower[1] == plan.upper[1] == 1090 and plan.infeasible == ()


def test_upper_infeasible_group_is_reported_with_shortfall() -> None:
    # Bottom-up: the root can only take 300 + 200; the total is cut and reported.
    m = model(policies={"default": {"upper": "b"}})
    plan = allocate(m, flat({"a": [1, 1], "b": [300, 200]}), 1000)
    assert plan.planned_total == 500 and plan.shortfall == 500
    (x,) = plan.infeasible
    assert (x.unit, x.kind, x.shortfall, x.upper) == ("HQ", "total_short", 500, 500)
    assert list(targets(plan).values())[1:] == [300, 200]


def test_lower_infeasible_total_is_reported() -> None:
    m = model(policies={"default": {"lower": "b"}})
    plan = allocate(m, flat({"a": [1, 1], "b": [700, 600]}), 1000)
    (x,) = plan.infeasible
    assert x.kind == "total_excess" and x.shortfall == 300
    assert plan.planned_total == 1300 and plan.shortfall == -300


def test_infeasible_inner_node_is_reported_not_hidden() -> None:
    # R1 is locked at 1000 but its teams can take 400 at most: R1 keeps its lock, its
    # children exceed their uppers, and R1 is reported with the 600 shortfall.
    tree = tree_from_parent_ids(["HQ", "R1", "R2", "T1", "T2"], ["", "HQ", "HQ", "R1", "R1"],
                                {"a": [0, 1, 1, 1, 3], "b": [0, 1e9, 1e9, 100, 300],
                                 "s": [0] * 5})
    m = model(policies={"default": {"upper": "b"}})
    plan = allocate(m, tree, 3000, locks={"R1": 1000})
    t = targets(plan)
    assert t["R1"] == 1000 and t["R2"] == 2000 and t["T1"] + t["T2"] == 1000
    (x,) = plan.infeasible
    assert (x.unit, x.kind, x.target, x.upper, x.shortfall) == ("R1", "above_upper", 1000,
                                                                400, 600)
    assert x.as_dict()["upper"] == 400
    assert_explained(plan)


def test_parent_limited_by_what_its_children_can_take() -> None:
    tree = tree_from_parent_ids(["HQ", "R1", "R2", "T1", "T2", "T3"],
                                ["", "HQ", "HQ", "R1", "R1", "R2"],
                                {"a": [0, 9, 1, 1, 1, 1], "b": [0, 1e9, 1e9, 100, 200, 1e9],
                                 "s": [0] * 6})
    plan = allocate(model(policies={"default": {"upper": "b"}}), tree, 1000)
    t = targets(plan)
    assert t["R1"] == 300 and t["R2"] == 700  # R1's teams cap it at 300
    assert plan.infeasible == ()


def test_children_limits_win_over_a_parents_own_bound() -> None:
    # R1 must get at least 500 (its own lower bound) but its teams can take 300: R1
    # gets 300 and the broken bound is reported at R1 with the 200 gap.
    tree = tree_from_parent_ids(["HQ", "R1", "R2", "T1", "T2", "T3"],
                                ["", "HQ", "HQ", "R1", "R1", "R2"],
                                {"a": [0, 1, 1, 1, 1, 1], "b": [0, 1e9, 1e9, 100, 200, 1e9],
                                 "s": [0, 50, 0, 0, 0, 0]})
    m = model(policies={"default": {"upper": "b", "lower": "s * 10"}})
    plan = allocate(m, tree, 1000)
    assert targets(plan)["R1"] == 300 and targets(plan)["R2"] == 700
    (x,) = plan.infeasible
    assert (x.unit, x.kind, x.shortfall, x.lower) == ("R1", "children_short", 200, 500)
    assert plan.infeasible_count == 1


def test_own_bound_conflict_is_reported() -> None:
    m = model(policies={"default": {"lower": "a * 2", "upper": "b"}})
    plan = allocate(m, flat({"a": [100, 100], "b": [150, 1000]}), 600)
    kinds = {(x.unit, x.kind) for x in plan.infeasible}
    assert ("c0", "bounds_conflict") in kinds
    assert targets(plan)["c0"] <= 150  # the upper bound wins


# -- locks ---------------------------------------------------------------------------

def test_locked_units_keep_their_value_and_the_rest_is_re_spread() -> None:
    plan = allocate(model(), flat({"a": [1, 1, 2]}), 1000, locks={"c0": 123})
    t = targets(plan)
    assert t["c0"] == 123 and t["c1"] + t["c2"] == 877
    assert plan.locked.tolist() == [False, True, False, False]
    assert any("locked" in n for n in plan.explain("c0")["notes"])
    assert_explained(plan)


def test_locks_from_the_model_policy() -> None:
    m = model(policies={"region": {"locks": {"c1": 400}}})
    tree = flat({"a": [1, 1]})
    assert targets(allocate(m, tree, 1000))["c1"] == 400


def test_lock_errors() -> None:
    tree = flat({"a": [1, 1]})
    with pytest.raises(AllocationError, match="not in the data"):
        allocate(model(), tree, 100, locks={"zz": 1})
    with pytest.raises(AllocationError, match="root"):
        allocate(model(), tree, 100, locks={"HQ": 1})
    with pytest.raises(AllocationError, match="level"):
        allocate(model(policies={"team": {"locks": {"c0": 1}}}), tree, 100)


def test_locks_above_the_parent_are_reported() -> None:
    plan = allocate(model(), flat({"a": [1, 1, 1]}), 1000, locks={"c0": 700, "c1": 600})
    assert targets(plan) == {"HQ": 1300, "c0": 700, "c1": 600, "c2": 0}  # locks fix the sum; the total moves, reported
    assert plan.infeasible[0].kind == "total_excess"


# -- rounding ------------------------------------------------------------------------

def test_largest_remainder_with_deterministic_tie_break() -> None:
    m = model(policies={"default": {"rounding_unit": 10}})
    plan = allocate(m, flat({"a": [1, 1, 1]}), 100)
    # 33.3 each: the one extra 10 goes to the lowest id on a tie.
    assert list(targets(plan).values())[1:] == [40, 30, 30]
    assert np.all(np.abs(plan.rounding_adjustment) < 10)


def test_parent_not_a_multiple_of_the_unit() -> None:
    m = model(policies={"default": {"rounding_unit": 100}})
    plan = allocate(m, flat({"a": [1, 2, 3, 4]}), 1037)
    t = plan.target[1:]
    assert t.sum() == 1037
    assert np.count_nonzero(t % 100) == 1  # the odd 37 yuan go to one unit
    assert np.all(np.abs(t - plan.continuous[1:]) < 100)


def test_round_rows_and_groups_primitives() -> None:
    out = round_rows(np.array([[1.5, 1.5, 1.0], [0.2, 0.2, 0.6]]), np.array([4.0, 1.0]))
    assert out.tolist() == [[2, 1, 1], [0, 0, 1]]
    x = np.array([2.5, 2.5, 5.0, 0.4, 0.6])
    g = np.array([0, 0, 0, 1, 1])
    res = round_groups(x, g, np.array([10.0, 1.0]), 1, np.zeros(5), np.full(5, np.inf),
                       np.zeros(5, bool), np.array([True, True]))
    assert res.tolist() == [3, 2, 5, 0, 1]  # a tie goes to the first in input (id) order


# -- errors in data ------------------------------------------------------------------

def test_negative_measure_names_the_unit() -> None:
    m = model([("fd", "a - b", "share")])
    with pytest.raises(AllocationError) as info:
        allocate(m, flat({"a": [5, 1], "b": [1, 3]}), 100)
    assert info.value.unit == "c1" and info.value.factor == "fd"


def test_score_above_100_and_runtime_error_name_the_unit() -> None:
    tree = flat({"a": [5, 1], "b": [1, 0]})
    with pytest.raises(AllocationError, match="above 100") as info:
        allocate(model([("fs", "a * 30", "score")]), tree, 100)
    assert info.value.unit == "c0"
    with pytest.raises(AllocationError) as info:
        allocate(model([("fd", "a / b", "share")]), tree, 100)
    assert info.value.unit == "c1"


def test_bad_total() -> None:
    with pytest.raises(AllocationError):
        allocate(model(), flat({"a": [1]}), -5)


def test_tree_errors() -> None:
    f = {"a": [1, 1, 1], "b": [0, 0, 0], "s": [0, 0, 0]}
    with pytest.raises(TreeError, match="more than one root"):
        build_tree(["A", "B", "C"], [-1, -1, 0], f)
    with pytest.raises(TreeError, match="cycle"):
        build_tree(["A", "B", "C"], [-1, 2, 1], f)
    with pytest.raises(TreeError, match="duplicate"):
        build_tree(["A", "B", "B"], [-1, 0, 0], f)
    with pytest.raises(TreeError, match="unknown parent"):
        tree_from_parent_ids(["A", "B", "C"], ["", "A", "Z"], f)
    with pytest.raises(TreeError, match="level"):
        build_tree(["A", "B", "C"], [-1, 0, 0], f, level=["co", "region", "team"])


CSV = """id,parent,level,a,b,s
HQ,,company,0,0,0
R1,HQ,region,1,2,50
R2,HQ,region,3,4,60
"""


def test_units_csv(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text(CSV, encoding="utf-8")
    tree = load_units_csv(path, model())
    assert tree.ids.tolist() == ["HQ", "R1", "R2"] and tree.levels == ("company", "region")
    bad = CSV.replace("R2,HQ,region,3,4,60", "R2,HQ,region,3,x,60")
    with pytest.raises(TreeError) as info:
        load_units_csv(bad.splitlines(), model())
    assert (info.value.row, info.value.column) == (4, "b")
    out_of_range = CSV.replace("R1,HQ,region,1,2,50", "R1,HQ,region,1,2,150")
    with pytest.raises(TreeError) as info:
        load_units_csv(out_of_range.splitlines(), model())
    assert (info.value.row, info.value.column) == (3, "s")
    with pytest.raises(TreeError) as info:
        load_units_csv(CSV.replace("HQ,region", "HQ,district", 1).splitlines(), model())
    assert (info.value.row, info.value.column) == (3, "level")
    with pytest.raises(TreeError, match="missing required field column 's'"):
        load_units_csv([line.rsplit(",", 1)[0] for line in CSV.splitlines()], model())


def test_scores_are_reusable() -> None:
    m = model()
    tree = flat({"a": [1, 3]})
    s = score(m, tree)
    assert np.array_equal(allocate(m, tree, 400, scores=s).target, allocate(m, tree, 400).target)


# -- the seed data -------------------------------------------------------------------

def test_default_model_on_the_seed_company() -> None:
    m = load_model(ROOT / "quotaflow" / "seed_data" / "specs" / "factor_model.json")
    tree = load_units_csv(ROOT / "quotaflow" / "seed_data" / "units.csv", m)
    total = json.loads((ROOT / "quotaflow" / "seed_data" / "company.json").read_text())["company_target_2026Q4"]
    plan = allocate(m, tree, total)
    assert plan.planned_total == total and plan.infeasible == ()
    assert tree.levels == ("company", "region", "team", "person")
    assert sorted(tree.ids[tree.by_depth[1]].tolist()) == sorted(
        ["EAST", "SOUTH", "NORTH", "CENTRAL", "WEST", "NE"])
    nonroot = tree.parent >= 0
    sums = np.bincount(tree.parent[nonroot], weights=plan.target[nonroot], minlength=tree.size)
    internal = tree.n_children > 0
    assert np.array_equal(sums[internal].astype(np.int64), plan.target[internal])
    regions = plan.target[tree.by_depth[1]]
    assert np.all(regions % 10_000 == 0)
    assert_explained(plan)
    # New units (no sales last year) still get a target, bounded by their capacity.
    new = np.flatnonzero(nonroot & (tree.fields["hist_sales"] == 0))
    assert len(new) and np.all(plan.target[new] > 0)
