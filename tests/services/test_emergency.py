"""Emergency recompute: freeze cities, re-run the rest, fast-track approval, publish a new
version with exact sums, frozen units untouched and changed people asked to re-sign."""

from __future__ import annotations

import pytest
from confirm_support import TOTAL, draft_plan, fresh_period, user
from sqlalchemy import func, select, update

from quotaflow.flows.interpreter import Action
from quotaflow.services import confirmation as conf
from quotaflow.services import emergency, flows, letters
from quotaflow.store import confirmation_queries as cq
from quotaflow.store import db
from quotaflow.store import plan_queries as pq
from quotaflow.store import queries as q
from quotaflow.store.emergency_models import EmergencyRecompute
from quotaflow.store.letter_models import CommitmentLetter
from quotaflow.store.models import AttributeValue, AuditEntry, OrgUnit, Plan
from quotaflow.store.outbox_models import OutboxEvent

CITIES = ["Shanghai", "Jinan"]
FROZEN_PEOPLE = ("P0001", "P0243")  # Shanghai (EAST-T1), Jinan (NORTH-T4)
MOVING_PERSON = "P0174"  # Xiamen (many others sit at their capacity cap)
OTHER_PERSON = "P0285"  # Wuhan
REASON = "Local policy change froze the Shanghai and Jinan targets."


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def published(ctx):
    """A period of its own with a published plan and signed cards for some people."""
    period = fresh_period(ctx)
    plan = draft_plan(ctx, period)
    conf.publish(ctx, plan, user(ctx, "hrbp"))
    codes = [*FROZEN_PEOPLE, MOVING_PERSON, OTHER_PERSON]
    letters.issue_letters(ctx, plan, [q.unit_by_code(ctx, c).id for c in codes],
                          user(ctx, "hrbp"))
    ctx.commit()
    for code in [*FROZEN_PEOPLE, MOVING_PERSON, OTHER_PERSON]:
        letter = letters.current_letter(ctx, q.unit_by_code(ctx, code).id)
        letters.sign(ctx, letter, user(ctx, f"sales.{code.lower()}"))
    return period, plan


def _targets(session, plan) -> dict[str, int]:
    return {u.code: int(pu.target) for pu, u in pq.plan_rows(session, plan.id)}


def _frozen_codes(session) -> set[str]:
    tops = session.scalars(select(OrgUnit).where(OrgUnit.active, OrgUnit.city_en.in_(CITIES)))
    out: set[str] = set()
    for top in tops:
        out.update(session.scalars(select(OrgUnit.code).where(
            OrgUnit.active, OrgUnit.path.startswith(top.path))))
    return out


def _assert_sums_exact(session, plan) -> None:
    rows = pq.plan_rows(session, plan.id)
    sums: dict[int, int] = {}
    for pu, u in rows:
        if u.parent_id is not None:
            sums[u.parent_id] = sums.get(u.parent_id, 0) + int(pu.target)
    parents = 0
    for pu, u in rows:
        if u.id in sums:
            parents += 1
            assert sums[u.id] == int(pu.target), f"children of {u.code} do not add up"
        if u.parent_id is None:
            assert int(pu.target) == plan.planned_total
    assert parents > 30  # company, regions and teams were all checked


def _approve(session, request, who="cfo"):
    instance = flows.act(session, request.flow_instance_id, user(session, who),
                         Action("approve"))
    session.commit()
    session.refresh(request)
    return instance


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _card(session, code):
    return letters.current_letter(session, q.unit_by_code(session, code).id)


