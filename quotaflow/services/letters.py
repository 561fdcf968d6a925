"""Commitment letters (KPI cards): issue one per person for a final plan version, let the
person sign it and their team lead countersign it.

A card's content is everything it shows (target, split by month and week, the
derivation that adds up to the target), frozen at issue with its SHA-256. Each
signature records who, when, from where and the hash of the content signed. A signed
card never changes; a later plan version that changes a person's target issues a new
card (the next version within the unit) and the old one points at it.

``issue_letters``, ``supersede_for_plan`` only add to the caller's transaction;
``sign`` and ``countersign`` are units of work of their own and commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from sqlalchemy import event, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quotaflow import messages
from quotaflow.errors import QuotaFlowError, code_kinds
from quotaflow.messages import _l
from quotaflow.services import audit, specs, tracking
from quotaflow.services.plans import plan_explanation
from quotaflow.services.uow import Context, unit_of_work
from quotaflow.store import confirmation_queries, letter_queries, queries
from quotaflow.store.guards import ImmutableRecordError
from quotaflow.store.letter_models import CommitmentLetter, LetterSignature
from quotaflow.store.models import (
    OrgUnit,
    Period,
    Plan,
    SpecVersion,
    User,
    utcnow,
)

__all__ = [
    "CONTENT_SCHEMA",
    "LetterError",
    "Split",
    "can_countersign",
    "content_sha256",
    "countersign",
    "current_letter",
    "issue_letters",
    "largest_remainder",
    "letter_history",
    "letters_in_scope",
    "managers_of",
    "person_user",
    "sign",
    "split_target",
    "supersede_for_plan",
    "verify",
]

CONTENT_SCHEMA = 1
MANAGER_ROLE = "team_lead"
#: How a letter's status may move; anything else is refused by the guard below.
TRANSITIONS = {("issued", "signed"), ("issued", "superseded"), ("signed", "countersigned")}
FROZEN_COLUMNS = ("plan_id", "unit_id", "version", "content", "content_sha256", "issued_at")


class LetterError(QuotaFlowError):
    """A refused letter action: ``code`` says which (``not_yours``, ``not_manager``,
    ``not_current``, ``already_signed``, ``person_not_signed``, ``tampered``)."""

    domain = "letter"
    CODE_KINDS = code_kinds(not_yours="forbidden", not_manager="forbidden",
                            not_current="conflict", already_signed="conflict",
                            person_not_signed="conflict", tampered="conflict")
    CODES = messages.register(domain, {
        "not_yours": _l("Only the person this card is for can sign it."),
        "not_manager": _l("Only the team lead over this person's team can countersign."),
        "not_current": _l("A newer version of this card replaces it; sign the current one."),
        "already_signed": _l("This card is already signed."),
        "person_not_signed": _l("The person has not signed this card yet."),
        "tampered": _l("The stored card no longer matches its fingerprint, so it cannot be "
                       "signed. Ask HR to issue it again."),
    })

    def __init__(self, code: str, /, **params: Any) -> None:
        super().__init__(code, "", **params)


# -- the guard -----------------------------------------------------------------------

@event.listens_for(Session, "before_flush")
def _refuse_letter_changes(session: Session, _context: Any, _instances: Any) -> None:
    """Issued content and signatures never change; status moves only forward."""
    for obj in session.dirty:
        if isinstance(obj, LetterSignature) and session.is_modified(obj):
            raise ImmutableRecordError(
                f"signature {obj.role} on letter {obj.letter_id} is immutable")
        if not isinstance(obj, CommitmentLetter):
            continue
        state = inspect(obj)
        changed = [c for c in FROZEN_COLUMNS if state.attrs[c].history.has_changes()]
        if changed:
            raise ImmutableRecordError(
                f"commitment letter {obj.id} (unit {obj.unit_id} v{obj.version}) is issued; "
                f"issue a new version instead of changing {', '.join(changed)}")
        status = state.attrs["status"].history
        if status.has_changes():
            before = (status.deleted or status.unchanged or (None,))[0]
            if (before, obj.status) not in TRANSITIONS:
                raise ImmutableRecordError(
                    f"commitment letter {obj.id} cannot go from {before} to {obj.status}")
        link = state.attrs["superseded_by_id"].history
        if link.has_changes() and (link.deleted or (None,))[0] is not None:
            raise ImmutableRecordError(
                f"commitment letter {obj.id} is already superseded by letter "
                f"{link.deleted[0]}")
    for obj in session.deleted:
        if isinstance(obj, CommitmentLetter | LetterSignature):
            raise ImmutableRecordError(f"{type(obj).__name__} records are never deleted")


# -- splitting a target exactly --------------------------------------------------------

def largest_remainder(total: int, weights: Sequence[Fraction | int]) -> list[int]:
    """``total`` split in proportion to ``weights`` into integers that add up to it exactly.

    Each part is the floor of its exact quota; the units left over go to the largest
    remainders (the earlier part on a tie). All-zero weights split evenly.
    """
    if not weights:
        raise ValueError("nothing to split into")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    w = [Fraction(x) for x in weights]
    whole = sum(w)
    if whole == 0:
        w, whole = [Fraction(1)] * len(w), Fraction(len(w))
    quotas = [Fraction(total) * x / whole for x in w]
    parts = [q.numerator // q.denominator for q in quotas]
    left = total - sum(parts)
    order = sorted(range(len(w)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


@dataclass(frozen=True)
class Split:
    """A target split by month and by week (each list adds up to the target)."""

    method: str  # "days" or "pacing_curve"
    spec: dict[str, Any] | None  # the pacing spec used: key, version, kind
    fallback: str | None  # why a pacing spec was not used
    months: list[dict[str, Any]]
    weeks: list[dict[str, Any]]


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def split_target(target: int, start: dt.date, end: dt.date,
                 weeks: Sequence[tuple[int, dt.date, dt.date]],
                 week_shares: Sequence[float] | None = None) -> tuple[list[dict[str, Any]],
                                                                     list[dict[str, Any]]]:
    """Months and weeks of ``target`` over the period ``start``..``end``.

    Every day weighs the same, unless ``week_shares`` (one per week, e.g. from a pacing
    curve) spreads each week's share evenly over its days. Months and weeks are each
    rounded by largest remainder, so each adds up to ``target`` exactly.
    """
    days = _days(start, end)
    weight = {d: Fraction(1) for d in days}
    if week_shares is not None:
        if len(week_shares) != len(weeks):
            raise ValueError(f"{len(week_shares)} week shares for {len(weeks)} weeks")
        for (_, first, last), share in zip(weeks, week_shares, strict=True):
            span = _days(max(first, start), min(last, end))
            for d in span:
                weight[d] = Fraction(share) / len(span)
    months: dict[str, dict[str, Any]] = {}
    for d in days:
        key = f"{d.year:04d}-{d.month:02d}"
        month = months.setdefault(key, {"month": key, "days": 0, "weight": Fraction(0)})
        month["days"] += 1
        month["weight"] += weight[d]
    month_rows = list(months.values())
    for row, amount in zip(month_rows, largest_remainder(
            target, [m["weight"] for m in month_rows]), strict=True):
        row["amount"] = amount
        del row["weight"]
    week_rows = []
    week_weights = []
    for week_no, first, last in weeks:
        span = _days(max(first, start), min(last, end))
        week_weights.append(sum((weight[d] for d in span), Fraction(0)))
        week_rows.append({"week_no": week_no, "start": first.isoformat(),
                          "end": last.isoformat(), "days": len(span)})
    if week_rows:
        for row, amount in zip(week_rows, largest_remainder(target, week_weights), strict=True):
            row["amount"] = amount
    return month_rows, week_rows


def period_split(session: Session, period: Period, target: int) -> Split:
    """Split by the same pacing curve the red line follows (``tracking.pacing_curve``:
    the active ``pacing_curve`` spec, seasonal from past quarters' results and resampled
    to this period's weeks), so the card's weekly amounts are the steps of the line the
    person is tracked against. Linear curves are linear in days: split by days."""
    weeks = [(w.week_no, w.start_date, w.end_date) for w in period.weeks]
    choice = tracking.pacing_curve(session, period)
    version = session.get(SpecVersion, choice.version_id) if choice.version_id else None
    spec_info = None if version is None else {
        "key": version.key, "version": version.version, "kind": choice.kind}
    shares = None
    fallback = None
    if choice.kind == "seasonal":
        shares = np.diff(choice.curve.values).tolist()
    elif version is not None and (version.content or {}).get("kind") == "seasonal":
        fallback = "missing_history"
    months, week_rows = split_target(target, period.start_date, period.end_date, weeks, shares)
    return Split("pacing_curve" if shares is not None else "days",
                 spec_info, fallback, months, week_rows)


# -- content ---------------------------------------------------------------------------

def content_sha256(content: Mapping[str, Any]) -> str:
    """SHA-256 of the content's canonical JSON (sorted keys, no spaces, UTF-8)."""
    return specs.content_hash(content)


def verify(letter: CommitmentLetter) -> bool:
    """Whether the stored content still hashes to the stored hash."""
    return content_sha256(letter.content) == letter.content_sha256


def person_user(session: Session, unit_id: int) -> User | None:
    return queries.person_user(session, unit_id)


def _person_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"user_id": user.id, "username": user.username, "display_name": user.display_name}


