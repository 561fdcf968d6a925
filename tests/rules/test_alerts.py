"""Alert rules and remedies on the demo quarter: NORTH-T4 lags, NORTH-T1 is ahead."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quotaflow.rules import (
    AlertRulesError,
    RemedyContext,
    RemedyError,
    evaluate_alerts,
    load_alert_rules,
    load_remedies,
    pacing_metrics,
    rank_remedies,
    sibling_context,
)
from quotaflow.rules.pacing import PacingCurve, WeeklyMetrics

SEED = Path(__file__).resolve().parents[2] / "quotaflow" / "seed_data"
COMPANY_TARGET = 249_500_000

STREAK_RULE = {
    "key": "team_under_line",
    "label_en": "Team under the red line",
    "label_zh": "团队低于红线",
    "when": "pace < 0.7",
    "window": 2,
    "level": "team",
    "severity": "high",
    "recipients": ["team_lead", "region_head"],
    "channels": ["in_app"],
    "cooldown_weeks": 2,
    "message_en": "{unit} ({name_en}) at {pace:.0%} of the red line for {run} weeks",
    "message_zh": "{unit}（{name_zh}）连续{run}周进度为红线的{pace:.0%}",
}


def rules_doc(**changes: Any) -> dict[str, Any]:
    return {"id": "test", "version": 1, "rules": [{**STREAK_RULE, **changes}]}


def _read(name: str) -> list[dict[str, str]]:
    with open(SEED / name, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def linear_in_days() -> PacingCurve:
    """The seed's 13 weeks, linear in days: week 1 (Thursday 1 October to Sunday) has 4."""
    days = np.minimum(4 + 7 * np.arange(13), 91) / 91
    return PacingCurve("linear", np.concatenate([[0.0], days[:-1], [1.0]]))


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    """Team and region metrics for weeks 1..6 of 2026Q4, linear in days, Q3-share targets."""
    units = [u for u in _read("org_units.csv") if u["level"] in ("region", "team", "person")]
    codes = [u["code"] for u in units]
    index = {c: i for i, c in enumerate(codes)}
    parent = {u["code"]: u["parent_code"] for u in units}
    weekly = np.zeros((len(codes), 6))
    for r in _read("actuals.csv"):
        sales = float(r["sales"])
        # Roll persons up to their team and region.
        for code in (r["unit_code"], parent[r["unit_code"]], parent[parent[r["unit_code"]]]):
            weekly[index[code], int(r["week"]) - 1] += sales
    q3 = {r["unit_code"]: float(r["sales"]) for r in _read("history.csv")
          if r["period"] == "2026Q3"}
    share = np.array([q3.get(c, 0.0) / q3["HQ"] for c in codes])
    metrics = pacing_metrics(codes, [u["level"] for u in units], COMPANY_TARGET * share,
                             weekly, linear_in_days(),
                             names_en=[u["name_en"] for u in units],
                             names_zh=[u["name_zh"] for u in units])
    return {"metrics": metrics, "parents": [parent[c] for c in codes], "units": units}