def test_freezing_two_cities_with_a_new_total_publishes_an_exact_plan(ctx, published) -> None:
    period, plan = published
    new_total = TOTAL + 5_000_000
    before = _targets(ctx, plan)
    frozen = _frozen_codes(ctx)
    assert {"EAST-T1", "EAST-T2", "NORTH-T4", *FROZEN_PEOPLE} <= frozen
    old_cards = {c: _card(ctx, c) for c in [*FROZEN_PEOPLE, MOVING_PERSON]}
    assert all(card.status == "signed" for card in old_cards.values())

    request = emergency.submit(ctx, period, user(ctx, "hrbp"), reason=REASON, cities=CITIES,
                               total=f"{new_total:,}")
    assert request.status == "pending" and request.flow_instance_id
    assert set(request.frozen) == frozen
    assert request.summary["preview"]["frozen_kept"] and request.summary["preview"]["sums_exact"]
    assert cq.published_plan(ctx, period.id).id == plan.id  # nothing published before approval

    instance = _approve(ctx, request)
    assert instance.status == "approved"
    assert request.status == "published"
    new = ctx.get(Plan, request.result_plan_id)
    ctx.refresh(plan)
    assert new.status == "published" and plan.status == "superseded"
    assert new.based_on_id == plan.id
    assert cq.published_plan(ctx, period.id).id == new.id
    assert new.model_version_id == plan.model_version_id  # pinned to the same specs
    assert new.presets_version_id == plan.presets_version_id
    assert new.company_total == new_total
    assert new.planned_total == new.summary["requested_total"] == new_total
    _assert_sums_exact(ctx, new)

    after = _targets(ctx, new)
    for code in frozen:
        assert after[code] == before[code], f"frozen {code} moved"
    moved = {c for c in after if after[c] != before.get(c)}
    assert moved and not moved & frozen
    assert sum(after[c] - before[c] for c in moved if q.unit_by_code(ctx, c).depth == 1) \
        == 5_000_000  # the regions take the whole difference
    assert request.summary["result"]["changed"] == len(moved)

    # Changed people sign a new card; their signed card stays signed, marked replaced.
    assert after[MOVING_PERSON] != before[MOVING_PERSON]
    fresh = _card(ctx, MOVING_PERSON)
    old = ctx.get(CommitmentLetter, old_cards[MOVING_PERSON].id)
    assert fresh.id != old.id and fresh.status == "issued" and fresh.plan_id == new.id
    assert fresh.content["target"] == after[MOVING_PERSON]
    assert old.status == "signed" and old.superseded_by_id == fresh.id
    # Frozen people keep their signed card.
    for code in FROZEN_PEOPLE:
        assert _card(ctx, code).id == old_cards[code].id
        assert _card(ctx, code).status == "signed"

    # Region items follow the new version; changed ones wait for an answer again.
    items = {i.unit.code: i for i in cq.period_items(ctx, period.id)}
    assert all(i.plan_id == new.id for i in items.values())
    region = next(c for c in ("SOUTH", "CENTRAL", "NORTH") if c in moved)
    assert items[region].target == after[region] and items[region].status == "pending"
    assert "Changed from" in items[region].note_en

    notes = ctx.scalars(select(OutboxEvent).where(OutboxEvent.topic == "plan.version_created",
                                                  OutboxEvent.payload.isnot(None))).all()
    mine = [e for e in notes if e.payload.get("plan_id") == new.id]
    told = {e.payload["unit"] for e in mine if e.payload.get("unit")}
    assert told <= moved and not told & frozen
    depths = {q.unit_by_code(ctx, c).depth for c in told if c}
    assert {1, 2} <= depths  # the heads of changed regions (items) and teams were told
    actions = set(ctx.scalars(select(AuditEntry.action).where(
        AuditEntry.entity_type == "emergency_recompute",
        AuditEntry.entity_id == str(request.id))))
    assert actions == {"request_emergency_recompute", "publish_emergency_recompute"}


def test_same_total_keeps_unchanged_people_and_their_cards(ctx, published) -> None:
    period, plan = published
    # New inputs for one person of Xiamen: only that team's people re-spread.
    person = q.unit_by_code(ctx, MOVING_PERSON)
    ctx.execute(update(AttributeValue).where(
        AttributeValue.period_id == period.id, AttributeValue.unit_id == person.id,
        AttributeValue.name.in_(("hist_sales", "prev_quarter_sales", "market_potential")))
        .values(value=AttributeValue.value * 3))
    ctx.commit()
    before = _targets(ctx, plan)
    kept = _card(ctx, OTHER_PERSON)
    found = emergency.preview(ctx, period, cities=CITIES)
    assert found.ok and found.changed > 0 and found.planned_total == plan.planned_total
    assert any(r.code == "SOUTH" for r in found.regions)
    request = emergency.submit(ctx, period, user(ctx, "admin"), reason=REASON,
                               cities=["上海", "Jinan"])
    assert request.cities == sorted(CITIES)  # "上海" is Shanghai
    _approve(ctx, request, who="ceo")
    new = ctx.get(Plan, request.result_plan_id)
    _assert_sums_exact(ctx, new)
    after = _targets(ctx, new)
    assert new.company_total == plan.company_total and new.planned_total == plan.planned_total
    for code in _frozen_codes(ctx):
        assert after[code] == before[code]
    assert after[MOVING_PERSON] != before[MOVING_PERSON]
    assert after[OTHER_PERSON] == before[OTHER_PERSON]
    assert _card(ctx, OTHER_PERSON).id == kept.id and kept.superseded_by_id is None
    assert _card(ctx, MOVING_PERSON).status == "issued"


