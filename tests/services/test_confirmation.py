"""Two-way confirmation: publish, accept, appeal (range, evidence), approve -> a new plan
version with locks, reject, level-by-level opening, letters, alignment metrics."""

from __future__ import annotations

import pytest
from confirm_support import draft_plan, evidence, fresh_period, user
from sqlalchemy import select

from quotaflow.flows.interpreter import Action
from quotaflow.services import alignment as alignment_service
from quotaflow.services import confirmation as conf
from quotaflow.services import flows, plans
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db, flow_queries
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store.confirmation_models import ConfirmationGroup, ConfirmationItem
from quotaflow.store.letter_models import CommitmentLetter
from quotaflow.store.models import OrgUnit, Plan
from quotaflow.store.outbox_models import OutboxEvent


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session


@pytest.fixture
def published(ctx):
    period = fresh_period(ctx)
    plan = draft_plan(ctx, period)
    conf.publish(ctx, plan, user(ctx, "hrbp"))
    return period, plan


def _items(session, period, parent_code):
    parent = q.unit_by_code(session, parent_code)
    group = cq.group(session, period.id, parent.id)
    return group, {i.unit.code: i for i in group.items}


def _head(session, item):
    ids = conf.acting_heads(session, item.unit)
    assert ids, f"nobody answers for {item.unit.code}"
    return session.get(type(user(session, "admin")), ids[0])


def _accept_all(session, group, skip=()):
    for item in list(group.items):
        if item.unit.code not in skip and item.status == "pending":
            conf.accept(session, item.id, _head(session, item))


def _sums_exact(session, plan):
    rows = pq.plan_rows(session, plan.id)
    sums: dict[int, int] = {}
    for pu, u in rows:
        if u.parent_id is not None:
            sums[u.parent_id] = sums.get(u.parent_id, 0) + int(pu.target)
    for pu, u in rows:
        if u.id in sums:
            assert sums[u.id] == int(pu.target), f"children of {u.code} do not add up"


def _appeal(session, item, requested, tmp_path, reason="Two key accounts left the region."):
    return conf.submit_appeal(session, item.id, _head(session, item), requested=requested,
                              reason=reason, evidence=[evidence(session, item.unit, tmp_path)])


def _decide(session, appeal, kind, changes=None):
    instance = flow_queries.for_subject(session, "appeal", appeal.id)[0]
    hrbp = user(session, "hrbp")
    if changes:
        flows.act(session, instance.id, hrbp, Action("edit", changes=changes))
    # Above 5% the HRBP and the CFO countersign; below, either one decides.
    for name in ("hrbp", "cfo"):
        if flow_queries.for_subject(session, "appeal", appeal.id)[0].status != "running":
            break
        flows.act(session, instance.id, user(session, name),
                  Action(kind, comment="decided in a test"))
        session.commit()
    session.refresh(appeal)
    return appeal


def test_publish_opens_the_region_items_and_tells_the_heads(ctx, published) -> None:
    period, plan = published
    assert plan.status == "published"
    group, items = _items(ctx, period, "HQ")
    assert group.level == "region" and group.status == "open"
    assert set(items) == {u.code for u in q.unit_by_code(ctx, "HQ").children if u.active}
    east = items["EAST"]
    assert east.status == "pending"
    assert east.target == pq.plan_unit(ctx, plan.id, east.unit_id).target
    head = user(ctx, "head.east")
    events = ctx.scalars(select(OutboxEvent).where(OutboxEvent.topic == "confirmation.opened",
                                                   OutboxEvent.unit_id == east.unit_id)).all()
    assert any(head.id in e.to_users for e in events)
    # Publishing again is refused; a second draft supersedes the first.
    with pytest.raises(conf.ConfirmationError) as refused:
        conf.publish(ctx, plan, user(ctx, "hrbp"))
    assert refused.value.code == "not_draft"
    second = draft_plan(ctx, period, "conservative")
    conf.publish(ctx, second, user(ctx, "hrbp"))
    ctx.refresh(plan)
    assert plan.status == "superseded" and second.status == "published"
    ctx.refresh(east)
    assert east.plan_id == second.id
    assert east.target == pq.plan_unit(ctx, second.id, east.unit_id).target