def test_streak_rule_fires_for_the_lagging_team_only(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(rules_doc())
    hits = evaluate_alerts(rules, demo["metrics"], week=6, levels={"team"})
    units = [h.unit for h in hits]
    assert "NORTH-T4" in units and "NORTH-T1" not in units
    assert units == ["NORTH-T4"]  # every other team is at 85-110% of pace
    hit = hits[0]
    assert hit.rule == "team_under_line" and hit.week == 6 and hit.severity == "high"
    assert hit.run >= 2 and hit.level == "team"
    assert hit.recipients == ("team_lead", "region_head")
    assert 0.5 < hit.values["pace"] < 0.56
    assert hit.message_en.startswith("NORTH-T4 (Jinan Team 4) at 5")
    assert "济南4组" in hit.message_zh


def test_same_inputs_give_the_same_hits(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(SEED / "specs" / "alert_rules.json")
    first = evaluate_alerts(rules, demo["metrics"], week=6)
    second = evaluate_alerts(rules, demo["metrics"], week=6)
    assert first == second
    assert ("NORTH-T4", "team_under_line", 6) in [h.key for h in first]


def test_cooldown_suppresses_a_repeat(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(rules_doc(cooldown_weeks=1))
    m = demo["metrics"]
    at5 = evaluate_alerts(rules, m, week=5)
    assert [h.unit for h in at5] == ["NORTH-T4"]
    # Already raised for week 6: nothing new on a second scan.
    at6 = evaluate_alerts(rules, m, week=6)
    assert evaluate_alerts(rules, m, week=6, previous_alerts=at6) == []
    # Week 5's alert keeps week 6 quiet (cooldown 1) ...
    assert evaluate_alerts(rules, m, week=6, previous_alerts=[("NORTH-T4",
                                                               "team_under_line", 5)]) == []
    # ... but not with a cooldown of 0, nor an alert of another rule or unit.
    quiet = load_alert_rules(rules_doc(cooldown_weeks=0))
    assert len(evaluate_alerts(quiet, m, week=6, previous_alerts=at5)) == 1
    assert len(evaluate_alerts(rules, m, week=6, previous_alerts=[
        ("NORTH-T4", "other", 5), ("NORTH-T1", "team_under_line", 5)])) == 1
    # An alert from a later week does not silence an earlier one.
    assert len(evaluate_alerts(rules, m, week=5, previous_alerts=at6)) == 1


def test_window_and_levels(demo: dict[str, Any]) -> None:
    m = demo["metrics"]
    # NORTH-T4 is under 70% from week 2: a 6-week window is not met by week 6 ...
    assert evaluate_alerts(load_alert_rules(rules_doc(window=6)), m, week=6) == []
    # ... a 4-week one is, and the run counts every week.
    hits = evaluate_alerts(load_alert_rules(rules_doc(window=4)), m, week=6)
    assert [(h.unit, h.run) for h in hits] == [("NORTH-T4", 5)]
    assert evaluate_alerts(load_alert_rules(rules_doc()), m, week=6, levels={"region"}) == []
    region = load_alert_rules(rules_doc(level="region", when="pace < 2", window=1))
    assert len(evaluate_alerts(region, m, week=1)) == 6
    with pytest.raises(ValueError, match=r"within 1\.\.6"):
        evaluate_alerts(region, m, week=7)


def test_vectorised_condition_matches_row_by_row(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(rules_doc(when="attainment < 0.3 and gap > 100000 or streak >= 3",
                                       window=1, level="person"))
    m = demo["metrics"]
    hits = {h.unit for h in evaluate_alerts(rules, m, week=6)}
    when = rules.rules[0].when
    expected = {str(m.codes[i]) for i in range(len(m.codes)) if m.levels[i] == "person"
                and when.evaluate_row({k: m.columns[k][i, 5] for k in when.names})}
    assert hits == expected and hits


def test_rule_errors_carry_pointers() -> None:
    with pytest.raises(AlertRulesError) as err:
        load_alert_rules(rules_doc(when="pace + 1"))
    assert err.value.pointer == "/rules/0/when" and err.value.code == "expression.type"
    with pytest.raises(AlertRulesError) as err:
        load_alert_rules(rules_doc(when="pace < speed"))
    assert err.value.pointer == "/rules/0/when" and err.value.column == 8
    with pytest.raises(AlertRulesError) as err:
        load_alert_rules(rules_doc(message_en="{nope}"))
    assert err.value.pointer == "/rules/0/message_en"
    with pytest.raises(AlertRulesError) as err:
        load_alert_rules(rules_doc(window=0))
    assert err.value.pointer == "/rules/0/window"
    doc = rules_doc()
    doc["rules"].append(dict(STREAK_RULE))
    with pytest.raises(AlertRulesError) as err:
        load_alert_rules(doc)
    assert err.value.pointer == "/rules/1/key"
    # Extra metric columns can be declared and used.
    assert load_alert_rules(rules_doc(when="headcount > 3"), extra_fields=["headcount"])


def test_runtime_error_names_unit_and_week() -> None:
    m = WeeklyMetrics(np.array(["A", "B"], dtype=object), np.array(["team", "team"], dtype=object),
                      {"target": np.array([[1.0, 1.0], [1.0, 0.0]])})
    rules = load_alert_rules(rules_doc(when="1 / target > 0", window=1))
    with pytest.raises(AlertRulesError) as err:
        evaluate_alerts(rules, m, week=2)
    assert err.value.pointer == "/rules/0/when"
    assert "unit B, week 2" in err.value.message


def demo_context(demo: dict[str, Any]) -> RemedyContext:
    m = demo["metrics"]
    ctx = sibling_context(m.codes, demo["parents"], m.at(6)["pace"], names_en=m.names_en,
                          names_zh=m.names_zh)
    n = len(m.codes)
    ctx.numbers["open_leads"] = np.where(m.codes == "NORTH-T4", 24.0, 0.0)
    ctx.numbers["product_gap"] = np.where(m.codes == "NORTH-T4", 300_000.0, 0.0)
    ctx.texts["product_name_en"] = np.full(n, "Cloud Backup", dtype=object)
    ctx.texts["product_name_zh"] = np.full(n, "云备份", dtype=object)
    return ctx


def test_top_three_remedies_include_support_from_the_team_ahead(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(SEED / "specs" / "alert_rules.json")
    catalogue = load_remedies(SEED / "specs" / "remedies.json")
    hits = evaluate_alerts(rules, demo["metrics"], week=6, levels={"team"})
    assert [h.unit for h in hits] == ["NORTH-T4"]
    ranked = rank_remedies(catalogue, hits, demo_context(demo))
    top = ranked[0]
    assert len(top) == 3
    assert top[0].key == "send_support"
    assert top[0].message_en.startswith("Send support from Beijing Team 1 (2")
    assert top[0].message_en.endswith("% ahead of pace, same region)")
    assert "北京1组" in top[0].message_zh
    assert [s.priority for s in top] == sorted((s.priority for s in top), reverse=True)
    keys = [s.key for s in top]
    assert "coaching" not in keys  # the lowest priority falls off
    assert "Reassign 24 open leads" in " ".join(s.message_en for s in top)
    assert rank_remedies(catalogue, hits, demo_context(demo)) == ranked


def test_remedy_applicability_and_order() -> None:
    catalogue = load_remedies({"id": "t", "version": 1,
                               "context": [{"name": "leads", "type": "number"}],
                               "remedies": [
        {"key": "a", "label_en": "A", "label_zh": "甲", "when": "leads > 0",
         "priority": "leads", "message_en": "a {leads:.0f}", "message_zh": "甲"},
        {"key": "b", "label_en": "B", "label_zh": "乙", "when": "pace < 1",
         "priority": "5", "message_en": "b {unit}", "message_zh": "乙", "rules": ["r1"]},
        {"key": "c", "label_en": "C", "label_zh": "丙", "when": "pace < 1",
         "priority": "5", "message_en": "c", "message_zh": "丙", "levels": ["person"]},
    ]})
    from quotaflow.rules import AlertHit

    def hit(unit: str, rule: str, level: str) -> AlertHit:
        return AlertHit(rule, unit, level, 3, "low", 1, 1, (), (), {"pace": 0.5, "gap": 1.0},
                        unit, unit, ("", ""))

    ctx = RemedyContext(np.array(["X", "Y"], dtype=object), {"leads": np.array([9.0, 1.0])})
    out = rank_remedies(catalogue, [hit("X", "r1", "team"), hit("Y", "r2", "person")], ctx,
                        limit=2)
    assert [[s.key for s in row] for row in out] == [["a", "b"], ["c", "a"]]
    assert out[0][0].message_en == "a 9" and out[0][1].message_en == "b X"
    assert rank_remedies(catalogue, [], ctx) == []
    with pytest.raises(ValueError, match="no remedy context for unit 'Z'"):
        rank_remedies(catalogue, [hit("Z", "r1", "team")], ctx)


def test_remedy_errors_carry_pointers() -> None:
    base = {"key": "a", "label_en": "A", "label_zh": "甲", "when": "pace < 1",
            "priority": "1", "message_en": "a", "message_zh": "甲"}
    with pytest.raises(RemedyError) as err:
        load_remedies({"id": "t", "version": 1, "remedies": [{**base, "priority": "pace < 1"}]})
    assert err.value.pointer == "/remedies/0/priority"
    with pytest.raises(RemedyError) as err:
        load_remedies({"id": "t", "version": 1, "remedies": [{**base, "message_zh": "{x}"}]})
    assert err.value.pointer == "/remedies/0/message_zh"
    with pytest.raises(RemedyError) as err:
        load_remedies({"id": "t", "version": 1, "remedies": [{**base, "when": 3}]})
    assert err.value.pointer == "/remedies/0/when"
    with pytest.raises(RemedyError) as err:
        load_remedies({"id": "t", "version": 1, "context": [{"name": "pace", "type": "number"}],
                       "remedies": [base]})
    assert err.value.pointer == "/context/0/name"


def test_sibling_context() -> None:
    ctx = sibling_context(["a", "b", "c", "d"], ["P", "P", "P", "Q"], np.array([1.2, 0.5, 0.9,
                                                                                 1.0]))
    assert ctx.texts["best_sibling_code"].tolist() == ["c", "a", "a", ""]
    assert ctx.numbers["best_sibling_pace"].tolist() == pytest.approx([0.9, 1.2, 1.2, 0])
    assert ctx.numbers["best_sibling_ahead"].tolist() == pytest.approx([-0.1, 0.2, 0.2, 0])


def test_missing_metric_column_is_named(demo: dict[str, Any]) -> None:
    rules = load_alert_rules(rules_doc(when="headcount > 3"), extra_fields=["headcount"])
    with pytest.raises(ValueError, match="reads 'headcount'"):
        evaluate_alerts(rules, demo["metrics"], week=6)
