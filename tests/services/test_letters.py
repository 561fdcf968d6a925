"""Commitment letters: exact splits, derivation, signatures, the guard, new versions."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from fractions import Fraction

import numpy as np
import pytest
from confirm_support import fresh_period
from plan_support import own_period
from sqlalchemy import select, update

from quotaflow.services import letters, plans
from quotaflow.services.letter_pdf import FontMissingError, find_font
from quotaflow.store import db
from quotaflow.store import queries as q
from quotaflow.store.guards import ImmutableRecordError
from quotaflow.store.letter_models import CommitmentLetter, LetterSignature
from quotaflow.store.models import AuditEntry, PlanUnit
from quotaflow.store.outbox_models import OutboxEvent

TOTAL = 249_500_000
PERSON = "P0001"  # in EAST-T1; user sales.p0001, team lead lead.east.t1


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


@pytest.fixture
def period(ctx):
    return own_period(ctx)


def _user(session, username):
    return q.user_by_username(session, username)


def _unit(session, code):
    return q.unit_by_code(session, code)


def _plan(session, period, total=TOTAL):
    return plans.create_plan(session, _user(session, "hrbp"), period, "balanced", total, None)


def _issue(session, plan, codes=(PERSON,)):
    issued = letters.issue_letters(session, plan, [_unit(session, c).id for c in codes],
                                   _user(session, "hrbp"))
    session.commit()
    return issued


def _canonical_sha(content) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _events(session, topic, letter_id):
    return [e for e in session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic))
            if e.payload.get("letter_id") == letter_id]


# -- splitting -------------------------------------------------------------------------

def test_largest_remainder_is_exact_and_fair() -> None:
    assert letters.largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert letters.largest_remainder(100, [31, 30, 31]) == [34, 32, 34]
    assert letters.largest_remainder(7, [0, 0]) == [4, 3]
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 15)
        weights = [Fraction(rng.randint(0, 1000), rng.randint(1, 50)) for _ in range(n)]
        total = rng.randint(0, 10**12)
        parts = letters.largest_remainder(total, weights)
        assert sum(parts) == total
        whole = sum(weights) or 1
        for part, w in zip(parts, weights, strict=True):
            quota = total * w / whole if sum(weights) else Fraction(total, n)
            assert abs(part - quota) < 1  # never more than a yuan off its exact share


def test_split_by_days_sums_exactly_months_and_weeks(ctx, period) -> None:
    weeks = [(w.week_no, w.start_date, w.end_date) for w in period.weeks]
    for target in (0, 1, 13, 1_000_003, 987_654_321):
        months, week_rows = letters.split_target(target, period.start_date, period.end_date,
                                                 weeks)
        assert [m["month"] for m in months] == ["2001-10", "2001-11", "2001-12"]
        assert [m["days"] for m in months] == [31, 30, 31]
        assert sum(m["amount"] for m in months) == target
        assert sum(w["amount"] for w in week_rows) == target
        assert len(week_rows) == len(period.weeks)
    months, week_rows = letters.split_target(92_000, period.start_date, period.end_date, weeks)
    assert [m["amount"] for m in months] == [31_000, 30_000, 31_000]
    assert week_rows[0]["amount"] == 7_000  # a full week: 7 of 92 days


def test_split_follows_the_red_line_curve_of_the_period(ctx, period) -> None:
    """The card's weeks are the steps of the curve the person's red line follows."""
    from quotaflow.services import tracking
    from quotaflow.store import queries as q

    demo = q.period_by_code(ctx, "2026Q4")  # seasonal spec active, past quarters seeded
    choice = tracking.pacing_curve(ctx, demo)
    assert choice.kind == "seasonal"
    split = letters.period_split(ctx, demo, 1_400_000)
    assert split.method == "pacing_curve" and split.spec["kind"] == "seasonal"
    assert sum(w["amount"] for w in split.weeks) == 1_400_000
    assert sum(m["amount"] for m in split.months) == 1_400_000
    due = np.diff(choice.curve.values) * 1_400_000
    assert np.abs(np.array([w["amount"] for w in split.weeks]) - due).max() < 1

    # A period with no past quarters before it has no seasonal history: split by days.
    fallback = letters.period_split(ctx, period, 1_400_000)
    assert (fallback.method, fallback.fallback) == ("days", "missing_history")
    assert sum(w["amount"] for w in fallback.weeks) == 1_400_000


# -- issuing ---------------------------------------------------------------------------

def test_issued_card_holds_the_target_its_split_and_a_derivation_that_adds_up(ctx, period
                                                                              ) -> None:
    plan = _plan(ctx, period)
    (letter,) = _issue(ctx, plan, [PERSON, "EAST-T1"])  # the team is not a person: no card
    c = letter.content
    unit = _unit(ctx, PERSON)
    row = ctx.get(PlanUnit, (plan.id, unit.id))
    assert (letter.plan_id, letter.unit_id, letter.status) == (plan.id, unit.id, "issued")
    assert c["target"] == int(row.target) > 0
    assert c["unit"]["code"] == PERSON and c["team"]["code"] == "EAST-T1"
    assert c["person"]["username"] == "sales.p0001"
    assert sum(m["amount"] for m in c["months"]) == c["target"]
    assert sum(w["amount"] for w in c["weeks"]) == c["target"]
    d = c["derivation"]
    assert d["factors"] and all(isinstance(f["amount"], int) for f in d["factors"])
    assert sum(f["amount"] for f in d["factors"]) == d["factors_total"]
    assert d["factors_total"] + d["bounds_adjustment"] + d["rounding_adjustment"] == c["target"]
    assert d["adds_up"] is True
    assert letter.content_sha256 == _canonical_sha(c) == letters.content_sha256(c)
    # Issuing again for the same plan gives the same card back.
    assert _issue(ctx, plan) == [letter]
    (event,) = _events(ctx, "letter.issued", letter.id)
    assert event.to_users == [_user(ctx, "sales.p0001").id]
    assert event.payload["url"] == f"/letters/{letter.id}"
    assert ctx.scalar(select(AuditEntry).where(AuditEntry.action == "issue_letter",
                                               AuditEntry.entity_id == str(letter.id)))


# -- signing ---------------------------------------------------------------------------

def test_sign_records_who_when_and_the_hash_of_the_content(ctx, period) -> None:
    (letter,) = _issue(ctx, _plan(ctx, period))
    person = _user(ctx, "sales.p0001")
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    sig = letters.sign(ctx, letter, person, "10.1.2.3")
    ctx.expire_all()
    stored = ctx.scalar(select(LetterSignature).where(LetterSignature.letter_id == letter.id))
    assert (stored.role, stored.user_id, stored.remote_addr) == ("person", person.id, "10.1.2.3")
    assert before <= stored.signed_at <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert stored.content_sha256 == _canonical_sha(ctx.get(CommitmentLetter, letter.id).content)
    assert sig.id == stored.id
    assert ctx.get(CommitmentLetter, letter.id).status == "signed"
    (event,) = _events(ctx, "letter.signed", letter.id)
    assert _user(ctx, "lead.east.t1").id in event.to_users
    entry = ctx.scalar(select(AuditEntry).where(AuditEntry.action == "sign_letter",
                                                AuditEntry.entity_id == str(letter.id)))
    assert entry.actor_id == person.id and entry.remote_addr == "10.1.2.3"
    with pytest.raises(letters.LetterError) as exc:
        letters.sign(ctx, ctx.get(CommitmentLetter, letter.id), person)
    assert exc.value.code == "already_signed"


def test_only_the_person_signs_and_only_their_team_lead_countersigns_after(ctx, period
                                                                          ) -> None:
    (letter,) = _issue(ctx, _plan(ctx, period))
    lead = _user(ctx, "lead.east.t1")
    for username in ("sales.p0082", "lead.east.t1", "head.east", "hrbp"):
        with pytest.raises(letters.LetterError) as exc:
            letters.sign(ctx, letter, _user(ctx, username))
        assert exc.value.code == "not_yours"
    with pytest.raises(letters.LetterError) as exc:
        letters.countersign(ctx, letter, lead)
    assert exc.value.code == "person_not_signed"
    letters.sign(ctx, letter, _user(ctx, "sales.p0001"))
    for username in ("lead.east.t2", "head.east", "hrbp", "admin", "sales.p0001"):
        with pytest.raises(letters.LetterError) as exc:
            letters.countersign(ctx, letter, _user(ctx, username))
        assert exc.value.code == "not_manager"
    assert [u.username for u in letters.managers_of(ctx, letter.unit)] == ["lead.east.t1"]
    sig = letters.countersign(ctx, letter, lead, "10.9.9.9")
    ctx.expire_all()
    letter = ctx.get(CommitmentLetter, letter.id)
    assert letter.status == "countersigned"
    assert (sig.role, sig.user_id, sig.content_sha256) == ("manager", lead.id,
                                                           letter.content_sha256)
    assert [s.role for s in letter.signatures] == ["person", "manager"]
    (event,) = _events(ctx, "letter.completed", letter.id)
    assert event.payload["card"] == letter.content
    assert event.payload["content_sha256"] == letter.content_sha256
    assert [s["role"] for s in event.payload["signatures"]] == ["person", "manager"]
    with pytest.raises(letters.LetterError) as exc:
        letters.countersign(ctx, letter, lead)
    assert exc.value.code == "already_signed"


def test_a_card_whose_stored_content_no_longer_matches_its_hash_cannot_be_signed(ctx, period
                                                                                ) -> None:
    (letter,) = _issue(ctx, _plan(ctx, period))
    original = dict(letter.content)
    tampered = {**original, "target": original["target"] - 1}
    ctx.execute(update(CommitmentLetter).where(CommitmentLetter.id == letter.id)
                .values(content=tampered))  # behind the ORM's back, as a raw UPDATE would
    ctx.commit()
    ctx.expire_all()
    try:
        with pytest.raises(letters.LetterError) as exc:
            letters.sign(ctx, ctx.get(CommitmentLetter, letter.id), _user(ctx, "sales.p0001"))
        assert exc.value.code == "tampered"
        assert not letters.verify(ctx.get(CommitmentLetter, letter.id))
    finally:
        ctx.rollback()
        ctx.execute(update(CommitmentLetter).where(CommitmentLetter.id == letter.id)
                    .values(content=original))
        ctx.commit()


# -- the guard -------------------------------------------------------------------------

def test_the_guard_refuses_changes_to_an_issued_or_signed_card(ctx, period) -> None:
    (letter,) = _issue(ctx, _plan(ctx, period))
    letters.sign(ctx, letter, _user(ctx, "sales.p0001"))
    letter_id = letter.id

    def refused(change) -> None:
        ctx.expire_all()
        row = ctx.get(CommitmentLetter, letter_id)
        change(row)
        with pytest.raises(ImmutableRecordError):
            ctx.flush()
        ctx.rollback()

    refused(lambda r: setattr(r, "content", {**r.content, "target": 1}))
    refused(lambda r: setattr(r, "content_sha256", "0" * 64))
    refused(lambda r: setattr(r, "version", r.version + 10))
    refused(lambda r: setattr(r, "status", "issued"))
    refused(lambda r: setattr(r, "status", "superseded"))
    refused(lambda r: setattr(r.signatures[0], "user_id", _user(ctx, "admin").id))
    refused(lambda r: setattr(r.signatures[0], "content_sha256", "f" * 64))
    refused(lambda r: ctx.delete(r.signatures[0]))
    refused(lambda r: ctx.delete(r))
    ctx.expire_all()
    row = ctx.get(CommitmentLetter, letter_id)
    assert row.status == "signed" and letters.verify(row)


# -- new plan versions -----------------------------------------------------------------

def test_a_changed_target_in_a_new_plan_issues_a_new_card_and_supersedes_the_old(ctx, period
                                                                                 ) -> None:
    first = _plan(ctx, period)
    signed, unsigned = _issue(ctx, first, [PERSON, "P0002"])
    assert (signed.unit.code, unsigned.unit.code) == (PERSON, "P0002")
    letters.sign(ctx, signed, _user(ctx, "sales.p0001"))
    signed_sig = signed.content_sha256

    second = _plan(ctx, period, total=int(TOTAL * 0.8))
    new = {x.unit_id: x for x in letters.supersede_for_plan(ctx, second, None)}
    ctx.commit()
    ctx.expire_all()
    old_signed = ctx.get(CommitmentLetter, signed.id)
    old_unsigned = ctx.get(CommitmentLetter, unsigned.id)
    new_signed, new_unsigned = new[old_signed.unit_id], new[old_unsigned.unit_id]
    assert new_signed.plan_id == second.id and new_signed.version == old_signed.version + 1
    assert new_signed.content["target"] != old_signed.content["target"]
    assert new_signed.status == "issued" and not new_signed.signatures
    # The signed card stays signed, readable and intact; it points at its successor.
    assert old_signed.status == "signed" and old_signed.superseded_by_id == new_signed.id
    assert old_signed.content_sha256 == signed_sig and letters.verify(old_signed)
    assert old_signed.signature("person").content_sha256 == signed_sig
    # The unsigned card is superseded.
    assert old_unsigned.status == "superseded"
    assert old_unsigned.superseded_by_id == new_unsigned.id
    assert letters.current_letter(ctx, old_signed.unit_id).id == new_signed.id
    assert [x.id for x in letters.letter_history(ctx, old_signed.unit_id)][:2] == [
        new_signed.id, old_signed.id]
    # A superseded card can no longer be signed or countersigned.
    with pytest.raises(letters.LetterError) as exc:
        letters.countersign(ctx, old_signed, _user(ctx, "lead.east.t1"))
    assert exc.value.code == "not_current"

    # The same targets again: nothing to sign again.
    third = _plan(ctx, period, total=int(TOTAL * 0.8))
    again = letters.supersede_for_plan(ctx, third, None)
    ctx.commit()
    assert old_signed.unit_id not in {x.unit_id for x in again}
    assert letters.current_letter(ctx, old_signed.unit_id).id == new_signed.id


def test_a_missing_font_names_the_package_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("quotaflow.services.letter_pdf.FONT_CANDIDATES",
                        (str(tmp_path / "none.ttc"),))
    monkeypatch.delenv("QUOTAFLOW_PDF_FONT", raising=False)
    with pytest.raises(FontMissingError, match="fonts-wqy-zenhei"):
        find_font()
    with pytest.raises(FontMissingError, match="QUOTAFLOW_PDF_FONT"):
        find_font(str(tmp_path / "missing.ttf"))




def test_a_card_of_another_period_is_not_replaced_by_a_new_periods_card(ctx, period) -> None:
    (first,) = _issue(ctx, _plan(ctx, period))
    letters.sign(ctx, first, _user(ctx, "sales.p0001"))
    (second,) = _issue(ctx, _plan(ctx, fresh_period(ctx)))
    ctx.expire_all()
    kept = ctx.get(CommitmentLetter, first.id)
    # Last quarter's signed commitment stays that quarter's current card.
    assert kept.superseded_by_id is None and kept.status == "signed"
    assert second.version == kept.version + 1 and second.status == "issued"
    assert {x.id for x in letters.letters_in_scope(ctx, [_unit(ctx, PERSON).path])} >= {
        first.id, second.id}


def test_a_new_plan_version_with_the_same_target_issues_no_new_card(ctx, period) -> None:
    first = _plan(ctx, period)
    (signed,) = _issue(ctx, first)
    letters.sign(ctx, signed, _user(ctx, "sales.p0001"))
    second = _plan(ctx, period)  # the same total: the same targets
    unit = _unit(ctx, PERSON)
    assert ctx.scalar(select(PlanUnit.target).where(
        PlanUnit.plan_id == second.id, PlanUnit.unit_id == unit.id)) == signed.content["target"]
    (again,) = letters.issue_letters(ctx, second, [unit.id], None, keep_same_target=True)
    ctx.commit()
    assert again.id == signed.id  # signed once, not asked to sign the same target again
    ctx.expire_all()
    assert ctx.get(CommitmentLetter, signed.id).superseded_by_id is None
    assert letters.current_letter(ctx, unit.id).id == signed.id


@pytest.mark.committing  # another session commits the new version
def test_a_card_replaced_by_someone_else_meanwhile_cannot_be_signed(app, ctx, period) -> None:
    """The person's page loaded the card; a new plan version replaced it in another
    session before "I commit" arrived: the sign reads the card afresh and refuses."""
    from sqlalchemy.orm import Session as OrmSession

    first = _plan(ctx, period)
    (card,) = _issue(ctx, first, [PERSON])
    second = _plan(ctx, period, total=int(TOTAL * 0.7))
    with OrmSession(db.engine) as other:
        letters.supersede_for_plan(other, other.get(type(second), second.id), None)
        other.commit()
    assert card.superseded_by_id is None  # what this session still believes
    with pytest.raises(letters.LetterError) as exc:
        letters.sign(ctx, card, _user(ctx, "sales.p0001"))
    assert exc.value.code == "not_current"