def _unit_names(unit: OrgUnit | None) -> dict[str, Any] | None:
    if unit is None:
        return None
    return {"id": unit.id, "code": unit.code, "name_en": unit.name_en, "name_zh": unit.name_zh}


def build_content(session: Session, plan: Plan, unit: OrgUnit, version: int,
                  issued_at: dt.datetime) -> dict[str, Any]:
    """Everything a card shows, as JSON (frozen when the card is issued)."""
    ex = plan_explanation(session, plan, unit)
    target = int(ex["target"])
    split = period_split(session, plan.period, target)
    return {
        "schema": CONTENT_SCHEMA,
        "version": version,
        "issued_at": issued_at.replace(microsecond=0).isoformat() + "Z",
        "plan": {"id": plan.id, "number": plan.number, "scenario": plan.scenario,
                 "period": plan.period.code, "start": plan.period.start_date.isoformat(),
                 "end": plan.period.end_date.isoformat()},
        "unit": _unit_names(unit),
        "team": _unit_names(unit.parent),
        "person": _person_json(person_user(session, unit.id)),
        "target": target,
        "currency": "CNY",
        "months": split.months,
        "weeks": split.weeks,
        "split": {"method": split.method, "spec": split.spec, "fallback": split.fallback},
        "derivation": {
            "factors": [{"key": f["key"], "label_en": f["label_en"], "label_zh": f["label_zh"],
                         "weight_percent": f["weight_percent"], "amount": int(f["amount"])}
                        for f in ex["factors"]],
            "factors_total": ex["factors_total"],
            "bounds_adjustment": int(ex["bounds_adjustment"]),
            "rounding_adjustment": int(ex["rounding_adjustment"]),
            "target": target,
            "adds_up": bool(ex["adds_up"]),
        },
        "model": {"key": ex["model"]["key"], "version": ex["model"]["version"],
                  "content_hash": ex["model"]["content_hash"]},
    }


