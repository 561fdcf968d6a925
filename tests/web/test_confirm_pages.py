"""Confirmation pages: publish, my confirmations (accept with htmx), the appeal form
(range and evidence checked on the server), the diff of two versions, alignment."""

from __future__ import annotations

import io

import pytest
from confirm_support import draft_plan, evidence, fresh_period, user
from sqlalchemy import select

from quotaflow.services import confirmation as conf
from quotaflow.services import plans
from quotaflow.services.uow import Context
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.models import Plan
from quotaflow.store.outbox_models import OutboxEvent


@pytest.fixture
def setup(app):
    # Requests must not run inside this app context (they would share its ``g``).
    with app.app_context():
        period = fresh_period(db.session)
        plan = draft_plan(db.session, period)
        return period.id, period.code, plan.id


def _item(period_id: int, code: str):
    unit = q.unit_by_code(db.session, code)
    return cq.item_for_unit(db.session, period_id, unit.id)


def test_publish_button_and_permission(app, setup, as_user) -> None:
    period_id, _, plan_id = setup
    sales = as_user("sales.p0001")
    assert sales.post(f"/plans/{plan_id}/publish").status_code == 403
    hrbp = as_user("hrbp")
    page = hrbp.get(f"/plans/{plan_id}").get_data(as_text=True)
    assert 'data-testid="publish"' in page
    response = hrbp.post(f"/plans/{plan_id}/publish")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Plan, plan_id).status == "published"
        assert _item(period_id, "EAST").status == "pending"
    assert 'data-testid="publish"' not in hrbp.get(f"/plans/{plan_id}").get_data(as_text=True)


def test_my_confirmations_and_htmx_accept(app, setup, as_user) -> None:
    period_id, _, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        item_id = _item(period_id, "EAST").id
    head = as_user("head.east")
    page = head.get("/confirm").get_data(as_text=True)
    assert f'id="item-{item_id}"' in page
    assert 'data-testid="item-NORTH"' not in page
    # Another region's head cannot answer for EAST: it looks absent.
    assert as_user("head.north").post(f"/confirm/items/{item_id}/accept").status_code == 404
    response = head.post(f"/confirm/items/{item_id}/accept", headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    assert fragment.lstrip().startswith("<tr") and f'id="item-{item_id}"' in fragment
    # The actions sit in a box inside the cell (a flex cell broke the table's row lines).
    assert 'class="actions"' not in fragment and '<div class="row-actions">' in fragment
    assert "Accept</button>" not in fragment and "接受</button>" not in fragment
    with app.app_context():
        assert _item(period_id, "EAST").status == "accepted"


def test_appeal_form_checks_range_and_evidence_on_the_server(app, setup, as_user) -> None:
    period_id, _, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        item = _item(period_id, "EAST")
        bounds = conf.appeal_bounds(db.session, item)
        item_id = item.id
    head = as_user("head.east")
    page = head.get(f"/confirm/items/{item_id}/appeal").get_data(as_text=True)
    # The page's input carries the range (the schema given to the page).
    assert f'min="{bounds.minimum}"' in page and f'max="{bounds.maximum}"' in page
    # The live line under the field: the change, or the range when outside it.
    check = f"/confirm/items/{item_id}/appeal/check"
    inside = head.get(check, query_string={"requested": bounds.minimum})
    assert inside.status_code == 200 and 'class="down"' in inside.get_data(as_text=True)
    outside = head.get(check, query_string={"requested": bounds.maximum + bounds.step})
    assert f"{bounds.maximum:,}" in outside.get_data(as_text=True)
    assert as_user("head.north").get(check, query_string={"requested": 1}).status_code == 404
    too_much = head.post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(bounds.maximum + bounds.step), "reason": "Two key accounts left.",
        "evidence": (io.BytesIO(b"survey notes\n"), "survey.txt")},
        content_type="multipart/form-data")
    assert too_much.status_code == 422
    text = too_much.get_data(as_text=True)
    assert 'data-testid="error-requested"' in text
    assert f"{bounds.maximum:,}" in text
    no_files = head.post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(bounds.minimum), "reason": "Two key accounts left."})
    assert no_files.status_code == 422
    assert 'data-testid="error-evidence"' in no_files.get_data(as_text=True)
    with app.app_context():
        assert _item(period_id, "EAST").status == "pending"
    sent = head.post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(bounds.minimum), "reason": "Two key accounts left the region.",
        "evidence": (io.BytesIO(b"survey notes\n"), "survey.txt")},
        content_type="multipart/form-data")
    assert sent.status_code == 302
    with app.app_context():
        item = _item(period_id, "EAST")
        # Back to the appeal's own period, not a list mixing every period's targets.
        assert sent.location.endswith(f"/confirm?period={item.group.period.code}")
        assert item.status == "appealed"
        appeal = cq.open_appeals(db.session, [item.id])[0]
        assert appeal.requested == bounds.minimum and len(appeal.evidence) == 1
        appeal_id = appeal.id
    detail = head.get(f"/confirm/appeals/{appeal_id}")
    assert detail.status_code == 200 and "survey.txt" in detail.get_data(as_text=True)
    assert as_user("head.north").get(f"/confirm/appeals/{appeal_id}").status_code == 404


