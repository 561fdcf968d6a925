"""Dashboard pages: /dashboard opens each role's own dashboard, each sees only its scope,
the chart data islands and tables hold the services' numbers, and Chinese amounts are
written with 万/亿."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from quotaflow.services import dashboards as service
from quotaflow.services import tracking
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.web.dashboards import compact


def island(html: str, name: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{name}-data">(.*?)</script>',
                      html, re.S)
    assert found, f"no {name} data island"
    return json.loads(found.group(1))


def dataset(chart: dict, key: str) -> list:
    return next(d["data"] for d in chart["datasets"] if d["key"] == key)


def view_for(app, code: str, **kw) -> dict:
    with app.app_context():
        period = q.periods(db.session)[-1]
        return service.unit_dashboard(Context(db.session), period, q.unit_by_code(db.session, code), **kw)


@pytest.mark.parametrize(("user", "target"), [
    ("ceo", "/dashboard/unit/HQ"),
    ("hrbp", "/dashboard/operations"),
    ("admin", "/dashboard/operations"),
    ("head.east", "/dashboard/unit/EAST"),
    ("lead.east.t1", "/dashboard/unit/EAST-T1"),
    ("sales.p0001", "/dashboard/unit/P0001"),
])
def test_dashboard_opens_the_roles_own(as_user, user: str, target: str) -> None:
    response = as_user(user).get("/dashboard")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(target)


def test_dashboard_is_in_the_menu_and_on_the_home_page(as_user) -> None:
    html = as_user("sales.p0001").get("/").get_data(as_text=True)
    assert html.count('href="/dashboard"') == 2  # the menu and the home page's main link
    assert 'data-testid="dashboard-link"' in html


@pytest.mark.parametrize(("user", "path", "status"), [
    ("head.east", "/dashboard/unit/HQ", 404),
    ("head.east", "/dashboard/unit/NORTH", 404),
    ("head.east", "/dashboard/unit/EAST-T1", 200),
    ("head.east", "/dashboard/operations", 403),
    ("ceo", "/dashboard/operations", 403),
    ("lead.east.t1", "/dashboard/unit/EAST", 404),
    ("lead.east.t1", "/dashboard/unit/P0001", 200),
    ("sales.p0001", "/dashboard/unit/P0002", 404),
    ("sales.p0001", "/dashboard/unit/EAST-T1", 404),
    ("hrbp", "/dashboard/unit/HQ", 200),
    ("hrbp", "/dashboard/unit/NORTH-T4", 200),
])
def test_only_the_scope(as_user, user: str, path: str, status: int) -> None:
    assert as_user(user).get(path).status_code == status


def test_executive_dashboard_holds_the_services_numbers(app, as_user) -> None:
    html = as_user("cfo").get("/dashboard/unit/HQ").get_data(as_text=True)
    view = view_for(app, "HQ")
    assert 'data-kind="executive"' in html
    assert "chart-4.6.1.umd.min.js" in html and "dashboards.js" in html
    curve = island(html, "curve")
    c = view["curve"]
    for key in ("actual", "red_line", "target", "forecast", "forecast_low", "forecast_high"):
        assert dataset(curve, key) == c[key], key
    assert len(curve["labels"]) == len(c["weeks"])
    with app.app_context():
        period = q.periods(db.session)[-1]
        p = tracking.progress(db.session, period, view["week"])
        assert c["actual"][view["week"]] == round(p.unit("HQ")["actual"])
        assert c["forecast"][-1] == round(p.unit("HQ")["forecast"])
    # The table beside the chart: the same numbers, week by week.
    table = html[html.index('id="curve-table"'):]
    table = table[:table.index("</table>")]
    for w in c["weeks"]:
        if c["actual"][w] is not None:
            assert f'data-value="{c["actual"][w]}"' in table
        assert f'data-value="{c["red_line"][w]}"' in table
    assert f'{c["forecast"][-1]:,}' in table
    # The backtest error is shown so users know how far to trust the forecast.
    assert 'data-testid="wmape"' in html and "WMAPE" in html

    resources = island(html, "resources")
    rows = view["resources"]
    assert resources["codes"] == [r["code"] for r in rows]
    for key in ("headcount", "cost", "target", "actual"):
        assert dataset(resources, key) == [r[key] for r in rows]
    table = html[html.index('id="resources-table"'):]
    table = table[:table.index("</table>")]
    for r in rows:
        assert f'data-unit="{r["code"]}"' in table
        assert f'{r["cost"]:,}' in table and f'{r["target"]:,}' in table
    assert 'data-testid="ranking-table"' in html and 'data-testid="alignment"' in html
    assert 'data-testid="risks"' in html


def test_region_head_sees_their_teams_only(app, as_user) -> None:
    html = as_user("head.east").get("/dashboard/unit/EAST").get_data(as_text=True)
    assert 'data-kind="region"' in html
    view = view_for(app, "EAST")
    ranked = re.findall(r'<tr data-unit="([A-Z0-9-]+)"', html)
    assert ranked == [r["code"] for r in view["children"]]
    assert all(code.startswith("EAST-T") for code in ranked)
    for other in ("NORTH", "WEST", "SOUTH-T1", "NE-T1"):
        assert f"/dashboard/unit/{other}" not in html
    progress = island(html, "progress")
    assert progress["codes"] == sorted(ranked)
    assert dataset(progress, "actual") == view["progress_bars"]["actual"]
    assert dataset(progress, "red_line") == view["progress_bars"]["red_line"]
    assert 'data-testid="gap-warnings"' in html and 'data-testid="dashboard-alerts"' in html
    assert 'href="/whatif/EAST' in html
    assert "resources-data" not in html  # the resource comparison is the executive's


def test_team_lead_and_sales_see_their_target_and_how_it_was_derived(app, as_user) -> None:
    html = as_user("sales.p0001").get("/dashboard/unit/P0001").get_data(as_text=True)
    view = view_for(app, "P0001")
    assert 'data-kind="person"' in html and 'data-testid="derivation"' in html
    assert f'/plans/{view["plan"]["id"]}/units/P0001' in html
    assert f'{view["explanation"]["target"]:,}' in html
    assert 'data-testid="letter-link"' in html
    assert "/whatif" not in html.split("<main", 1)[1]
    curve = island(html, "curve")
    assert dataset(curve, "red_line") == view["curve"]["red_line"]

    html = as_user("lead.east.t1").get("/dashboard/unit/EAST-T1").get_data(as_text=True)
    assert 'data-kind="team"' in html and 'data-testid="derivation"' in html
    assert "progress-data" in html and 'data-unit="P0001"' in html


def test_operations_dashboard(as_user) -> None:
    html = as_user("hrbp").get("/dashboard/operations").get_data(as_text=True)
    for testid in ("config-health", "flows-waiting", "outbox-status", "figure-active"):
        assert f'data-testid="{testid}"' in html
    assert 'data-kind="factor_model"' in html
    # hrbp may switch to the executive view of the company.
    assert 'href="/dashboard/unit/HQ"' in html


def test_week_and_period_choices(app, as_user) -> None:
    client = as_user("ceo")
    html = client.get("/dashboard/unit/HQ?week=3").get_data(as_text=True)
    curve = island(html, "curve")
    assert dataset(curve, "actual")[4:] == [None] * (len(curve["labels"]) - 4)
    assert client.get("/dashboard/unit/HQ?week=99").status_code == 404
    assert client.get("/dashboard/unit/HQ?week=x").status_code == 404
    assert client.get("/dashboard/unit/HQ?period=1800Q1").status_code == 404
    html = client.get("/dashboard/unit/HQ?curve=NORTH").get_data(as_text=True)
    assert island(html, "curve")["datasets"][2]["data"][0] == view_for(app, "NORTH")["unit"]["target"]


def test_chinese_amounts_use_wan_and_yi(as_user) -> None:
    assert compact(249_500_000, "zh") == "2.50亿"
    assert compact(11_157_944, "zh") == "1,115.8万"
    assert compact(9_800, "zh") == "9,800"
    assert compact(-30_800, "zh") == "-3.1万"
    assert compact(249_500_000, "en") == "249.5M"
    assert compact(700_000, "en") == "700.0K"
    assert compact(None, "en") == ""
    client = as_user("head.north")  # locale zh
    html = client.get("/dashboard/unit/NORTH").get_data(as_text=True)
    assert re.search(r'data-testid="figure-target">[\d,.]+(万|亿)<', html)


def test_alerts_with_remedies_within_the_scope(app, as_user) -> None:
    from quotaflow.services import specs
    from quotaflow.store.tracking_models import Alert

    with app.app_context():
        period = q.periods(db.session)[-1]
        alert = Alert(rule="dashtest-web", unit_id=q.unit_by_code(db.session, "NORTH-T4").id,
                      period_id=period.id, week=1, level="team", severity="high", run=2,
                      metrics={}, label_en="Far behind", label_zh="严重落后",
                      message_en="Jinan Team 4 is behind", message_zh="济南4组落后",
                      remedies=[{"key": "support", "message_en": "Send support from Beijing 1",
                                 "message_zh": "从北京1组调派支援"}],
                      rules_version_id=specs.active_version(db.session, "alert_rules",
                                                            "default").id)
        db.session.add(alert)
        db.session.commit()
    html = as_user("head.north").get("/dashboard/unit/NORTH").get_data(as_text=True)
    assert 'data-rule="dashtest-web"' in html
    assert "济南4组落后" in html and "从北京1组调派支援" in html  # head.north reads Chinese
    assert 'data-rule="dashtest-web"' in as_user("ceo").get("/dashboard/unit/HQ").get_data(
        as_text=True)
    assert 'data-rule="dashtest-web"' not in as_user("head.east").get(
        "/dashboard/unit/EAST").get_data(as_text=True)


def test_alignment_figures_when_a_plan_is_published(app, as_user, monkeypatch) -> None:
    figures = {
        "published_at": "2026-10-02T08:00:00Z", "aligned_at": None, "aligned": False,
        "elapsed_hours": 60.0, "elapsed_days": 2.5, "dispute_rate": 0.0833,
        "levels": [{"level": "region", "units": 6, "items": 6, "accepted": 5, "pending": 0,
                    "appealed": 1, "appeals": 1, "dispute_rate": 0.1667}],
        "appeals_by_status": {"open": 1}, "letters": {"people": 480, "issued": 0,
                                                      "signed": 0, "countersigned": 0},
    }
    monkeypatch.setattr(service, "alignment_figures", lambda _s, _p: figures)
    html = as_user("cfo").get("/dashboard/unit/HQ").get_data(as_text=True)
    section = html[html.index('data-testid="alignment"'):]
    assert "2.5" in section and "8.3%" in section and "16.7%" in section
    assert "480" in section
    # Region heads do not get the executive view or the alignment figures.
    assert 'data-testid="alignment"' not in as_user("head.east").get(
        "/dashboard/unit/EAST").get_data(as_text=True)


def test_operations_lists_drafts_problems_overdue_and_dead(as_user, monkeypatch) -> None:
    real = service.operations

    def with_trouble(session, paths, **kw):
        ops = real(session, paths, **kw)
        ops["config"]["drafts"] = [{"kind": "factor_model", "key": "default", "version": 9,
                                    "created_at": "2026-11-01T10:00:00Z"}]
        ops["config"]["problems"] = [{"kind": "form", "key": "broken", "version": 2,
                                      "pointer": "/fields/0", "code": "schema.required",
                                      "message": "a required entry is missing"}]
        ops["flows"]["overdue"] = [{"instance_id": 7, "flow_key": "appeal", "node": "hrbp",
                                    "unit": "EAST", "assignee": "hrbp",
                                    "assignee_name": "HR", "due_at": "2026-11-01T10:00:00Z",
                                    "overdue_hours": 26.5}]
        ops["outbox"]["channels"] = [{"channel": "email", "pending": 2, "delivered": 10,
                                      "failed": 1, "waiting_with_error": 1, "total": 13}]
        ops["outbox"]["totals"]["failed"] = 1
        ops["outbox"]["problems"] = [{"id": 41, "channel": "email", "status": "failed",
                                      "topic": "alert.raised", "attempts": 8,
                                      "last_error": "SMTP refused", "created_at": None}]
        return ops

    monkeypatch.setattr(service, "operations", with_trouble)
    html = as_user("hrbp").get("/dashboard/operations").get_data(as_text=True)
    assert 'data-testid="drafts"' in html and "/config/factor_model/default" in html
    assert 'data-testid="problems"' in html and "/fields/0" in html
    assert 'data-testid="overdue"' in html and "/tasks/7" in html and "26.5" in html
    assert 'data-testid="dead-deliveries"' in html and "SMTP refused" in html
    chart = island(html, "outbox")
    assert chart["labels"] == ["email"] and dataset(chart, "failed") == [1]
    assert 'data-channel="email"' in html


def test_a_period_without_weeks_says_why_in_the_viewers_language(app, as_user) -> None:
    """The service's reason is English text; the page shows its own translated message
    (it used to print "No figures for this period: period 1990Q1 has no weeks")."""
    from quotaflow.store.models import Period

    with app.app_context():
        period = Period(code="1990Q1", start_date=dt.date(1990, 1, 1),
                        end_date=dt.date(1990, 3, 31))
        db.session.add(period)
        db.session.commit()
    html = as_user("cfo").get("/dashboard/unit/HQ?period=1990Q1").get_data(as_text=True)
    assert 'data-testid="dashboard-empty"' in html
    assert "Period 1990Q1 has no weeks, so there is nothing to track." in html
    assert "period 1990Q1 has no weeks" not in html  # the service's untranslated text