def test_only_the_units_own_head_accepts(ctx, published) -> None:
    period, _ = published
    _, items = _items(ctx, period, "HQ")
    with pytest.raises(conf.ConfirmationError) as refused:
        conf.accept(ctx, items["EAST"].id, user(ctx, "head.north"))
    assert refused.value.code == "not_yours"
    item = conf.accept(ctx, items["EAST"].id, user(ctx, "head.east"))
    assert item.status == "accepted" and item.decided_by_id == user(ctx, "head.east").id
    with pytest.raises(conf.ConfirmationError) as again:
        conf.accept(ctx, item.id, user(ctx, "head.east"))
    assert again.value.code == "not_pending"


def test_an_answer_on_an_outdated_page_is_refused(ctx, published) -> None:
    period, _ = published
    _, items = _items(ctx, period, "HQ")
    item = items["WEST"]
    seen = item.version
    ctx.execute(ConfirmationItem.__table__.update().where(ConfirmationItem.id == item.id)
                .values(version=seen + 1, note_en="changed elsewhere"))
    ctx.commit()
    with pytest.raises(conf.ConfirmationError) as refused:
        conf.accept(ctx, item.id, user(ctx, "head.west"), version=seen)
    assert refused.value.code == "stale" and refused.value.params["unit"] == "WEST"


def test_appeal_out_of_range_is_refused_with_the_field_and_bounds(ctx, published,
                                                                  tmp_path) -> None:
    period, _ = published
    _, items = _items(ctx, period, "HQ")
    east = items["EAST"]
    bounds = conf.appeal_bounds(ctx, east)
    assert bounds.minimum <= east.target * 0.9 + bounds.step
    assert bounds.maximum >= east.target * 1.1 - bounds.step
    with pytest.raises(conf.ConfirmationError) as refused:
        _appeal(ctx, east, bounds.maximum + bounds.step, tmp_path)
    error = refused.value
    assert error.code == "out_of_range" and error.pointer == "/requested"
    assert error.params["minimum"] == bounds.minimum
    assert error.params["maximum"] == bounds.maximum
    assert f"{bounds.maximum:,}" in error.message and "Requested target" in error.message
    ctx.refresh(east)
    assert east.status == "pending"


def test_appeal_without_evidence_is_refused(ctx, published) -> None:
    period, _ = published
    _, items = _items(ctx, period, "HQ")
    east = items["EAST"]
    bounds = conf.appeal_bounds(ctx, east)
    with pytest.raises(conf.ConfirmationError) as refused:
        conf.submit_appeal(ctx, east.id, user(ctx, "head.east"),
                           requested=bounds.minimum, reason="Two key accounts left.",
                           evidence=[])
    assert refused.value.code == "evidence_missing"
    assert refused.value.pointer == "/evidence"
    assert refused.value.params["minimum"] == 1


def test_approved_appeal_makes_a_new_version_with_agreed_units_kept(ctx, published,
                                                                    tmp_path) -> None:
    period, plan = published
    _, items = _items(ctx, period, "HQ")
    conf.accept(ctx, items["NORTH"].id, user(ctx, "head.north"))
    north_target = int(items["NORTH"].target)
    east = items["EAST"]
    bounds = conf.appeal_bounds(ctx, east)
    wanted = bounds.minimum + bounds.step * 2  # below the allocation
    appeal = _appeal(ctx, east, wanted, tmp_path)
    assert appeal.status == "open" and appeal.flow_instance_id
    ctx.refresh(east)
    assert east.status == "appealed"
    # The approver may edit the requested value before approving.
    approved_value = wanted + bounds.step
    appeal = _decide(ctx, appeal, "approve", {"requested": approved_value})
    assert appeal.status == "approved" and appeal.approved == approved_value
    new = ctx.get(Plan, appeal.result_plan_id)
    ctx.refresh(plan)
    assert new.status == "published" and new.based_on_id == plan.id
    assert plan.status == "superseded"
    assert new.number == plan.number + 1
    assert new.created_by_id in {user(ctx, "hrbp").id, user(ctx, "cfo").id}  # the approver
    assert (new.model_version_id, new.presets_version_id, new.risks_version_id) == (
        plan.model_version_id, plan.presets_version_id, plan.risks_version_id)
    east_unit = q.unit_by_code(ctx, "EAST")
    assert pq.plan_unit(ctx, new.id, east_unit.id).target == approved_value
    north = q.unit_by_code(ctx, "NORTH")
    assert pq.plan_unit(ctx, new.id, north.id).target == north_target
    assert new.planned_total == plan.planned_total
    _sums_exact(ctx, new)
    # The diff lists the changes first: EAST and the siblings that absorbed it.
    diff = plans.plan_diff(ctx, plan, new, [q.root_unit(ctx).path])
    changed = [r for r in diff if r.changed]
    assert changed and all(not r.changed for r in diff[len(changed):])
    regions = {r.unit.code: r for r in changed if r.unit.depth == 1}
    assert regions["EAST"].change == approved_value - east.target or \
        regions["EAST"].new == approved_value
    assert "NORTH" not in regions
    assert sum(r.change for r in regions.values()) == 0
    ctx.refresh(east)
    assert east.status == "accepted" and east.target == approved_value
    # Siblings that changed are pending with a note and were told.
    for code, row in regions.items():
        if code == "EAST":
            continue
        item = items[code]
        ctx.refresh(item)
        assert item.status == "pending" and item.target == row.new
        assert f"{row.old:,}" in item.note_en and f"{row.new:,}" in item.note_en
    told = ctx.scalars(select(OutboxEvent).where(OutboxEvent.topic == "plan.version_created",
                                                 OutboxEvent.unit_id.in_(
                                                     [r.unit.id for r in changed]))).all()
    assert {e.payload["unit"] for e in told} >= set(regions)