def test_diff_page_lists_changes_first_within_scope(app, setup, as_user) -> None:
    period_id, _, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        plan = db.session.get(Plan, plan_id)
        east = _item(period_id, "EAST")
        locks = conf.adjustment_locks(db.session, plan, east, int(east.target) - 1_000_000,
                                      "siblings")
        new = plans.reallocate(db.session, plan, locks, user(db.session, "hrbp"), "diff test")
        db.session.commit()
        new_id = new.id
    hrbp = as_user("hrbp")
    assert 'data-testid="diff-link"' in hrbp.get(f"/plans/{new_id}").get_data(as_text=True)
    page = hrbp.get(f"/plans/{new_id}/diff").get_data(as_text=True)
    assert 'data-testid="changed-EAST"' in page
    first_unchanged = page.find("<tr>", page.find("<tbody>"))
    assert page.find('data-testid="changed-EAST"') < first_unchanged or first_unchanged < 0
    north = as_user("head.north").get(f"/plans/{new_id}/diff").get_data(as_text=True)
    assert "changed-EAST" not in north and ">EAST<" not in north


def test_alignment_page_for_hrbp_only(app, setup, as_user) -> None:
    _, period_code, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    page = as_user("ceo").get(f"/confirm/alignment?period={period_code}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-testid="level-region"' in text and 'data-testid="time-to-align"' in text
    # The level is named in the reader's language, not by its key.
    with app.app_context():
        region = next(lv for lv in q.levels(db.session) if lv.key == "region")
        names = (region.name_zh, region.name_en)
    assert f'<tr data-testid="level-region">\n        <td>{names[0]}</td>' in text
    assert as_user("head.east").get(f"/confirm/alignment?period={period_code}").status_code == 403


def test_appeal_form_pre_attaches_evidence_from_the_query(app, setup, as_user, tmp_path) -> None:
    """``?evidence=<upload id>`` (the what-if's "Open the appeal form with this evidence")
    pre-attaches a visible upload of the same unit; anything else is ignored."""
    period_id, _, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        item = _item(period_id, "EAST")
        bounds = conf.appeal_bounds(db.session, item)
        item_id = item.id
        own = evidence(db.session, q.unit_by_code(db.session, "EAST"), tmp_path, "whatif-EAST.csv")
        foreign = evidence(db.session, q.unit_by_code(db.session, "NORTH"), tmp_path,
                           "whatif-NORTH.csv")
        db.session.commit()
    head = as_user("head.east")
    page = head.get(f"/confirm/items/{item_id}/appeal?evidence={own}&evidence={foreign}"
                    "&evidence=x&evidence=999999999").get_data(as_text=True)
    assert f'name="evidence_id" value="{own}"' in page and "whatif-EAST.csv" in page
    assert f'value="{foreign}"' not in page and "whatif-NORTH.csv" not in page
    # Posting the form as shown (no new file) sends the pre-attached evidence.
    sent = head.post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(bounds.minimum), "reason": "The what-if shows a lower reach.",
        "evidence_id": str(own)})
    assert sent.status_code == 302
    with app.app_context():
        appeal = cq.open_appeals(db.session, [item_id])[0]
        assert appeal.evidence == [own]