# -- queries ---------------------------------------------------------------------------

def current_letter(session: Session, unit_id: int) -> CommitmentLetter | None:
    """The unit's latest card (the one to sign), whatever its status."""
    return letter_queries.current_letter(session, unit_id)


def letter_history(session: Session, unit_id: int) -> list[CommitmentLetter]:
    """Every card of the unit, latest first."""
    return letter_queries.letter_history(session, unit_id)


def letters_in_scope(session: Session, paths: Sequence[str], *, limit: int = 500
                     ) -> list[CommitmentLetter]:
    """The current card of every person inside ``paths`` (subtree roots), by unit code."""
    if not paths:
        return []
    return letter_queries.letters_in_scope(session, paths, limit=limit)


def _ancestor_ids(unit: OrgUnit) -> list[int]:
    return [int(x) for x in unit.path.strip("/").split("/") if x][:-1]


def managers_of(session: Session, unit: OrgUnit) -> list[User]:
    """The active team leads over the person's team (grants on any unit above them)."""
    ids = _ancestor_ids(unit)
    if not ids:
        return []
    return queries.grantees(session, MANAGER_ROLE, ids, except_person_unit=unit.id)


def can_countersign(session: Session, letter: CommitmentLetter, user: User) -> bool:
    return any(m.id == user.id for m in managers_of(session, letter.unit))