def test_rejected_appeal_sends_the_item_back_to_pending(ctx, published, tmp_path) -> None:
    period, plan = published
    _, items = _items(ctx, period, "HQ")
    south = items["SOUTH"]
    bounds = conf.appeal_bounds(ctx, south)
    appeal = _appeal(ctx, south, bounds.maximum, tmp_path)
    appeal = _decide(ctx, appeal, "reject")
    assert appeal.status == "rejected" and appeal.result_plan_id is None
    ctx.refresh(south)
    assert south.status == "pending" and "rejected" in south.note_en
    assert cq.published_plan(ctx, period.id).id == plan.id


def test_reserve_keeps_every_sibling_and_moves_the_planned_total(ctx, published) -> None:
    period, plan = published
    _, items = _items(ctx, period, "HQ")
    east = items["EAST"]
    locks = conf.adjustment_locks(ctx, plan, east, int(east.target) + 1_000_000, "reserve")
    new = plans.reallocate(ctx, plan, locks, user(ctx, "hrbp"), "reserve test")
    ctx.commit()
    assert new.planned_total == plan.planned_total + 1_000_000
    for code, item in items.items():
        expected = item.target + (1_000_000 if code == "EAST" else 0)
        assert pq.plan_unit(ctx, new.id, item.unit_id).target == expected
    _sums_exact(ctx, new)


def test_levels_open_in_turn_and_settled_people_get_letters(ctx, published) -> None:
    period, plan = published
    root_group, _ = _items(ctx, period, "HQ")
    _accept_all(ctx, root_group)
    ctx.refresh(root_group)
    assert root_group.status == "settled" and root_group.settled_at is not None
    team_group, teams = _items(ctx, period, "EAST")
    assert team_group.level == "team" and set(teams)
    # lead.east.t1 answers for EAST-T1; a team nobody leads is answered by head.east.
    # (Other tests may add users with grants: membership, not equality.)
    assert user(ctx, "lead.east.t1").id in conf.acting_heads(ctx, teams["EAST-T1"].unit)
    assert user(ctx, "head.east").id not in conf.acting_heads(ctx, teams["EAST-T1"].unit)
    led = {"EAST-T1", "EAST-T2", "EAST-T6"}
    for code in set(teams) - led:
        assert user(ctx, "head.east").id in conf.acting_heads(ctx, teams[code].unit)
    with pytest.raises(conf.ConfirmationError):  # the region head may not answer for T1
        conf.accept(ctx, teams["EAST-T1"].id, user(ctx, "head.east"))
    _accept_all(ctx, team_group)
    # EAST-T3 has no lead and its people no accounts: head.east answers for them, and no
    # demo user's letters change.
    people_group, people = _items(ctx, period, "EAST-T3")
    assert people_group.level == "person"
    assert all(user(ctx, "head.east").id in conf.acting_heads(ctx, i.unit)
               for i in people.values())
    _accept_all(ctx, people_group)
    ctx.refresh(people_group)
    assert people_group.status == "settled"
    letters = ctx.scalars(select(CommitmentLetter).where(
        CommitmentLetter.plan_id == plan.id,
        CommitmentLetter.unit_id.in_([i.unit_id for i in people.values()]))).all()
    assert {x.unit_id for x in letters} == {i.unit_id for i in people.values()}
    assert all(x.content["target"] == people[ctx.get(OrgUnit, x.unit_id).code].target
               for x in letters)
    stats = alignment_service.alignment(ctx, period)
    assert stats.letters["issued"] == len(people) and stats.aligned_at is None
    person = next(s for s in stats.levels if s.level == "person")
    assert person.groups_settled == 1 and person.accepted == len(people)