def test_accept_all_waiting_targets_at_once(app, setup, as_user) -> None:
    """A head with many waiting targets accepts them in one go after ticking that they
    reviewed them; the group settles once and the next level opens."""
    period_id, period_code, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    mine_page = f"/confirm?period={period_code}"
    with app.app_context():
        regions = {code: (_item(period_id, code).id, _item(period_id, code).version)
                   for code in ("EAST", "SOUTH", "NORTH", "CENTRAL", "WEST", "NE")}
    # Each region head has one item: no bulk form for a single target.
    head = as_user("head.east")
    assert 'data-testid="accept-all-form"' not in head.get(mine_page).get_data(as_text=True)
    for code, (item_id, _) in regions.items():
        username = "head.ne" if code == "NE" else f"head.{code.lower()}"
        as_user(username).post(f"/confirm/items/{item_id}/accept")
    # The region group settled: EAST's six teams open; three have no lead of their own, so
    # head.east answers for EAST-T3..T5 (the others are their team leads').
    page = head.get(mine_page).get_data(as_text=True)
    assert page.count('data-testid="accept-all-form"') == 1
    with app.app_context():
        mine = {code: _item(period_id, code) for code in ("EAST-T3", "EAST-T4", "EAST-T5")}
        answers = [f"{i.id}:{i.version}" for i in mine.values()]
        t1 = _item(period_id, "EAST-T1")
    assert "全部接受（3 个）" in page  # head.east reads Chinese: "Accept all 3"
    # Without the tick nothing happens.
    head.post("/confirm/accept-all", data={"item": answers})
    with app.app_context():
        assert {_item(period_id, c).status for c in mine} == {"pending"}
    # Someone else's item in the list: refused as absent, nothing accepted.
    assert head.post("/confirm/accept-all", data={
        "item": [*answers, f"{t1.id}:{t1.version}"], "reviewed": "yes"}).status_code == 404
    # A stale version (the target changed since the page was shown): all or nothing.
    stale = [*answers[:2], answers[2].split(":")[0] + ":999"]
    head.post("/confirm/accept-all", data={"item": stale, "reviewed": "yes"})
    with app.app_context():
        assert {_item(period_id, c).status for c in mine} == {"pending"}
    response = head.post("/confirm/accept-all", data={"item": answers, "reviewed": "yes"},
                         follow_redirects=True)
    assert response.status_code == 200
    with app.app_context():
        assert {_item(period_id, c).status for c in mine} == {"accepted"}
        # Already accepted ones are skipped on a second post, not an error.
    again = head.post("/confirm/accept-all", data={"item": answers, "reviewed": "yes"},
                      follow_redirects=True).get_data(as_text=True)
    assert 'class="flash error"' not in again
    for lead, code in (("lead.east.t1", "EAST-T1"), ("lead.east.t2", "EAST-T2"),
                       ("lead.east.t6", "EAST-T6")):
        with app.app_context():
            item_id = _item(period_id, code).id
        as_user(lead).post(f"/confirm/items/{item_id}/accept")
    with app.app_context():
        # EAST's team group settled: EAST-T1's people are open.
        p0002 = q.unit_by_code(db.session, "P0002")
        assert cq.item_for_unit(db.session, period_id, p0002.id).status == "pending"


def test_my_confirmations_follow_the_period_of_the_link(app, setup, as_user) -> None:
    """The notifications link to ``/confirm?period=<code>``: that period's targets only
    (the page used to ignore the parameter and mix every period)."""
    _, period_code, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        other = fresh_period(db.session)
        other_plan = draft_plan(db.session, other)
        other_code, other_plan_id = other.code, other_plan.id
    as_user("hrbp").post(f"/plans/{other_plan_id}/publish")
    head = as_user("head.east")
    both = head.get("/confirm").get_data(as_text=True)
    assert f"<td>{period_code}</td>" in both and f"<td>{other_code}</td>" in both
    assert 'data-testid="period-filter"' in both
    one = head.get(f"/confirm?period={period_code}").get_data(as_text=True)
    assert f"<td>{period_code}</td>" in one and f"<td>{other_code}</td>" not in one
    assert f'<strong aria-current="page">{period_code}</strong>' in one


