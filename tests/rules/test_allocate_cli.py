"""``quotaflow allocate``: output on the seed data, and clear failures on bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from quotaflow.allocate_cli import allocate_command

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "quotaflow" / "seed_data" / "specs"
MODEL = SPECS / "factor_model.json"
UNITS = ROOT / "quotaflow" / "seed_data" / "units.csv"
TOTAL = json.loads((ROOT / "quotaflow" / "seed_data" / "company.json").read_text())["company_target_2026Q4"]


def invoke(*args: str):
    return CliRunner().invoke(allocate_command, list(args), catch_exceptions=False)


def test_all_scenarios_as_json() -> None:
    result = invoke("--model", str(MODEL), "--units", str(UNITS), "--total", str(TOTAL))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["company_total"] == TOTAL and doc["model"]["id"] == "default-factor-model"
    by_name = {s["scenario"]: s for s in doc["scenarios"]}
    assert list(by_name) == ["aggressive", "balanced", "conservative"]
    aggressive = by_name["aggressive"]
    assert any(r["rule"] == "overloaded_units" for r in aggressive["plan_risks"])
    west = next(u for u in aggressive["units"] if u["id"] == "WEST")
    assert any(r["rule"] == "overload" for r in west["risks"])
    conservative = by_name["conservative"]
    assert conservative["planned_total"] < TOTAL
    assert any(r["rule"] == "shortfall" for r in conservative["plan_risks"])
    # Every unit: target, explanation adding up, risks.
    for unit in by_name["balanced"]["units"]:
        ex = unit["explanation"]
        assert sum(ex["factors"].values()) + ex["bounds_adjustment"] \
            + ex["rounding_adjustment"] + ex.get("requested", 0) == unit["target"]
    assert len(by_name["balanced"]["units"]) == len(UNITS.read_text().splitlines()) - 1


def test_one_scenario_as_csv_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "plan.csv"
    result = invoke("--model", str(MODEL), "--units", str(UNITS), "--total", f"{TOTAL:,}",
                    "--scenario", "conservative", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "short of the company total" in result.output and f"wrote {out}" in result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["scenario"] for r in rows} == {"conservative"}
    hq = rows[0]
    assert hq["id"] == "HQ" and int(hq["target"]) < TOTAL
    assert "factor_historical_performance" in rows[0]


def test_csv_to_stdout_is_clean() -> None:
    runner = CliRunner()
    result = runner.invoke(allocate_command, ["--model", str(MODEL), "--units", str(UNITS),
                                              "--total", str(TOTAL), "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["scenario"] for r in rows} == {"aggressive", "balanced", "conservative"}
    assert "scenario aggressive" in result.stderr


def test_without_presets_the_model_runs_as_is(tmp_path: Path) -> None:
    shutil.copy(MODEL, tmp_path / "model.json")
    result = invoke("--model", str(tmp_path / "model.json"), "--units", str(UNITS),
                    "--total", str(TOTAL))
    assert result.exit_code == 0
    (scenario,) = json.loads(result.output)["scenarios"]
    assert scenario["scenario"] == "model" and scenario["planned_total"] == TOTAL
    result = invoke("--model", str(tmp_path / "model.json"), "--units", str(UNITS),
                    "--total", str(TOTAL), "--scenario", "balanced")
    assert result.exit_code != 0 and "no scenario presets" in result.output


def test_unknown_scenario_and_bad_total() -> None:
    result = invoke("--model", str(MODEL), "--units", str(UNITS), "--total", "1e6",
                    "--scenario", "wild")
    assert result.exit_code != 0 and "unknown scenario" in result.output
    result = invoke("--model", str(MODEL), "--units", str(UNITS), "--total", "lots")
    assert result.exit_code == 2 and "not an amount" in result.output


def test_invalid_model_names_the_place(tmp_path: Path) -> None:
    doc = json.loads(MODEL.read_text(encoding="utf-8"))
    doc["weights"]["product_fit"] = 20
    doc["factors"][1]["expression"] = "market_potential * (1 + new_city)"
    bad = tmp_path / "model.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = invoke("--model", str(bad), "--units", str(UNITS), "--total", "1000")
    assert result.exit_code == 1
    assert "/weights: weights total 105%, not 100%" in result.output
    assert "/factors/1/expression (column 25): unknown name 'new_city'" in result.output
    bad.write_text("{", encoding="utf-8")
    result = invoke("--model", str(bad), "--units", str(UNITS), "--total", "1000")
    assert result.exit_code == 1 and "not valid JSON" in result.output


def test_invalid_risk_rules_file(tmp_path: Path) -> None:
    doc = json.loads((SPECS / "risk_rules.json").read_text(encoding="utf-8"))
    doc["unit_rules"][0]["severity"] = "dire"
    bad = tmp_path / "risks.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = invoke("--model", str(MODEL), "--units", str(UNITS), "--total", "1000",
                    "--risks", str(bad))
    assert result.exit_code == 1 and "/unit_rules/0/severity" in result.output


HEADER = ("id,parent,level,hist_sales,prev_quarter_sales,market_potential,new_city_share,"
          "headcount,avg_tenure_months,ramped_productivity,product_fit,competitor_coverage,cost")
GOOD = [
    "HQ,,company,300,300,900,0,3,20,100,50,50,0",
    "R1,HQ,region,100,100,300,0,1,20,100,50,50,0",
    "R2,HQ,region,200,200,600,0,2,20,100,50,50,0",
]


@pytest.mark.parametrize("lines, expected", [
    ([HEADER, *GOOD[:2], "R2,HQX,region,200,200,600,0,2,20,100,50,50,0"],
     "row 4, column 'parent': unknown parent 'HQX'"),
    ([HEADER, GOOD[0], "R1,R2,region,100,100,300,0,1,20,100,50,50,0",
      "R2,R1,region,200,200,600,0,2,20,100,50,50,0"], "cycle"),
    ([HEADER, *GOOD[:2], "R2,,region,200,200,600,0,2,20,100,50,50,0"], "more than one root"),
    ([HEADER, *GOOD[:2], "R2,HQ,region,200,n/a,600,0,2,20,100,50,50,0"],
     "row 4, column 'prev_quarter_sales': 'n/a' is not a number"),
    ([HEADER, *GOOD[:2], "R2,HQ,region,200,200,600,0,2.5,20,100,50,50,0"],
     "row 4, column 'headcount': '2.5' is not an integer"),
    ([HEADER, *GOOD[:2], "R2,HQ,region,200,200,600,0,2,20,100,150,50,0"],
     "row 4, column 'product_fit'"),
    ([HEADER.replace(",product_fit", ""), *[",".join(x.split(",")[:10] + x.split(",")[11:])
                                            for x in GOOD]],
     "row 1, column 'product_fit': missing required field column 'product_fit'"),
    ([HEADER, *GOOD[:2], "R2,HQ,region,200,200,600"], "row 4: 6 cells, the header has 13"),
    ([HEADER, *GOOD[:2], "R1,HQ,region,200,200,600,0,2,20,100,50,50,0"], "duplicate unit id"),
])
def test_bad_units_csv(tmp_path: Path, lines: list[str], expected: str) -> None:
    units = tmp_path / "units.csv"
    units.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("--model", str(MODEL), "--units", str(units), "--total", "1000")
    assert result.exit_code == 1, result.output
    assert expected in result.output


def test_good_small_csv(tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text("\n".join([HEADER, *GOOD]) + "\n", encoding="utf-8")
    result = invoke("--model", str(MODEL), "--units", str(units), "--total", "330",
                    "--scenario", "balanced")
    assert result.exit_code == 0, result.output
    (scenario,) = json.loads(result.output)["scenarios"]
    assert scenario["planned_total"] + 0 <= 330


def test_missing_file() -> None:
    result = CliRunner().invoke(allocate_command, ["--model", "nope.json", "--units", str(UNITS),
                                                   "--total", "1"])
    assert result.exit_code == 2 and "does not exist" in result.output
