"""Confirmation, publishing, plan diffs and commitment letters through the API, by role
and scope: the same use cases as the pages, the same answers (absent outside the scope,
forbidden without the role)."""

from __future__ import annotations

import io

import pytest
from confirm_support import draft_plan, fresh_period, user
from sqlalchemy import select
from support import sign_in

from quotaflow.services import confirmation as conf
from quotaflow.services import letters, plans
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.letter_models import CommitmentLetter
from quotaflow.store.models import OrgUnit, Plan

API = "/api/v1"


@pytest.fixture
def published(app):
    """A period of its own with a freshly published plan: (period code, plan id, items)."""
    with app.app_context():
        session = db.session
        period = fresh_period(session)
        plan = draft_plan(session, period)
        conf.publish(session, plan, user(session, "hrbp"))
        items = {code: cq.item_for_unit(session, period.id, q.unit_by_code(session, code).id).id
                 for code in ("EAST", "NORTH")}
        return period.code, plan.id, items


def api(app, username: str):
    return sign_in(app.test_client(), username)


@pytest.mark.parametrize(("username", "status", "units"), [
    ("head.east", 200, {"EAST"}), ("head.north", 200, {"NORTH"}),
    ("lead.east.t1", 200, set()), ("sales.p0001", 200, set()),
    ("hrbp", 403, None), ("admin", 403, None), ("ceo", 403, None),
])
def test_my_confirmations_by_role(app, published, username, status, units) -> None:
    period, _plan, _items = published
    response = api(app, username).get(f"{API}/confirmations", query_string={"period": period})
    assert response.status_code == status
    if units is not None:
        assert {i["unit"] for i in response.get_json()["items"]} == units


def test_only_the_units_head_accepts_and_only_once(app, published) -> None:
    _period, _plan, items = published
    east = items["EAST"]
    for username in ("head.north", "lead.east.t1", "sales.p0001"):
        assert api(app, username).post(f"{API}/confirmations/{east}/accept",
                                       json={}).status_code == 404
    assert api(app, "hrbp").post(f"{API}/confirmations/{east}/accept").status_code == 403
    head = api(app, "head.east")
    stale = head.post(f"{API}/confirmations/{east}/accept", json={"version": 99})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "stale"
    done = head.post(f"{API}/confirmations/{east}/accept", json={"version": 1})
    assert done.status_code == 200 and done.get_json()["status"] == "accepted"
    again = head.post(f"{API}/confirmations/{east}/accept", json={})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_pending"


def test_accept_many_is_all_or_nothing_and_someone_elses_item_looks_absent(app, published
                                                                          ) -> None:
    _period, _plan, items = published
    head = api(app, "head.east")
    mixed = head.post(f"{API}/confirmations/accept",
                      json={"items": [{"id": items["EAST"]}, {"id": items["NORTH"]}]})
    assert mixed.status_code == 404
    with app.app_context():
        assert cq.item(db.session, items["EAST"]).status == "pending"
    assert head.post(f"{API}/confirmations/accept", json={"items": []}).status_code == 422
    done = head.post(f"{API}/confirmations/accept", json={"items": [{"id": items["EAST"]}]})
    assert done.status_code == 200
    assert [i["status"] for i in done.get_json()["items"]] == ["accepted"]


def test_appeal_with_uploaded_evidence_checked_on_the_server(app, published) -> None:
    _period, _plan, items = published
    east = items["EAST"]
    head = api(app, "head.east")
    bounds = head.get(f"{API}/confirmations/{east}/appeal").get_json()
    assert bounds["minimum"] < bounds["allocated"] < bounds["maximum"]
    assert api(app, "head.north").get(f"{API}/confirmations/{east}/appeal").status_code == 404

    def upload(client, unit: str):
        return client.post(f"{API}/uploads", data={
            "unit": unit, "file": (io.BytesIO(b"survey notes\n"), "survey.txt")},
            content_type="multipart/form-data")

    assert upload(api(app, "head.north"), "EAST").status_code == 404  # outside its scope
    assert upload(api(app, "sales.p0001"), "P0001").status_code == 403  # sales write nothing
    north_file = upload(api(app, "head.north"), "NORTH").get_json()["id"]
    stored = upload(head, "EAST")
    assert stored.status_code == 201
    file_id = stored.get_json()["id"]
    assert head.get(f"{API}/uploads/{file_id}").data == b"survey notes\n"
    assert api(app, "head.north").get(f"{API}/uploads/{file_id}").status_code == 404

    reason = "Two key accounts left the region."
    too_much = head.post(f"{API}/confirmations/{east}/appeal", json={
        "requested": bounds["maximum"] + bounds["step"], "reason": reason,
        "evidence": [file_id]})
    assert too_much.status_code == 422
    assert too_much.get_json()["error"]["details"]["pointer"] == "/requested"
    foreign = head.post(f"{API}/confirmations/{east}/appeal", json={
        "requested": bounds["minimum"], "reason": reason, "evidence": [north_file]})
    assert foreign.status_code == 422
    assert foreign.get_json()["error"]["code"] == "evidence_foreign"
    no_files = head.post(f"{API}/confirmations/{east}/appeal", json={
        "requested": bounds["minimum"], "reason": reason})
    assert no_files.status_code == 422
    with app.app_context():
        assert cq.item(db.session, east).status == "pending"
    sent = head.post(f"{API}/confirmations/{east}/appeal", json={
        "requested": bounds["minimum"], "reason": reason, "evidence": [file_id]})
    assert sent.status_code == 201
    appeal = sent.get_json()
    assert (appeal["requested"], appeal["evidence"]) == (bounds["minimum"], [file_id])
    assert appeal["flow_instance_id"] is not None
    with app.app_context():
        assert cq.item(db.session, east).status == "appealed"
    for username, status in (("head.east", 200), ("hrbp", 200), ("lead.east.t1", 404),
                             ("head.north", 404), ("sales.p0001", 404)):
        assert api(app, username).get(f"{API}/appeals/{appeal['id']}").status_code == status