def test_appeal_and_its_approval_link_each_other(app, setup, as_user, tmp_path) -> None:
    """The approver's task page names the fields and links to the appeal (its evidence);
    the appeal links to its approval for those who may open it; once approved it says so
    in the reader's language, and the superseded plan points at the new version."""
    period_id, _, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        item = _item(period_id, "EAST")
        bounds = conf.appeal_bounds(db.session, item)
        upload = evidence(db.session, item.unit, tmp_path)
        db.session.commit()
        # A change of at most 5%: any one of HRBP and CFO decides.
        small = (bounds.allocated * 97 // 100) // bounds.step * bounds.step
        item_id = item.id
    head = as_user("head.east")
    assert head.post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(small), "reason": "Two key accounts left the region.",
        "evidence_id": str(upload)}).status_code == 302
    with app.app_context():
        appeal = cq.open_appeals(db.session, [item_id])[0]
        appeal_id, flow_id = appeal.id, appeal.flow_instance_id
    detail = head.get(f"/confirm/appeals/{appeal_id}").get_data(as_text=True)
    assert f'href="/tasks/{flow_id}" data-testid="flow-link"' in detail
    # The CEO may read the appeal but takes no part in its flow: no dead link.
    ceo = as_user("ceo").get(f"/confirm/appeals/{appeal_id}")
    assert ceo.status_code == 200 and 'data-testid="flow-link"' not in ceo.get_data(as_text=True)
    hrbp = as_user("hrbp")
    task = hrbp.get(f"/tasks/{flow_id}").get_data(as_text=True)
    assert f'href="/confirm/appeals/{appeal_id}" data-testid="subject-link"' in task
    assert '<th scope="row" data-field="change_pct">' in task
    assert '<th scope="row" data-field="change_pct">change_pct</th>' not in task
    # Unnamed steps read as what they do, not as their ids ("apply", "cc", "done").
    for raw in ("<strong>apply</strong>", "<strong>cc</strong>", "<strong>done</strong>"):
        assert raw not in task
    assert hrbp.post(f"/tasks/{flow_id}/act", data={"action": "approve"}).status_code in (200, 302)
    detail = head.get(f"/confirm/appeals/{appeal_id}").get_data(as_text=True)
    assert 'data-testid="decision"' in detail and f"{small:,}" in detail
    assert f"Appeal #{appeal_id} of EAST approved" not in detail  # the English audit note
    with app.app_context():
        new_id = db.session.get(Plan, plan_id) and cq.published_plan(db.session, period_id).id
    assert new_id != plan_id
    old_page = hrbp.get(f"/plans/{plan_id}").get_data(as_text=True)
    assert 'data-testid="superseded-by"' in old_page
    assert f'href="/plans/{new_id}"' in old_page and f"/plans/{new_id}/diff?against={plan_id}" in old_page
    assert 'data-testid="superseded-by"' not in hrbp.get(f"/plans/{new_id}").get_data(as_text=True)
    # The new version's note is said in the reader's language (from structured data);
    # the appealed unit and its amounts only to those who may read that unit.
    with app.app_context():
        east_en = q.unit_by_code(db.session, "EAST").name_en
        allocated = f"{bounds.allocated:,}"
    head.post("/language", data={"lang": "en", "next": "/"})
    page = head.get(f"/plans/{new_id}/diff").get_data(as_text=True)
    assert (f'data-testid="version-note">New version after appeal #{appeal_id} of {east_en} '
            f"was approved: from {allocated} to {small:,} yuan.") in page
    north = as_user("head.north")
    north.post("/language", data={"lang": "en", "next": "/"})
    page = north.get(f"/plans/{new_id}/diff").get_data(as_text=True)
    assert f'data-testid="version-note">New version after appeal #{appeal_id} was approved.' in page
    assert east_en not in page and f"{small:,}" not in page
    with app.app_context():
        stored = db.session.get(Plan, new_id)
        assert "EAST" not in (stored.note or "")  # the free-text note names no unit
        north_paths = [q.unit_by_code(db.session, "NORTH").path]
        seen = plans.summary_for_scope(Context(db.session), stored, north_paths)["version_note"]
        assert seen == {"kind": "appeal", "appeal_id": appeal_id}


def test_a_rejected_appeal_sends_the_head_back_to_that_period(app, setup, as_user,
                                                              tmp_path) -> None:
    """The "appeal rejected: confirm the target" message links to the period's targets
    (it linked to every period's)."""
    period_id, period_code, plan_id = setup
    as_user("hrbp").post(f"/plans/{plan_id}/publish")
    with app.app_context():
        item = _item(period_id, "EAST")
        bounds = conf.appeal_bounds(db.session, item)
        upload = evidence(db.session, item.unit, tmp_path)
        db.session.commit()
        small = (bounds.allocated * 98 // 100) // bounds.step * bounds.step
        item_id = item.id
    as_user("head.east").post(f"/confirm/items/{item_id}/appeal", data={
        "requested": str(small), "reason": "Two key accounts left the region.",
        "evidence_id": str(upload)})
    with app.app_context():
        appeal = cq.open_appeals(db.session, [item_id])[0]
        appeal_id, flow_id = appeal.id, appeal.flow_instance_id
    as_user("cfo").post(f"/tasks/{flow_id}/act", data={"action": "reject", "comment": "No."})
    with app.app_context():
        assert _item(period_id, "EAST").status == "pending"
        events = db.session.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "confirmation.opened")).all()
        told = [e.payload for e in events if e.payload.get("appeal_id") == appeal_id]
        assert [p["url"] for p in told] == [f"/confirm?period={period_code}"]
    detail = as_user("head.east").get(f"/confirm/appeals/{appeal_id}").get_data(as_text=True)
    assert 'data-testid="decision"' in detail
