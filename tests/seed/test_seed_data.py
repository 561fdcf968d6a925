"""The demo company in quotaflow/seed_data/: deterministic, internally consistent, and shaped like the case."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

SEED_DIR = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data"
FILES = ("company.json", "org_units.csv", "attributes.csv", "units.csv", "history.csv",
         "weekly_history.csv", "actuals.csv", "users.csv")
ATTRIBUTES = ["hist_sales", "prev_quarter_sales", "market_potential", "new_city_share",
              "headcount", "avg_tenure_months", "ramped_productivity", "product_fit",
              "competitor_coverage", "cost"]
SUMMED = ("hist_sales", "prev_quarter_sales", "market_potential", "headcount", "cost")
PAST = ("2025Q4", "2026Q1", "2026Q2", "2026Q3")
LEVELS = ("company", "region", "team", "person")
GROWTH = 1.35  # the case's "grow 40%": suggested target vs last year's same quarter


def load_generator():
    path = SEED_DIR / "generate.py"
    spec = importlib.util.spec_from_file_location("quotaflow_seed_generate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(name: str) -> list[dict]:
    with (SEED_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def header(name: str) -> list[str]:
    with (SEED_DIR / name).open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh))


@pytest.fixture(scope="module")
def org():
    units = read("org_units.csv")
    return {
        "units": units,
        "by_code": {u["code"]: u for u in units},
        "children": _children(units),
        "attrs": {a["unit_code"]: a for a in read("attributes.csv")},
    }


def _children(units):
    children = defaultdict(list)
    for u in units:
        if u["parent_code"]:
            children[u["parent_code"]].append(u["code"])
    return children


def _persons_under(org, code):
    kids = org["children"].get(code)
    if not kids:
        return [code]
    return [p for k in kids for p in _persons_under(org, k)]


def test_regenerating_gives_identical_bytes(tmp_path):
    written = load_generator().generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SEED_DIR / name).read_bytes(), name


def test_company_json(org):
    company = json.loads((SEED_DIR / "company.json").read_text("utf-8"))
    assert company["company"] == {"code": "HQ", "name_en": "QuotaFlow Demo Co.",
                                  "name_zh": "演示科技有限公司"}
    assert [lv["key"] for lv in company["levels"]] == list(LEVELS)
    assert [lv["alias_zh"] for lv in company["levels"]] == ["战略", "战区", "战队", "战士"]
    periods = {p["code"]: p for p in company["periods"]}
    assert list(periods) == [*PAST, "2026Q4"]
    assert periods["2026Q4"] == {"code": "2026Q4", "start": "2026-10-01", "end": "2026-12-31"}
    assert company["planning_period"] == "2026Q4" and company["currency"] == "CNY"
    hist = int(org["attrs"]["HQ"]["hist_sales"])
    assert company["company_target_2026Q4"] == pytest.approx(GROWTH * hist, rel=0.005)


def test_org_structure(org):
    units = org["units"]
    assert header("org_units.csv") == ["code", "parent_code", "level", "name_en", "name_zh",
                                       "city_en", "city_zh", "new_city", "opened"]
    assert len({u["code"] for u in units}) == len(units)
    seen = set()
    for u in units:  # parent before child, one level down
        assert (u["parent_code"] == "") == (u["level"] == "company")
        if u["parent_code"]:
            assert u["parent_code"] in seen
            parent = org["by_code"][u["parent_code"]]
            assert LEVELS.index(u["level"]) == LEVELS.index(parent["level"]) + 1
        seen.add(u["code"])
        assert re.fullmatch(r"\d{4}Q[1-4]", u["opened"]) and u["opened"] <= "2026Q3"
        has_city = u["level"] in ("team", "person")
        assert bool(u["city_en"]) == has_city and bool(u["city_zh"]) == has_city
        if u["level"] == "person":
            team = org["by_code"][u["parent_code"]]
            assert (u["city_en"], u["new_city"]) == (team["city_en"], team["new_city"])
            assert u["opened"] >= team["opened"]
    assert [u["level"] for u in units] == sorted((u["level"] for u in units), key=LEVELS.index)
    persons = [u["code"] for u in units if u["level"] == "person"]
    assert 450 <= len(persons) <= 510
    assert persons == [f"P{i:04d}" for i in range(1, len(persons) + 1)]
    regions = org["children"]["HQ"]
    assert regions == ["EAST", "SOUTH", "NORTH", "CENTRAL", "WEST", "NE"]
    for region in regions:
        teams = org["children"][region]
        assert 4 <= len(teams) <= 6
        assert teams == [f"{region}-T{i}" for i in range(1, len(teams) + 1)]
        assert all(org["children"][t] for t in teams)


def test_attributes_and_units_files_agree(org):
    assert header("attributes.csv") == ["period", "unit_code", *ATTRIBUTES]
    assert header("units.csv") == ["id", "parent", "level", "name_en", "name_zh", *ATTRIBUTES]
    attrs = read("attributes.csv")
    assert [a["unit_code"] for a in attrs] == [u["code"] for u in org["units"]]
    assert {a["period"] for a in attrs} == {"2026Q4"}
    for row, unit in zip(read("units.csv"), org["units"], strict=True):
        assert (row["id"], row["parent"], row["level"]) == (unit["code"], unit["parent_code"],
                                                            unit["level"])
        assert all(row[c] == org["attrs"][unit["code"]][c] for c in ATTRIBUTES)


def test_summed_columns_roll_up_exactly(org):
    for parent, kids in org["children"].items():
        for col in SUMMED:
            total = sum(int(org["attrs"][k][col]) for k in kids)
            assert int(org["attrs"][parent][col]) == total, (parent, col)


def test_person_values_and_means(org):
    for u in org["units"]:
        a = org["attrs"][u["code"]]
        assert 0 <= float(a["new_city_share"]) <= 1
        assert 0 <= float(a["product_fit"]) <= 100 and 0 <= float(a["competitor_coverage"]) <= 100
        assert int(a["market_potential"]) > 0 and int(a["cost"]) > 0
        persons = _persons_under(org, u["code"])
        tenure = sum(int(org["attrs"][p]["avg_tenure_months"]) for p in persons) / len(persons)
        assert float(a["avg_tenure_months"]) == pytest.approx(tenure, abs=0.051)
        prod = sum(int(org["attrs"][p]["ramped_productivity"]) for p in persons) / len(persons)
        assert int(a["ramped_productivity"]) == pytest.approx(prod, abs=1)
        if u["level"] in ("team", "person"):
            assert a["new_city_share"] == u["new_city"]
        else:  # potential-weighted
            pot = [int(org["attrs"][p]["market_potential"]) for p in persons]
            share = sum(w for w, p in zip(pot, persons, strict=True)
                        if org["by_code"][p]["new_city"] == "1") / sum(pot)
            assert float(a["new_city_share"]) == pytest.approx(share, abs=0.0001)


def test_history_rolls_up_and_matches_attributes(org):
    rows = read("history.csv")
    assert header("history.csv") == ["unit_code", "period", "sales"]
    sales = {(r["unit_code"], r["period"]): int(r["sales"]) for r in rows}
    assert len(sales) == len(rows)
    for u in org["units"]:
        for period in PAST:
            key = (u["code"], period)
            if u["level"] in ("team", "person") and u["opened"] > period:
                assert key not in sales  # did not exist yet
                continue
            assert key in sales, key
            if u["code"] in org["children"]:
                kids = [sales.get((k, period), 0) for k in org["children"][u["code"]]]
                assert sales[key] == sum(kids), key
        a = org["attrs"][u["code"]]
        assert int(a["hist_sales"]) == sales.get((u["code"], "2025Q4"), 0)
        assert int(a["prev_quarter_sales"]) == sales.get((u["code"], "2026Q3"), 0)
    q4, q1 = sales[("HQ", "2025Q4")], sales[("HQ", "2026Q1")]
    assert q4 > q1  # Q4 is the strong quarter
    assert 170e6 <= q4 <= 215e6  # about 480 people x 400k


def test_weekly_history_sums_to_quarter_sales(org):
    quarter = {(r["unit_code"], r["period"]): int(r["sales"]) for r in read("history.csv")}
    totals, weeks = defaultdict(int), defaultdict(list)
    for r in read("weekly_history.csv"):
        assert int(r["sales"]) >= 0
        totals[(r["unit_code"], r["period"])] += int(r["sales"])
        weeks[(r["unit_code"], r["period"])].append(int(r["week"]))
    persons = {(u, p) for (u, p) in quarter if org["by_code"][u]["level"] == "person"}
    assert set(totals) == persons
    for key in persons:
        assert weeks[key] == list(range(1, 14)) and totals[key] == quarter[key], key


def _team_pace(org, reference):
    """Cumulative actual / pace of a reference target linear in days, per team, weeks 1..6
    (week 1, Thursday 1 October to Sunday, has four days; a 13-week quarter is 91 days)."""
    team_of = {u["code"]: u["parent_code"] for u in org["units"] if u["level"] == "person"}
    weekly = defaultdict(lambda: [0] * 6)
    for r in read("actuals.csv"):
        weekly[team_of[r["unit_code"]]][int(r["week"]) - 1] += int(r["sales"])
    return {team: [sum(values[:n]) / (reference[team] * (4 + 7 * (n - 1)) / 91)
                   for n in range(1, 7)]
            for team, values in weekly.items() if reference[team]}


def run_rate_reference(org):
    """The README's reference target: company target split by share of 2026Q3 sales."""
    company = json.loads((SEED_DIR / "company.json").read_text("utf-8"))["company_target_2026Q4"]
    prev = {code: int(a["prev_quarter_sales"]) for code, a in org["attrs"].items()}
    return {code: company * value / prev["HQ"] for code, value in prev.items()}