@pytest.mark.parametrize("username", ["head.east", "lead.east.t1", "sales.p0001", "ceo"])
def test_only_admins_and_hrbp_publish(app, username) -> None:
    with app.app_context():
        plan_id = draft_plan(db.session, fresh_period(db.session)).id
    assert api(app, username).post(f"{API}/plans/{plan_id}/publish").status_code == 403


def test_publish_opens_the_confirmation_once(app) -> None:
    with app.app_context():
        period = fresh_period(db.session)
        plan_id, period_id = draft_plan(db.session, period).id, period.id
    done = api(app, "hrbp").post(f"{API}/plans/{plan_id}/publish")
    assert done.status_code == 200 and done.get_json()["status"] == "published"
    with app.app_context():
        east = cq.item_for_unit(db.session, period_id, q.unit_by_code(db.session, "EAST").id)
        assert east.status == "pending"
    again = api(app, "admin").post(f"{API}/plans/{plan_id}/publish")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_draft"
    assert api(app, "admin").post(f"{API}/plans/999999999/publish").status_code == 404


def test_the_diff_lists_changes_within_the_callers_scope(app, published) -> None:
    _period, plan_id, _items = published
    with app.app_context():
        period = cq.published_plan(db.session, q.period_by_code(db.session, _period).id).period
        other = draft_plan(db.session, period, "aggressive").id
        elsewhere = draft_plan(db.session, fresh_period(db.session)).id
    url = f"{API}/plans/{other}/diff"
    # A draft is absent for those who may not make plans; once it is no draft, they read
    # its changes within their scope.
    assert api(app, "head.east").get(url, query_string={"against": plan_id}).status_code == 404
    with app.app_context():
        db.session.get(Plan, other).status = "superseded"
        db.session.commit()
    every = api(app, "hrbp").get(url, query_string={"against": plan_id}).get_json()
    assert every["units_total"] > every["units_changed"] > 0
    changes = [abs(u["change"]) for u in every["units"][:every["units_changed"]]]
    assert changes == sorted(changes, reverse=True)
    east = api(app, "head.east").get(url, query_string={"against": plan_id}).get_json()
    with app.app_context():
        east_path = q.unit_by_code(db.session, "EAST").path
        inside = set(db.session.scalars(select(OrgUnit.code).where(
            OrgUnit.path.startswith(east_path))))
    assert {u["code"] for u in east["units"]} <= inside and east["units_total"] < every[
        "units_total"]
    mine = api(app, "sales.p0001").get(url, query_string={"against": plan_id}).get_json()
    assert {u["code"] for u in mine["units"]} == {"P0001"}
    # Another period's plan, or no plan to compare with: absent.
    assert api(app, "hrbp").get(url, query_string={"against": elsewhere}).status_code == 404
    assert api(app, "hrbp").get(f"{API}/plans/{other}/diff").status_code == 404


@pytest.fixture
def letter_id(app) -> int:
    """A fresh card for P0001 (sales.p0001, in EAST-T1 led by lead.east.t1)."""
    with app.app_context():
        session = db.session
        period = fresh_period(session)
        plan = plans.create_plan(session, None, period, "balanced", 249_500_000, None)
        (letter,) = letters.issue_letters(session, plan, [q.unit_by_code(session, "P0001").id],
                                          None)
        session.commit()
        return letter.id


def _status(app, letter_id: int) -> str:
    with app.app_context():
        return db.session.get(CommitmentLetter, letter_id).status


def test_letters_sign_and_countersign_by_role_and_scope(app, letter_id) -> None:
    person = api(app, "sales.p0001")
    listing = person.get(f"{API}/letters").get_json()
    assert listing["mine"]["id"] == letter_id and listing["mine"]["can_sign"]
    assert listing["team"] == []
    lead = api(app, "lead.east.t1")
    row = next(x for x in lead.get(f"{API}/letters").get_json()["team"] if x["id"] == letter_id)
    assert (row["can_sign"], row["can_countersign"]) == (False, False)
    for username in ("sales.p0082", "lead.east.t2", "head.north"):
        client = api(app, username)
        assert client.get(f"{API}/letters/{letter_id}").status_code == 404
        assert client.get(f"{API}/letters/{letter_id}/pdf").status_code == 404
        assert client.post(f"{API}/letters/{letter_id}/sign").status_code == 404
    for username in ("lead.east.t1", "head.east", "hrbp"):
        assert api(app, username).post(f"{API}/letters/{letter_id}/sign").status_code == 403
    early = lead.post(f"{API}/letters/{letter_id}/countersign")
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "person_not_signed"
    signed = person.post(f"{API}/letters/{letter_id}/sign")
    assert signed.status_code == 200 and signed.get_json()["status"] == "signed"
    assert person.post(f"{API}/letters/{letter_id}/sign").status_code == 409
    assert api(app, "head.east").post(
        f"{API}/letters/{letter_id}/countersign").status_code == 403
    assert person.post(f"{API}/letters/{letter_id}/countersign").status_code == 403
    assert _status(app, letter_id) == "signed"
    done = lead.post(f"{API}/letters/{letter_id}/countersign")
    assert done.status_code == 200
    body = done.get_json()
    assert body["status"] == "countersigned" and body["intact"]
    assert [s["role"] for s in body["signatures"]] == ["person", "manager"]
    pdf = person.get(f"{API}/letters/{letter_id}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