def test_alignment_counts(ctx, published, tmp_path) -> None:
    period, _ = published
    _, items = _items(ctx, period, "HQ")
    conf.accept(ctx, items["EAST"].id, user(ctx, "head.east"))
    bounds = conf.appeal_bounds(ctx, items["WEST"])
    _appeal(ctx, items["WEST"], bounds.maximum, tmp_path)
    stats = alignment_service.alignment(ctx, period)
    region = next(s for s in stats.levels if s.level == "region")
    n = len(items)
    assert region.units == n and region.items == n
    assert (region.accepted, region.appealed, region.pending) == (1, 1, n - 2)
    assert region.appeals == 1 and region.dispute_rate == pytest.approx(1 / n)
    assert (region.groups_open, region.groups_settled) == (1, 0)
    assert stats.appeals_by_status["open"] == 1
    assert stats.published_at is not None and stats.aligned_at is None
    assert stats.elapsed is not None and stats.elapsed.total_seconds() >= 0
    team = next(s for s in stats.levels if s.level == "team")
    assert team.items == 0 and team.groups_open == 0
    assert ctx.scalar(select(ConfirmationGroup.id).where(
        ConfirmationGroup.period_id == period.id, ConfirmationGroup.level == "team")) is None


def test_a_person_appeal_is_decided_by_the_team_lead_and_stays_in_the_team(ctx, published,
                                                                           tmp_path) -> None:
    period, plan = published
    root_group, _ = _items(ctx, period, "HQ")
    _accept_all(ctx, root_group)
    team_group, _ = _items(ctx, period, "EAST")
    _accept_all(ctx, team_group)
    _, people = _items(ctx, period, "EAST-T1")
    mine = people["P0001"]
    assert user(ctx, "sales.p0001").id in conf.acting_heads(ctx, mine.unit)
    bounds = conf.appeal_bounds(ctx, mine)
    assert bounds.flow == "appeal_person"
    others = [i for code, i in people.items() if code != "P0001"]
    conf.accept(ctx, others[0].id, _head(ctx, others[0]))
    kept = int(others[0].target)
    appeal = _appeal(ctx, mine, bounds.maximum, tmp_path)
    instance = flow_queries.for_subject(ctx, "appeal", appeal.id)[0]
    flows.act(ctx, instance.id, user(ctx, "lead.east.t1"), Action("approve"))
    ctx.commit()
    ctx.refresh(appeal)
    assert appeal.status == "approved" and appeal.approved == bounds.maximum
    new = ctx.get(Plan, appeal.result_plan_id)
    assert new.created_by_id == user(ctx, "lead.east.t1").id
    _sums_exact(ctx, new)
    diff = [r for r in plans.plan_diff(ctx, plan, new, [q.root_unit(ctx).path]) if r.changed]
    team = q.unit_by_code(ctx, "EAST-T1")
    assert all(r.unit.parent_id == team.id for r in diff), "only the team's people move"
    assert {r.unit.code for r in diff} >= {"P0001"}
    assert pq.plan_unit(ctx, new.id, others[0].unit_id).target == kept
    assert sum(r.change for r in diff) == 0