def same_growth_reference(org):
    """The old Excel way: last year's same quarter x 1.35 for everyone."""
    return {code: GROWTH * int(a["hist_sales"]) for code, a in org["attrs"].items()}


def test_actuals_cover_six_weeks_of_every_person(org):
    rows = read("actuals.csv")
    assert header("actuals.csv") == ["unit_code", "week", "date", "sales"]
    persons = [u["code"] for u in org["units"] if u["level"] == "person"]
    assert sorted((r["unit_code"], int(r["week"])) for r in rows) == sorted(
        (p, w) for p in persons for w in range(1, 7))
    for r in rows:
        # The Sunday that ends the period's ISO week (the quarter starts on a Thursday).
        end = date(2026, 10, 4) + timedelta(days=7 * (int(r["week"]) - 1))
        assert r["date"] == end.isoformat() and int(r["sales"]) >= 0


def test_lagging_and_ahead_teams(org):
    pace = _team_pace(org, run_rate_reference(org))
    lagging = [t for t, p in pace.items() if p[4] < 0.7 and p[5] < 0.7]
    assert len(lagging) == 1
    region = org["by_code"][lagging[0]]["parent_code"]
    ahead = [t for t in org["children"][region] if min(pace[t][4:]) > 1.1]
    assert len(ahead) == 1
    readme = (SEED_DIR / "README.md").read_text("utf-8")
    assert lagging[0] in readme and ahead[0] in readme
    others = [p[5] for t, p in pace.items() if t not in (lagging[0], *ahead)]
    assert all(0.85 <= p <= 1.1 for p in others)
    # Still true when the targets are set the old way (same growth for everyone).
    old_way = _team_pace(org, same_growth_reference(org))
    assert max(old_way[lagging[0]][4:]) < 0.7 and min(old_way[ahead[0]][4:]) > 1.0


