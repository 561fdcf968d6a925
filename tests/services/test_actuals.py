"""Actuals: file and API ingest (all or nothing, errors by row/column or pointer,
idempotent replays, audited updates), bucketing by date and the roll-up up the tree."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from quotaflow.services import actuals, tracking
from quotaflow.services.auth import principal_for
from quotaflow.services.seeding import SEED_DIR, add_period
from quotaflow.services.spreadsheets import SheetImportError
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import AuditEntry, OrgUnit
from quotaflow.store.tracking_models import Actual

# A period of these tests' own (on purpose: the demo quarter already has actuals, and
# what a test stores is read back by date); each test's rows vanish with its transaction.
TEST_PERIOD = "1999Q4"
START, END = dt.date(1999, 10, 1), dt.date(1999, 12, 31)


@pytest.fixture
def test_period(app) -> None:
    with app.app_context():
        add_period(db.session, TEST_PERIOD, START, END)
        db.session.commit()


@pytest.fixture
def ctx(app, test_period):
    with app.app_context():
        yield db.session


def _user(session, name):
    user = q.user_by_username(session, name)
    return user, principal_for(user)


def _csv(rows) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def _stored(session) -> dict[tuple[str, str, str], float]:
    rows = session.execute(select(Actual.unit_id, Actual.date, Actual.source, Actual.value)
                           .where(Actual.date >= START, Actual.date <= END)).all()
    code_of = dict(session.execute(select(OrgUnit.id, OrgUnit.code)).all())
    return {(code_of[u], d.isoformat(), s): v for u, d, s, v in rows}


def test_csv_ingest_then_replay_is_unchanged_and_a_new_value_is_an_audited_update(ctx) -> None:
    hrbp, principal = _user(ctx, "hrbp")
    data = _csv([["unit_code", "date", "value", "source", "source_id"],
                 ["#P0001", "1999-10-05", "1", "", ""],  # the template's example row
                 ["P0001", "1999-10-05", "1,200", "crm", "A-1"],
                 ["P0002", "1999/10/06", "800.5", "", ""]])
    first = actuals.import_file(ctx, hrbp, principal, data, "week.csv")
    assert (first.records, first.inserted, first.updated, first.unchanged) == (2, 2, 0, 0)
    assert _stored(ctx) == {("P0001", "1999-10-05", "crm"): 1200.0,
                            ("P0002", "1999-10-06", "upload"): 800.5}
    audits = ctx.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "ingest_actuals"))
    again = actuals.import_file(ctx, hrbp, principal, data, "week.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert ctx.scalar(select(func.count()).select_from(AuditEntry)
                      .where(AuditEntry.action == "ingest_actuals")) == audits  # nothing to audit
    changed = _csv([["unit_code", "date", "sales", "source", "source_id"],
                    ["P0001", "1999-10-05", "1500", "crm", "A-1"]])
    update = actuals.import_file(ctx, hrbp, principal, changed, "fix.csv")
    assert (update.inserted, update.updated, update.unchanged) == (0, 1, 0)
    assert _stored(ctx)[("P0001", "1999-10-05", "crm")] == 1500.0
    entry = ctx.scalars(select(AuditEntry).where(AuditEntry.action == "ingest_actuals")
                        .order_by(AuditEntry.id.desc())).first()
    assert entry.before["changed"] == [{"unit": "P0001", "date": "1999-10-05", "source": "crm",
                                        "source_id": "A-1", "before": 1200.0, "after": 1500.0}]
    assert entry.actor_name == "hrbp"


def test_uploading_the_seed_file_again_is_a_pure_replay(ctx) -> None:
    hrbp, principal = _user(ctx, "hrbp")
    data = (SEED_DIR / "actuals.csv").read_bytes()  # unit_code, week, date, sales
    result = actuals.import_file(ctx, hrbp, principal, data, "actuals.csv")
    assert (result.inserted, result.updated) == (0, 0)
    assert result.unchanged == result.records == data.count(b"\n") - 1


def test_xlsx_ingest_with_date_cells_and_chinese_headers(ctx) -> None:
    hrbp, principal = _user(ctx, "hrbp")
    book = Workbook()
    sheet = book.active
    sheet.append(["单位代码", "日期", "业绩"])
    sheet.append(["P0003", dt.datetime(1999, 11, 2), 4321])
    sheet.append(["P0004", "1999-11-03", 100.25])
    out = io.BytesIO()
    book.save(out)
    result = actuals.import_file(ctx, hrbp, principal, out.getvalue(), "results.xlsx")
    assert (result.inserted, result.records) == (2, 2)
    assert _stored(ctx) == {("P0003", "1999-11-02", "upload"): 4321.0,
                            ("P0004", "1999-11-03", "upload"): 100.25}


def test_every_bad_row_is_reported_by_row_and_column_and_nothing_is_written(ctx) -> None:
    lead, principal = _user(ctx, "lead.east.t1")  # team lead of EAST-T1 (P0001..)
    outside = q.unit_by_code(ctx, "P0480").code
    data = _csv([["unit_code", "date", "value"],
                 ["P0001", "1999-10-05", "10"],          # fine
                 ["P0001", "not a date", "10"],          # row 3: B
                 ["P0001", "1999-10-06", "ten"],         # row 4: C
                 [outside, "1999-10-06", "5"],           # row 5: A, not in scope
                 ["EAST-T1", "1999-10-06", "5"],         # row 6: A, not a person
                 ["P0001", "1800-01-01", "5"],           # row 7: B, no period
                 ["P0001", "1999-10-05", "11"],          # row 8: duplicate of row 2
                 ["", "1999-10-06", ""]])                # row 9: A and C required
    with pytest.raises(SheetImportError) as err:
        actuals.import_file(ctx, lead, principal, data, "bad.csv")
    found = {(i.row, i.column, i.code) for i in err.value.issues}
    assert found == {(3, "B", "actuals.bad_date"), (4, "C", "cell.not_a_number"),
                     (5, "A", "unit.unknown"), (6, "A", "actuals.not_person"),
                     (7, "B", "actuals.no_period"), (8, "A", "actuals.duplicate"),
                     (9, "A", "actuals.required"), (9, "C", "actuals.required")}
    dup = next(i for i in err.value.issues if i.code == "actuals.duplicate")
    assert dup.params["first"] == 2
    assert _stored(ctx) == {}  # all or nothing


def test_missing_and_unknown_columns_are_refused(ctx) -> None:
    hrbp, principal = _user(ctx, "hrbp")
    with pytest.raises(SheetImportError) as err:
        actuals.import_file(ctx, hrbp, principal, _csv([["unit_code", "when", "value"],
                                                        ["P0001", "1999-10-05", "1"]]), "x.csv")
    codes = {(i.code, i.column) for i in err.value.issues}
    assert ("column.unknown", "B") in codes and ("column.missing", None) in codes


def test_api_ingest_is_idempotent_and_reports_pointers(app, test_period, as_user) -> None:
    client = as_user("hrbp")
    body = [{"unit": "P0005", "date": "1999-12-01", "value": 250, "source": "crm",
             "source_id": "X-9"},
            {"unit": "P0006", "date": "1999-12-02", "value": 125.5}]
    first = client.post("/api/v1/actuals", json=body)
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"records": 2, "inserted": 2, "updated": 0, "unchanged": 0}
    replay = client.post("/api/v1/actuals", json=body)
    assert replay.status_code == 200
    assert replay.get_json() == {"records": 2, "inserted": 0, "updated": 0, "unchanged": 2}
    changed = client.post("/api/v1/actuals", json={"actuals": [{**body[0], "value": 300}]})
    assert changed.get_json()["updated"] == 1
    bad = client.post("/api/v1/actuals", json=[
        body[1], {"unit": "P0005", "date": "1999-13-01", "value": "12"},
        {"unit": "NOPE", "date": "1999-12-01", "value": 1, "colour": "red"}])
    assert bad.status_code == 422
    error = bad.get_json()["error"]
    assert error["code"] == "invalid_actuals"
    pointers = {(i["pointer"], i["code"]) for i in error["details"]["issues"]}
    assert pointers == {("/1/value", "cell.bad_type"), ("/2/colour", "actuals.unknown_field"),
                        ("/2/unit", "unit.unknown")}
    not_list = client.post("/api/v1/actuals", json={"unit": "P0005"})
    assert not_list.status_code == 422
    # A sales person has no unit.write: refused before anything is read.
    assert as_user("sales.p0001").post("/api/v1/actuals", json=body).status_code == 403
    # A team lead may not record another team's people.
    lead = as_user("lead.north.t4").post("/api/v1/actuals", json=body[:1])
    assert lead.status_code == 422
    assert lead.get_json()["error"]["details"]["issues"][0]["pointer"] == "/0/unit"
    with app.app_context():
        assert _stored(db.session) == {("P0005", "1999-12-01", "crm"): 300.0,
                                       ("P0006", "1999-12-02", "api"): 125.5}


def test_openapi_documents_the_actuals_and_alerts_routes(client) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "post" in paths["/actuals"] and "get" in paths["/alerts"]
    assert "/units/{code}/progress" in paths


def test_rollup_sums_every_level_vectorised() -> None:
    # 0 company, 1-2 regions, 3-4 teams of region 1, 5 team of region 2, 6-9 persons.
    parent = np.array([-1, 0, 0, 1, 1, 2, 3, 3, 4, 5])
    depth = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    own = np.zeros((10, 2))
    own[6:] = [[1, 10], [2, 20], [3, 30], [4, 40]]
    total = actuals.rollup(parent, depth, own)
    assert total[3].tolist() == [3, 30] and total[4].tolist() == [3, 30]
    assert total[1].tolist() == [6, 60] and total[2].tolist() == [4, 40]
    assert total[0].tolist() == [10, 100]
    assert total[6:].tolist() == own[6:].tolist()


def test_demo_actuals_are_bucketed_by_date_and_rolled_up(ctx) -> None:
    period = q.period_by_code(ctx, "2026Q4")
    tree = tracking.unit_tree(ctx)
    own = actuals.weekly_columns(ctx, period, tree.ids)
    total = actuals.rollup(tree.parent_row, tree.depth, own)
    with (SEED_DIR / "actuals.csv").open(encoding="utf-8") as handle:
        seed = list(csv.DictReader(handle))
    # Week 1 of the period is Thursday Oct 1 to Sunday Oct 4: the seed's week 1 is dated on
    # that Sunday; week 7 (Nov 9-15) has nothing yet.
    week1 = sum(float(r["sales"]) for r in seed if r["date"] == "2026-10-04")
    hq = int(np.flatnonzero(tree.codes == "HQ")[0])
    assert total[hq, 0] == pytest.approx(week1) and week1 > 0
    assert total[hq, 6] == 0
    assert total[hq, :7].sum() == pytest.approx(sum(float(r["sales"]) for r in seed))
    team = int(np.flatnonzero(tree.codes == "NORTH-T4")[0])
    members = np.flatnonzero(tree.parent_row == team)
    assert len(members) > 0
    assert np.allclose(total[team], own[members].sum(axis=0))
    region = int(tree.parent_row[team])
    assert np.allclose(total[region], total[tree.parent_row == region].sum(axis=0))


def test_an_import_racing_another_is_refused_whole_with_a_clear_reason(ctx, monkeypatch) -> None:
    """Another import stores a key between this batch's check and its insert: the unique
    key refuses the insert; nothing of the batch is kept and the error says why (it used
    to escape as a bare IntegrityError, a 500 on the page and the API)."""
    from sqlalchemy import insert

    user, principal = _user(ctx, "hrbp")
    p5 = q.unit_by_code(ctx, "P0005").id
    original = actuals._write

    def racing_write(session, keyed):
        out = original(session, keyed)  # our rows, as if the table had not held the key
        # The same key, as the other import stored it: the database refuses the pair.
        session.execute(insert(Actual), [{"unit_id": p5, "date": dt.date(1999, 12, 3),
                                          "metric": "sales", "value": 1.0, "source": "upload",
                                          "source_id": ""}])
        return out

    monkeypatch.setattr(actuals, "_write", racing_write)
    data = _csv([["unit_code", "date", "value"], ["P0005", "1999-12-03", 7],
                 ["P0006", "1999-12-03", 8]])
    with pytest.raises(SheetImportError) as refused:
        actuals.import_file(ctx, user, principal, data, "race.csv")
    assert [i.code for i in refused.value.issues] == ["actuals.concurrent"]
    with pytest.raises(actuals.ActualsError) as api:
        actuals.ingest_records(ctx, user, principal, [
            {"unit": "P0005", "date": "1999-12-03", "value": 7, "source": "upload"}])
    assert api.value.issues[0].code == "actuals.concurrent"
    assert "send the batch again" in api.value.issues[0].message
    assert _stored(ctx) == {}  # all or nothing: not even P0006's row
