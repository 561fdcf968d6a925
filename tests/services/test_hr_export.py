"""The HR export: final targets per person of the latest published plan, as CSV and .xlsx,
from the service, the CLI and the HR page."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from plan_support import OWN_PERIOD, own_period
from sqlalchemy import func, select
from support import DEMO_PASSWORD, sign_in

from quotaflow.services import hr_export, plans
from quotaflow.services.auth import hash_password
from quotaflow.services.seeding import add_period
from quotaflow.services.uow import Context
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.letter_models import CommitmentLetter
from quotaflow.store.models import (
    OrgLevel,
    OrgUnit,
    Plan,
    PlanUnit,
    RoleGrant,
    User,
)

PERIOD = OWN_PERIOD  # not the demo quarter, which has a published plan of its own
TOTAL = 249_500_000
ZH = hr_export.HrExportTexts(
    sheet="目标", code="人员编码", name="姓名", level_code="%(level)s编码", target="目标（元）",
    period="期间", plan="方案", letter="目标责任书",
    letter_states={"none": "未生成", "issued": "待签字", "signed": "已签字，待会签",
                   "countersigned": "已会签", "outdated": "已过期：目标已变更"})


@pytest.fixture(scope="module")
def published(app):
    """A published plan of PERIOD and, after it, a draft plan (which the export ignores)."""
    with app.app_context():
        session = db.session
        period = own_period(session)
        plan = plans.create_plan(session, None, period, "balanced", TOTAL, None)
        plan.status = "published"
        session.commit()
        plans.create_plan(session, None, period, "aggressive", TOTAL + 1_000_000, None)
        return plan.id


def _person_rows(session, plan_id: int, path: str = "/") -> dict[str, int]:
    depth = session.scalar(select(func.max(OrgLevel.depth)))
    rows = session.execute(select(OrgUnit.code, PlanUnit.target)
                           .join(PlanUnit, PlanUnit.unit_id == OrgUnit.id)
                           .where(PlanUnit.plan_id == plan_id, OrgUnit.depth == depth,
                                  OrgUnit.path.startswith(path)))
    return {code: int(target) for code, target in rows}


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM, for Excel
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _xlsx_rows(data: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_export_is_the_latest_published_plan_per_person(app, published) -> None:
    with app.app_context():
        session = db.session
        plan = session.get(Plan, published)
        latest = session.scalar(select(func.max(Plan.number)).where(Plan.period_id == plan.period_id))
        assert latest > plan.number  # a newer draft exists and is not exported
        export = hr_export.build_export(Context(session), PERIOD, lang="en")
        assert export.plan.id == plan.id
        expected = _person_rows(session, plan.id)
        assert export.header == ["Person code", "Full name", "Team code", "Team", "Region code",
                                 "Region", "Target (yuan)", "Period", "Plan",
                                 "Commitment letter"]
        by_code = {row[0]: row for row in export.rows}
        assert {code: row[6] for code, row in by_code.items()} == expected
        # The person targets add up to the plan: to the company's planned total.
        assert export.target_total == sum(expected.values()) == plan.planned_total
        p1 = q.unit_by_code(session, "P0001")
        team, region = p1.parent, p1.parent.parent
        assert by_code["P0001"] == ["P0001", p1.name_en, team.code, team.name_en, region.code,
                                    region.name_en, expected["P0001"], PERIOD, plan.number,
                                    "Not issued"]
        # Sorted by region, team, person.
        keys = [(r[4], r[2], r[0]) for r in export.rows]
        assert keys == sorted(keys)


def test_csv_and_xlsx_hold_the_same_rows_and_sums(app, published) -> None:
    with app.app_context():
        session = db.session
        plan = session.get(Plan, published)
        expected = _person_rows(session, plan.id)
        export = hr_export.build_export(Context(session), PERIOD, lang="zh", texts=ZH)
        rows_csv = _csv_rows(hr_export.render(export, "csv"))
        rows_xlsx = _xlsx_rows(hr_export.render(export, "xlsx"))
    # The level names ("团队", "区域") come from the org levels, in the asked language.
    header = ["人员编码", "姓名", "团队编码", "团队", "区域编码", "区域", "目标（元）", "期间",
              "方案", "目标责任书"]
    assert rows_csv[0] == header and rows_xlsx[0] == header
    assert len(rows_csv) == len(rows_xlsx) == len(expected) + 1
    assert {r[0]: int(r[6]) for r in rows_csv[1:]} == expected
    assert {r[0]: r[6] for r in rows_xlsx[1:]} == expected
    assert sum(int(r[6]) for r in rows_csv[1:]) == sum(r[6] for r in rows_xlsx[1:]) \
        == plan.planned_total
    p1 = next(r for r in rows_csv if r[0] == "P0001")
    assert p1[8] == str(plan.number) and p1[9] == "未生成"
    assert rows_xlsx[1][7] == PERIOD
    p1_zh = next(r for r in rows_xlsx if r[0] == "P0001")
    with app.app_context():
        unit = q.unit_by_code(db.session, "P0001")
        assert p1_zh[1] == unit.name_zh and p1_zh[3] == unit.parent.name_zh


def test_letter_states_follow_the_current_letter(app, published) -> None:
    """Written in a transaction that is rolled back: other tests never see these letters."""
    with app.app_context():
        session = db.session
        plan = session.get(Plan, published)
        targets = _person_rows(session, plan.id)
        codes = sorted(targets)[:3]
        units = {c: q.unit_by_code(session, c) for c in codes}
        try:
            for code, status, target in [(codes[0], "issued", targets[codes[0]]),
                                         (codes[1], "countersigned", targets[codes[1]]),
                                         (codes[2], "signed", targets[codes[2]] + 1)]:
                version = (session.scalar(select(func.max(CommitmentLetter.version))
                                          .where(CommitmentLetter.unit_id == units[code].id))
                           or 0) + 1
                session.add(CommitmentLetter(plan_id=plan.id, unit_id=units[code].id,
                                             version=version, content={"target": target},
                                             content_sha256="0" * 64, status=status))
            session.flush()
            export = hr_export.build_export(Context(session), PERIOD, lang="en")
            states = {row[0]: row[9] for row in export.rows}
            assert [states[c] for c in codes] == [
                "Awaiting signature", "Countersigned", "Outdated: the target changed"]
            assert sum(1 for s in states.values() if s == "Not issued") == len(states) - 3
        finally:
            session.rollback()


def test_text_that_looks_like_a_formula_stays_text(app, published) -> None:
    with app.app_context():
        export = hr_export.build_export(Context(db.session), PERIOD, lang="en")
    export.rows[0][1] = "=HYPERLINK(\"http://evil.test\")"
    assert _csv_rows(hr_export.render(export, "csv"))[1][1].startswith("'=")
    book = load_workbook(io.BytesIO(hr_export.render(export, "xlsx")))
    cell = book.worksheets[0]["B2"]
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"http://evil.test\")"


def test_errors_name_the_period(app, published) -> None:
    with app.app_context():
        with pytest.raises(hr_export.HrExportError) as error:
            hr_export.build_export(Context(db.session), "1897Q1", lang="en")
        assert (error.value.code, error.value.params) == ("unknown_period", {"period": "1897Q1"})
        add_period(db.session, "1999Q1", dt.date(1999, 1, 1), dt.date(1999, 3, 31))  # no plan
        db.session.flush()
        with pytest.raises(hr_export.HrExportError) as error:
            hr_export.build_export(Context(db.session), "1999Q1", lang="en")
        assert error.value.code == "no_published_plan"


def test_cli_writes_the_file(app, published, tmp_path) -> None:
    from quotaflow.cli import hr_export_command

    out = tmp_path / "targets.csv"
    runner = CliRunner()
    result = runner.invoke(hr_export_command, ["--period", PERIOD, "-o", str(out), "--lang", "en"],
                           obj=_script_info(app))
    assert result.exit_code == 0, result.output
    rows = _csv_rows(out.read_bytes())
    assert rows[0][0] == "Person code"
    with app.app_context():
        plan = db.session.get(Plan, published)
        assert sum(int(r[6]) for r in rows[1:]) == plan.planned_total
    assert f"from plan {plan.number} of {PERIOD}" in result.output

    book = tmp_path / "targets.bin"
    result = runner.invoke(hr_export_command, ["--period", PERIOD, "--format", "xlsx",
                                               "-o", str(book)], obj=_script_info(app))
    assert result.exit_code == 0, result.output
    header = _xlsx_rows(book.read_bytes())[0]
    assert header[0] == _zh_heading(app, "Person code") and header[3] == "团队"

    result = runner.invoke(hr_export_command, ["--period", "1897Q1", "-o", str(out)],
                           obj=_script_info(app))
    assert result.exit_code == 1 and "1897Q1" in result.output


def _zh_heading(app, msgid: str) -> str:
    """The heading as the app translates it into Chinese (Chinese once the catalogue has it)."""
    from flask_babel import force_locale, gettext

    with app.app_context(), force_locale("zh"):
        return gettext(msgid)


def _script_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)


# --- the page ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def east_hrbp(app) -> str:
    """An HRBP whose grant covers only the East region."""
    username = "hrexport.east"
    with app.app_context():
        user = User(username=username, display_name="HRBP East",
                    password_hash=hash_password(DEMO_PASSWORD), locale="en")
        user.grants.append(RoleGrant(role="hrbp", unit=q.unit_by_code(db.session, "EAST")))
        db.session.add(user)
        db.session.commit()
    return username


def test_page_and_download_for_hrbp(app, published, as_user) -> None:
    client = as_user("hrbp")
    client.post("/language", data={"lang": "en"})
    page = client.get(f"/hr/?period={PERIOD}")
    assert page.status_code == 200
    with app.app_context():
        plan = db.session.get(Plan, published)
        expected = _person_rows(db.session, plan.id)
    text = page.get_data(as_text=True)
    assert 'data-testid="hr-export-summary"' in text
    assert f"{len(expected):,}" in text and f"{plan.planned_total:,}" in text
    assert f'/hr/export?period={PERIOD}&amp;format=xlsx' in text

    response = client.get(f"/hr/export?period={PERIOD}&format=xlsx")
    assert response.status_code == 200
    assert response.mimetype == hr_export.MIMETYPES["xlsx"]
    assert f"hr-targets-{PERIOD}-plan{plan.number}.xlsx" in response.headers["Content-Disposition"]
    rows = _xlsx_rows(response.data)
    assert rows[0][0] == "Person code"
    assert {r[0]: r[6] for r in rows[1:]} == expected

    response = client.get(f"/hr/export?period={PERIOD}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert {r[0]: int(r[6]) for r in _csv_rows(response.data)[1:]} == expected

    assert client.get(f"/hr/export?period={PERIOD}&format=pdf").status_code == 400
    assert client.get("/hr/export?period=1897Q1&format=csv").status_code == 404


def test_download_in_chinese(app, published, as_user) -> None:
    client = as_user("hrbp")
    client.post("/language", data={"lang": "zh"})
    rows = _csv_rows(client.get(f"/hr/export?period={PERIOD}&format=csv").data)
    assert rows[0][:4] == [_zh_heading(app, "Person code"), _zh_heading(app, "Full name"),
                           _zh_heading(app, "%(level)s code") % {"level": "团队"}, "团队"]
    with app.app_context():
        p1 = q.unit_by_code(db.session, "P0001")
    assert next(r for r in rows if r[0] == "P0001")[1] == p1.name_zh
    page = client.get(f"/hr/?period={PERIOD}").get_data(as_text=True)
    assert 'lang="zh-CN"' in page


def test_rows_are_limited_to_the_scope(app, published, east_hrbp) -> None:
    client = sign_in(app.test_client(), east_hrbp)
    rows = _csv_rows(client.get(f"/hr/export?period={PERIOD}&format=csv").data)
    with app.app_context():
        east = q.unit_by_code(db.session, "EAST")
        expected = _person_rows(db.session, published, east.path)
    assert {r[0]: int(r[6]) for r in rows[1:]} == expected
    assert {r[4] for r in rows[1:]} == {"EAST"}


@pytest.mark.parametrize("username", ["head.east", "lead.east.t1", "ceo"])
def test_other_roles_may_not_export(app, published, as_user, username: str) -> None:
    client = as_user(username)
    assert client.get("/hr/").status_code == 403
    assert client.get(f"/hr/export?period={PERIOD}&format=csv").status_code == 403
    assert b'href="/hr/"' not in client.get("/").data