def test_case_features(org):
    attrs, regions = org["attrs"], org["children"]["HQ"]

    def per_head(code, col):
        return int(attrs[code][col]) / int(attrs[code]["headcount"])

    def top(key):
        return max(regions, key=key)

    assert top(lambda r: per_head(r, "market_potential")) == "WEST"
    assert top(lambda r: -float(attrs[r]["avg_tenure_months"])) == "WEST"
    assert top(lambda r: -int(attrs[r]["headcount"])) == "WEST"
    assert top(lambda r: float(attrs[r]["avg_tenure_months"])) == "NE"
    assert top(lambda r: per_head(r, "hist_sales")) == "NE"
    assert top(lambda r: -int(attrs[r]["market_potential"]) / int(attrs[r]["hist_sales"])) == "NE"
    # WEST: a split that follows potential asks far more than its capacity.
    company = json.loads((SEED_DIR / "company.json").read_text("utf-8"))["company_target_2026Q4"]
    west_share = int(attrs["WEST"]["market_potential"]) / int(attrs["HQ"]["market_potential"])
    west_capacity = int(attrs["WEST"]["headcount"]) * int(attrs["WEST"]["ramped_productivity"])
    assert west_share * company > 1.5 * west_capacity
    assert int(attrs["HQ"]["headcount"]) * int(attrs["HQ"]["ramped_productivity"]) > company
    # EAST: two new cities, one brand-new team with no history.
    teams = [org["by_code"][t] for r in regions for t in org["children"][r]]
    new_cities = {t["city_en"] for t in teams if t["new_city"] == "1"}
    assert all(t["parent_code"] == "EAST" for t in teams if t["new_city"] == "1")
    assert len(new_cities) == 2
    brand_new = [t for t in teams if t["opened"] == "2026Q3"]
    assert len(brand_new) == 1 and brand_new[0]["parent_code"] == "EAST"
    assert brand_new[0]["city_en"] in new_cities
    assert attrs[brand_new[0]["code"]]["hist_sales"] == "0"
    assert float(attrs["EAST"]["new_city_share"]) > 0
    assert all(float(attrs[r]["new_city_share"]) == 0 for r in regions if r != "EAST")