# -- issuing ---------------------------------------------------------------------------

def _emit(session: Session, topic: str, payload: Mapping[str, Any], *,
          to_users: Iterable[int] = (), unit_id: int | None = None,
          key: str | None = None) -> None:
    from quotaflow.services import outbox

    outbox.emit(session, topic, payload, to_users=to_users, unit_id=unit_id, key=key)


def _yuan(amount: int) -> str:
    return f"{amount:,}"


def _url(letter: CommitmentLetter) -> str:
    return f"/letters/{letter.id}"


def _issue_one(session: Session, plan: Plan, unit: OrgUnit, actor: User | None,
               latest: CommitmentLetter | None, version: int) -> CommitmentLetter:
    """A new card of ``unit`` for ``plan``; ``latest`` is the unit's current card of the
    same period (superseded by the new one), ``version`` the unit's next card version."""
    issued_at = utcnow()
    content = build_content(session, plan, unit, version, issued_at)
    letter = CommitmentLetter(plan_id=plan.id, unit_id=unit.id, version=version,
                              content=content, content_sha256=content_sha256(content),
                              status="issued", issued_at=issued_at)
    session.add(letter)
    session.flush()
    old = None
    if latest is not None and latest.superseded_by_id is None:
        old = {"id": latest.id, "version": latest.version, "status": latest.status}
        if latest.status == "issued":
            latest.status = "superseded"  # never signed: it simply stops counting
        latest.superseded_by_id = letter.id  # signed cards keep their status and content
    audit.record(session, actor, "issue_letter", "commitment_letter", str(letter.id),
                 before=old,
                 after={"plan_id": plan.id, "unit": unit.code, "version": version,
                        "target": content["target"], "content_sha256": letter.content_sha256})
    person = content["person"]
    period = content["plan"]["period"]
    _emit(session, "letter.issued", {
        "title_en": f"Your commitment letter for {period} is ready",
        "title_zh": f"您的{period}目标责任书已生成",
        "body_en": f"Target {_yuan(content['target'])} yuan. Review it and sign.",
        "body_zh": f"目标 {_yuan(content['target'])} 元，请查看并签字确认。",
        "url": _url(letter),
        "letter_id": letter.id, "version": version, "plan_id": plan.id, "unit": unit.code,
        "target": content["target"], "content_sha256": letter.content_sha256,
        "supersedes": old["id"] if old else None,
    }, to_users=[person["user_id"]] if person else [], unit_id=unit.id,
        key=f"letter.issued:{letter.id}")
    return letter


def _current_in_period(session: Session, period_id: int, unit_ids: Sequence[int]
                       ) -> dict[int, CommitmentLetter]:
    """Unit id -> its current card (not replaced) for a plan of ``period_id``. Cards of
    other periods are not this period's commitment: a new period's card never
    replaces them."""
    if not unit_ids:
        return {}
    out: dict[int, CommitmentLetter] = {}
    for letter in letter_queries.current_in_period_locked(session, period_id, unit_ids):
        out.setdefault(letter.unit_id, letter)
    return out


