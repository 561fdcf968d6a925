"""SQL for commitment letters: a unit's cards, the live cards of a period, card versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from quotaflow.store.letter_models import CommitmentLetter, LetterSignature
from quotaflow.store.models import OrgUnit, Plan, PlanUnit
from quotaflow.store.plan_queries import depth_total
from quotaflow.store.queries import in_paths


def letter(session: Session, letter_id: int) -> CommitmentLetter | None:
    return session.get(CommitmentLetter, letter_id)


def current_letter(session: Session, unit_id: int) -> CommitmentLetter | None:
    """The unit's latest card, whatever its status."""
    return session.scalar(select(CommitmentLetter).where(CommitmentLetter.unit_id == unit_id)
                          .order_by(CommitmentLetter.version.desc()).limit(1))


def letter_history(session: Session, unit_id: int) -> list[CommitmentLetter]:
    """Every card of the unit, latest first."""
    return list(session.scalars(select(CommitmentLetter)
                                .where(CommitmentLetter.unit_id == unit_id)
                                .order_by(CommitmentLetter.version.desc())))


def letters_in_scope(session: Session, paths: Sequence[str], *, limit: int) -> list[CommitmentLetter]:
    """The cards not replaced by a later one of every unit inside ``paths``, by unit code."""
    stmt = (select(CommitmentLetter).join(OrgUnit, OrgUnit.id == CommitmentLetter.unit_id)
            .options(selectinload(CommitmentLetter.unit))
            .where(CommitmentLetter.superseded_by_id.is_(None), in_paths(paths))
            .order_by(OrgUnit.code).limit(limit))
    return list(session.scalars(stmt))


def current_in_period_locked(session: Session, period_id: int, unit_ids: Sequence[int]
                             ) -> list[CommitmentLetter]:
    """The cards not replaced of these units for plans of ``period_id``, highest version
    first, locked for update (a sign waits, then sees the successor)."""
    return list(session.scalars(
        select(CommitmentLetter).join(Plan, Plan.id == CommitmentLetter.plan_id)
        .where(Plan.period_id == period_id, CommitmentLetter.unit_id.in_(list(unit_ids)),
               CommitmentLetter.superseded_by_id.is_(None))
        .order_by(CommitmentLetter.version.desc())
        .with_for_update(of=CommitmentLetter)))


def plan_letters(session: Session, plan_id: int, unit_ids: Sequence[int]) -> dict[int, CommitmentLetter]:
    """Unit id -> its card issued for this plan."""
    return {letter.unit_id: letter for letter in session.scalars(
        select(CommitmentLetter).where(CommitmentLetter.plan_id == plan_id,
                                       CommitmentLetter.unit_id.in_(list(unit_ids))))}


def latest_versions(session: Session, unit_ids: Sequence[int]) -> dict[int, int]:
    """Unit id -> the highest card version it has (units without a card are absent)."""
    return dict(session.execute(  # type: ignore[arg-type]
        select(CommitmentLetter.unit_id, func.max(CommitmentLetter.version))
        .where(CommitmentLetter.unit_id.in_(list(unit_ids))).group_by(CommitmentLetter.unit_id)).all())


def current_contents_of_other_plans(session: Session, period_id: int, plan_id: int
                                    ) -> list[tuple[int, dict[str, Any]]]:
    """(unit id, content) of every card not replaced that belongs to another plan of the period."""
    rows = session.execute(
        select(CommitmentLetter.unit_id, CommitmentLetter.content)
        .join(Plan, Plan.id == CommitmentLetter.plan_id)
        .where(Plan.period_id == period_id, Plan.id != plan_id,
               CommitmentLetter.superseded_by_id.is_(None))).all()
    return [(unit_id, content) for unit_id, content in rows]


def _live(period_id: int, *columns: Any) -> Select[Any]:
    """``columns`` of every live card (neither replaced nor superseded) of the period's plans."""
    return (select(*columns).join(Plan, Plan.id == CommitmentLetter.plan_id)
            .where(Plan.period_id == period_id, CommitmentLetter.superseded_by_id.is_(None),
                   CommitmentLetter.status != "superseded"))


def current_states(session: Session, period_id: int) -> list[tuple[int, str, dict[str, Any] | None]]:
    """(unit id, status, content) of every live card of the period's plans."""
    rows = session.execute(_live(period_id, CommitmentLetter.unit_id, CommitmentLetter.status,
                                 CommitmentLetter.content))
    return [(unit_id, status, content) for unit_id, status, content in rows]


def letter_counts(session: Session, period_id: int, plan_id: int | None) -> dict[str, Any]:
    """Commitment letters of a period: people in the plan, current letters by status,
    and when the last signature of a current letter was made."""
    out: dict[str, Any] = {"people": 0, "issued": 0, "signed": 0, "countersigned": 0,
                           "last_signed_at": None}
    if plan_id is None:
        return out
    deepest = session.scalar(select(func.max(OrgUnit.depth)).join(
        PlanUnit, PlanUnit.unit_id == OrgUnit.id).where(PlanUnit.plan_id == plan_id))
    out["people"] = depth_total(session, plan_id, deepest)[0]
    ids = []
    for letter_id, status in session.execute(_live(period_id, CommitmentLetter.id,
                                                   CommitmentLetter.status)):
        ids.append(letter_id)
        if status in out:
            out[status] += 1
    if ids:
        out["last_signed_at"] = session.scalar(select(func.max(LetterSignature.signed_at))
                                               .where(LetterSignature.letter_id.in_(ids)))
    return out