def test_users(org):
    rows = read("users.csv")
    assert header("users.csv") == ["username", "display_name_en", "display_name_zh", "role",
                                   "scope_unit_code", "person_unit_code", "locale"]
    level_of_role = {"admin": "company", "hrbp": "company", "executive": "company",
                     "region_head": "region", "team_lead": "team", "sales": "person"}
    assert len({r["username"] for r in rows}) == len(rows)
    for r in rows:
        assert re.fullmatch(r"[a-z0-9._]+", r["username"])
        assert org["by_code"][r["scope_unit_code"]]["level"] == level_of_role[r["role"]]
        assert r["locale"] in ("zh", "en") and r["display_name_en"] and r["display_name_zh"]
        if r["role"] == "sales":
            assert r["person_unit_code"] == r["scope_unit_code"]
            assert r["username"] == f"sales.{r['person_unit_code'].lower()}"
        else:
            assert r["person_unit_code"] == ""
    by_name = {r["username"]: r for r in rows}
    assert by_name["admin"]["locale"] == "en" and by_name["cfo"]["locale"] == "en"
    assert {by_name["ceo"]["role"], by_name["cfo"]["role"]} == {"executive"}
    assert by_name["hrbp"]["role"] == "hrbp"

    def region_of(code):
        while org["by_code"][code]["level"] != "region":
            code = org["by_code"][code]["parent_code"]
        return code

    for region in org["children"]["HQ"]:
        scoped = [r for r in rows if r["role"] != "admin" and r["scope_unit_code"] != "HQ"
                  and region_of(r["scope_unit_code"]) == region]
        roles = [r["role"] for r in scoped]
        assert roles.count("region_head") == 1
        assert roles.count("team_lead") >= 2 and roles.count("sales") >= 2
    for name in FILES:
        assert "password" not in (SEED_DIR / name).read_text("utf-8").lower()