def issue_letters(session: Session, plan: Plan, unit_ids: Sequence[int],
                  actor: User | None, *, keep_same_target: bool = False
                  ) -> list[CommitmentLetter]:
    """One card per person unit of ``unit_ids`` for this plan version (others are
    skipped). A card that already exists for the plan and unit is returned as it is; with
    ``keep_same_target`` so is the person's current card of the period when it already
    shows the plan's target (a later plan version that left the person's target alone
    asks for no new signature). Otherwise a new card: the person's older card of the
    period is superseded (a signed one keeps its signatures and points at the new card);
    cards of other periods are left alone. Adds to the caller's transaction (no commit)."""
    depth = queries.person_depth(session)
    wanted = sorted(set(unit_ids))
    if not wanted:
        return []
    units = queries.person_units(session, wanted, depth)
    ids = [u.id for u in units]
    existing = letter_queries.plan_letters(session, plan.id, ids)
    targets = confirmation_queries.plan_targets(session, plan.id, ids)
    current = _current_in_period(session, plan.period_id, ids)
    versions = letter_queries.latest_versions(session, ids)
    out = []
    for unit in units:
        if unit.id in existing:
            out.append(existing[unit.id])
            continue
        if unit.id not in targets:
            continue
        latest = current.get(unit.id)
        if (keep_same_target and latest is not None and latest.status != "superseded"
                and int(latest.content["target"]) == targets[unit.id]):
            out.append(latest)
            continue
        version = int(versions.get(unit.id) or 0) + 1
        out.append(_issue_one(session, plan, unit, actor, latest, version))
    return out


def supersede_for_plan(session: Session, new_plan: Plan, actor: User | None
                       ) -> list[CommitmentLetter]:
    """For every person whose current card (same period, another plan) shows a target
    other than theirs in ``new_plan``: a new card to sign again; the old one is marked
    superseded (a signed one keeps its signatures). Returns the new cards."""
    rows = letter_queries.current_contents_of_other_plans(session, new_plan.period_id, new_plan.id)
    targets = confirmation_queries.plan_targets(session, new_plan.id, sorted({int(u) for u, _ in rows}))
    changed = sorted({int(u) for u, content in rows
                      if int(u) in targets and targets[int(u)] != int(content["target"])})
    return issue_letters(session, new_plan, changed, actor)


# -- signing ---------------------------------------------------------------------------

def _lock_fresh(session: Session, letter: CommitmentLetter) -> None:
    """Re-read the card under a row lock (PostgreSQL; SQLite serialises writers), so a
    replacement committed meanwhile by someone else is seen and cannot race the sign."""
    session.refresh(letter, with_for_update=True)


def _check_current(letter: CommitmentLetter) -> None:
    if letter.superseded_by_id is not None or letter.status == "superseded":
        raise LetterError("not_current", letter=letter.id)


def _check_hash(letter: CommitmentLetter) -> None:
    if not verify(letter):
        raise LetterError("tampered", letter=letter.id)


def _signature_json(sig: LetterSignature) -> dict[str, Any]:
    return {"role": sig.role, "user_id": sig.user_id, "username": sig.user.username,
            "display_name": sig.user.display_name,
            "signed_at": sig.signed_at.replace(microsecond=0).isoformat() + "Z",
            "content_sha256": sig.content_sha256}


def _add_signature(session: Session, letter: CommitmentLetter, role: str, user: User,
                   status: str, remote_addr: str | None) -> LetterSignature:
    sig = LetterSignature(letter=letter, role=role, user_id=user.id, user=user,
                          signed_at=utcnow(), content_sha256=letter.content_sha256,
                          remote_addr=remote_addr)
    session.add(sig)
    letter.status = status
    session.flush()
    return sig


def _signature_step(session: Session, letter: CommitmentLetter, user: User, role: str,
                    status: str, action: str, remote_addr: str | None,
                    notify: Callable[[LetterSignature], None]) -> LetterSignature:
    """The signature, its audit entry and its event, committed together; a second
    signature of the same role (a race) is "already_signed"."""
    before = letter.status
    try:
        with unit_of_work(session):
            sig = _add_signature(session, letter, role, user, status, remote_addr)
            audit.record(session, user, action, "commitment_letter", str(letter.id),
                         before={"status": before},
                         after={"status": status, "role": role,
                                "content_sha256": sig.content_sha256},
                         remote_addr=remote_addr)
            notify(sig)
    except IntegrityError:
        raise LetterError("already_signed", letter=letter.id) from None
    return sig