def test_rejected_request_publishes_nothing(ctx, published) -> None:
    period, plan = published
    plans_before = _count(ctx, Plan)
    request = emergency.submit(ctx, period, user(ctx, "hrbp"), reason=REASON,
                               unit_codes=["EAST-T1", "NORTH-T4"], total=TOTAL + 1_000_000)
    with pytest.raises(emergency.EmergencyError) as exc:  # one request at a time
        emergency.submit(ctx, period, user(ctx, "hrbp"), reason=REASON, cities=CITIES)
    assert exc.value.code == "pending"
    flows.act(ctx, request.flow_instance_id, user(ctx, "ceo"), Action("reject"))
    ctx.commit()
    ctx.refresh(request)
    assert request.status == "rejected" and request.result_plan_id is None
    assert _count(ctx, Plan) == plans_before
    assert cq.published_plan(ctx, period.id).id == plan.id


def test_only_authorised_roles_may_request(ctx, published) -> None:
    period, _plan = published
    for name in ("head.east", "lead.east.t1", "sales.p0001"):
        with pytest.raises(emergency.EmergencyError) as exc:
            emergency.submit(ctx, period, user(ctx, name), reason=REASON, cities=CITIES)
        assert exc.value.code == "not_allowed"
    assert emergency.pending_request(ctx, period.id) is None


def test_preview_writes_nothing_and_checks_its_input(ctx, published) -> None:
    period, plan = published
    counts = {m: _count(ctx, m) for m in (Plan, AuditEntry, EmergencyRecompute, OutboxEvent)}
    found = emergency.preview(ctx, period, cities=CITIES, total=TOTAL - 3_000_000)
    assert found.ok and found.frozen_kept and found.sums_exact
    assert {f.code for f in found.frozen} == {"EAST-T1", "EAST-T2", "NORTH-T4"}
    assert all(f.kept for f in found.frozen)
    assert sum(r.delta for r in found.regions) == -3_000_000
    assert found.frozen_count == len(_frozen_codes(ctx))
    ctx.commit()
    assert {m: _count(ctx, m) for m in counts} == counts
    assert cq.published_plan(ctx, period.id).id == plan.id

    cases = [({"cities": ["Atlantis"]}, "unknown_city"), ({"unit_codes": ["HQ"]}, "root_frozen"),
             ({"unit_codes": ["NOPE"]}, "unknown_unit"), ({}, "nothing_frozen"),
             ({"cities": CITIES, "total": "lots"}, "bad_total")]
    for kwargs, code in cases:
        with pytest.raises(emergency.EmergencyError) as exc:
            emergency.preview(ctx, period, **kwargs)
        assert exc.value.code == code, kwargs
    with pytest.raises(emergency.EmergencyError) as exc:
        emergency.submit(ctx, period, user(ctx, "hrbp"), reason="  ", cities=CITIES)
    assert exc.value.code == "reason_short" and exc.value.pointer == "/reason"


def test_freezing_a_whole_region_puts_the_difference_on_the_others(ctx, published) -> None:
    period, plan = published
    found = emergency.preview(ctx, period, unit_codes=["EAST", "P0174"], total=TOTAL + 999)
    assert found.ok
    assert {f.code for f in found.frozen} == {"EAST", "P0174"}
    regions = {r.code: r for r in found.regions}
    assert regions["EAST"].delta == 0
    assert sum(r.delta for r in found.regions) == 999
    east = q.unit_by_code(ctx, "EAST")
    before = _targets(ctx, plan)
    codes = dict(ctx.execute(select(OrgUnit.id, OrgUnit.code)).all())
    for unit_id in found.locks:
        assert found.new_targets[unit_id] == before[codes[unit_id]]
    assert sum(1 for u in found.locks if codes[u] != "P0174") == ctx.scalar(
        select(func.count()).select_from(OrgUnit).where(
            OrgUnit.active, OrgUnit.path.startswith(east.path)))


def test_the_command_previews_and_submits(app, ctx, published) -> None:
    from quotaflow.cli import plans_emergency

    period, plan = published
    runner = app.test_cli_runner()
    args = ["--period", period.code, "--freeze-city", "Shanghai", "--freeze-city", "Jinan",
            "--reason", REASON, "--as", "hrbp"]
    shown = runner.invoke(plans_emergency, [*args, "--preview", "--total", "250,000,000"])
    assert shown.exit_code == 0, shown.output
    assert "sums exact: True" in shown.output and "EAST:" in shown.output
    assert emergency.pending_request(ctx, period.id) is None
    refused = runner.invoke(plans_emergency, [*args[:-1], "head.east"])
    assert refused.exit_code != 0 and "may not request" in refused.output
    made = runner.invoke(plans_emergency, args)
    assert made.exit_code == 0, made.output
    request = emergency.pending_request(ctx, period.id)
    assert request is not None and f"#{request.id} submitted" in made.output
    assert request.plan_id == plan.id