def test_accept_many_is_all_or_nothing_and_settles_the_group(ctx, published) -> None:
    """A head answering for several units accepts them in one unit of work: refused as a
    whole when one is not theirs or changed since; a group it completes settles."""
    period, _ = published
    regions, _ = _items(ctx, period, "HQ")
    _accept_all(ctx, regions)
    _, teams = _items(ctx, period, "EAST")
    head = user(ctx, "head.east")
    own = [teams[c] for c in ("EAST-T3", "EAST-T4", "EAST-T5")]
    answers = [(i.id, i.version) for i in own]
    with pytest.raises(conf.ConfirmationError) as refused:
        conf.accept_many(ctx, [*answers, (teams["EAST-T1"].id, None)], head)
    assert refused.value.code == "not_yours"
    with pytest.raises(conf.ConfirmationError) as stale:
        conf.accept_many(ctx, [*answers[:2], (own[2].id, own[2].version + 5)], head)
    assert stale.value.code == "stale"
    assert {cq.item(ctx, i.id).status for i in own} == {"pending"}
    done = conf.accept_many(ctx, answers, head)
    assert [i.unit.code for i in done] == ["EAST-T3", "EAST-T4", "EAST-T5"]
    # Accepted already: skipped, not refused.
    assert conf.accept_many(ctx, answers, head) == []
    for code in ("EAST-T1", "EAST-T2", "EAST-T6"):
        conf.accept(ctx, teams[code].id, _head(ctx, teams[code]))
    group, _ = _items(ctx, period, "EAST")
    assert group.status == "settled"
    lead = user(ctx, "lead.east.t1")
    _, people = _items(ctx, period, "EAST-T1")
    mine = [(i.id, i.version) for i in people.values() if conf.can_act(ctx, i, lead)]
    assert len(mine) == len(people) - 1  # P0001 answers for themself
    conf.accept_many(ctx, mine, lead)
    group, _ = _items(ctx, period, "EAST-T1")
    assert group.status == "open"
    conf.accept(ctx, people["P0001"].id, user(ctx, "sales.p0001"))
    group, _ = _items(ctx, period, "EAST-T1")
    assert group.status == "settled"
    settled = ctx.scalars(select(CommitmentLetter).where(
        CommitmentLetter.unit_id.in_([i.unit_id for i in people.values()]),
        CommitmentLetter.plan_id == people["P0001"].plan_id)).all()
    assert len(settled) == len(people)


def test_my_items_and_retargeting_look_up_the_heads_in_one_query(ctx, published) -> None:
    """Who answers is looked up for all items at once, not one query per item (a region
    head has every person of the teams nobody leads)."""
    from sqlalchemy import event

    period, _ = published
    root_group, _ = _items(ctx, period, "HQ")
    _accept_all(ctx, root_group)
    team_group, _ = _items(ctx, period, "EAST")
    _accept_all(ctx, team_group)
    head = user(ctx, "head.east")
    units = [i.unit for i in cq.period_items(ctx, period.id)]
    assert conf.acting_heads_map(ctx, units) == {u.id: conf.acting_heads(ctx, u) for u in units}
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    engine = ctx.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        mine = conf.my_items(ctx, head)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(mine) > 20  # the people of the teams nobody leads, at least
    assert all(head.id in conf.acting_heads(ctx, row.item.unit) for row in mine)
    assert len(statements) <= 8, statements  # not one per item


def test_a_group_settling_again_keeps_the_cards_of_people_whose_target_stayed(ctx, published
                                                                              ) -> None:
    period, plan = published
    for parent in ("HQ", "EAST"):
        group, _ = _items(ctx, period, parent)
        _accept_all(ctx, group)
    people_group, people = _items(ctx, period, "EAST-T3")
    _accept_all(ctx, people_group)
    first = {code: conf_letter(ctx, item.unit_id) for code, item in people.items()}
    assert all(x is not None and x.plan_id == plan.id for x in first.values())
    # A new version moves two people of the team (one up, one down by the same step).
    up, down = sorted(people)[:2]
    step = conf.appeal_bounds(ctx, people[up]).step
    locks = {uid: target for uid, parent_id, _path, target in cq.plan_tree(ctx, plan.id)
             if parent_id is not None and uid != people[down].unit_id}
    locks[people[up].unit_id] += step
    new = plans.reallocate(ctx, plan, locks, user(ctx, "hrbp"), "test")
    changed = conf.sync_items(ctx, plan, new, user(ctx, "hrbp"))
    ctx.commit()
    assert {i.unit.code for i in changed} == {up, down}
    ctx.refresh(people_group)
    assert people_group.status == "open"
    _accept_all(ctx, people_group)
    ctx.refresh(people_group)
    assert people_group.status == "settled"
    for code, item in people.items():
        card = conf_letter(ctx, item.unit_id)
        if code in (up, down):
            assert card.plan_id == new.id and card.content["target"] == item.target
        else:  # the same target: the card already issued stays, not a new one to sign
            assert card.id == first[code].id and card.superseded_by_id is None


def conf_letter(session, unit_id):
    from quotaflow.services import letters

    return letters.current_letter(session, unit_id)