def sign(session: Session, letter: CommitmentLetter, user: User,
         remote_addr: str | None = None) -> LetterSignature:
    """The person commits to their card ("I commit"). Commits."""
    with unit_of_work(session):
        if user.person_unit_id != letter.unit_id:
            raise LetterError("not_yours", letter=letter.id)
        _lock_fresh(session, letter)
        _check_current(letter)
        if letter.status != "issued" or letter.signature("person") is not None:
            raise LetterError("already_signed", letter=letter.id)
        _check_hash(letter)

        def notify(sig: LetterSignature) -> None:
            content = letter.content
            period = content["plan"]["period"]
            name = user.display_name
            _emit(session, "letter.signed", {
                "title_en": f"{name} signed the commitment letter for {period}",
                "title_zh": f"{name} 已签署{period}目标责任书",
                "body_en": f"Target {_yuan(content['target'])} yuan. Please countersign.",
                "body_zh": f"目标 {_yuan(content['target'])} 元，请会签。",
                "url": _url(letter),
                "letter_id": letter.id, "unit": content["unit"]["code"],
                "target": content["target"], "content_sha256": letter.content_sha256,
                "signature": _signature_json(sig),
            }, to_users=[m.id for m in managers_of(session, letter.unit)], unit_id=letter.unit_id,
                key=f"letter.signed:{letter.id}")

        return _signature_step(session, letter, user, "person", "signed", "sign_letter",
                               remote_addr, notify)


def countersign(session: Session, letter: CommitmentLetter, user: User,
                remote_addr: str | None = None) -> LetterSignature:
    """The team lead over the person's team countersigns, after the person. Commits."""
    with unit_of_work(session):
        if not can_countersign(session, letter, user):
            raise LetterError("not_manager", letter=letter.id)
        _lock_fresh(session, letter)
        _check_current(letter)
        if letter.status == "issued":
            raise LetterError("person_not_signed", letter=letter.id)
        if letter.status != "signed" or letter.signature("manager") is not None:
            raise LetterError("already_signed", letter=letter.id)
        _check_hash(letter)

        def notify(_sig: LetterSignature) -> None:
            content = letter.content
            person = content["person"]
            period = content["plan"]["period"]
            _emit(session, "letter.completed", {
                "title_en": f"Your commitment letter for {period} is countersigned",
                "title_zh": f"您的{period}目标责任书已完成会签",
                "body_en": f"Target {_yuan(content['target'])} yuan, signed by you and "
                           f"{user.display_name}.",
                "body_zh": f"目标 {_yuan(content['target'])} 元，已由您和{user.display_name}签署。",
                "url": _url(letter),
                "letter_id": letter.id, "version": letter.version, "plan_id": letter.plan_id,
                "unit": content["unit"]["code"], "target": content["target"],
                "content_sha256": letter.content_sha256, "card": content,
                "signatures": [_signature_json(s) for s in letter.signatures],
            }, to_users=[person["user_id"]] if person else [], unit_id=letter.unit_id,
                key=f"letter.completed:{letter.id}")

        return _signature_step(session, letter, user, "manager", "countersigned",
                               "countersign_letter", remote_addr, notify)


# -- the card as a PDF (the letters page and the API) ----------------------------------------

def letter_pdf(ctx: Context, letter_id: int, font: str | None = None) -> tuple[bytes, str]:
    """A card the reader may read, as a PDF, and its file name (``NotFound`` otherwise;
    ``FontMissingError`` without a CJK font)."""
    from quotaflow.services.letter_pdf import SignatureLine, render_letter_pdf
    from quotaflow.services.letter_reads import readable_letter

    letter = readable_letter(ctx, letter_id)
    signatures = [SignatureLine(role=s.role, name=s.user.display_name, username=s.user.username,
                                signed_at=s.signed_at.replace(microsecond=0).isoformat(sep=" "),
                                content_sha256=s.content_sha256) for s in letter.signatures]
    data = render_letter_pdf(letter.content, letter_id=letter.id,
                             content_sha256=letter.content_sha256, status=letter.status,
                             signatures=signatures, font=font)
    c = letter.content
    return data, f"letter-{c['unit']['code']}-{c['plan']['period']}-v{letter.version}.pdf"
