"""Commitment letters as the pages show them: a card the reader may read (else
NotFound), the reader's own cards, the team's cards, and which buttons a card gets.

Only the person signs their card; only a team lead over the person's team countersigns
it (the ``team_lead`` grants of the principal, asked through ``Principal.can``). Signing
and countersigning run as use cases: a refusal leaves nothing written.
"""

from __future__ import annotations

from dataclasses import replace

from quotaflow.services import letters
from quotaflow.services.access import Principal, readable
from quotaflow.services.auth import actor
from quotaflow.services.uow import Context, use_case
from quotaflow.store import letter_queries
from quotaflow.store.letter_models import CommitmentLetter, LetterSignature

TEAM_LIMIT = 500


def _leads(ctx: Context) -> Principal | None:
    """The principal reduced to its team-lead grants (None if it has none)."""
    if ctx.principal is None:
        return None
    grants = tuple(g for g in ctx.principal.grants if g.role == letters.MANAGER_ROLE)
    return replace(ctx.principal, grants=grants) if grants else None


def _person_unit_id(ctx: Context) -> int | None:
    me = actor(ctx)
    return me.person_unit_id if me is not None else None


def is_lead(ctx: Context) -> bool:
    return _leads(ctx) is not None


def is_manager(ctx: Context, letter: CommitmentLetter) -> bool:
    """Whether the reader leads a team above the card's person (not the person)."""
    leads = _leads(ctx)
    path = letter.unit.path
    return (leads is not None and _person_unit_id(ctx) != letter.unit_id
            and leads.can("unit.read", path)
            and path not in leads.scope_paths("unit.read"))


def actions(ctx: Context, letter: CommitmentLetter) -> dict[str, bool]:
    """The buttons the card shows the reader."""
    current = letter.superseded_by_id is None and letter.status != "superseded"
    return {
        "can_sign": current and letter.status == "issued"
        and _person_unit_id(ctx) == letter.unit_id,
        "can_countersign": current and letter.status == "signed" and is_manager(ctx, letter),
    }


def readable_letter(ctx: Context, letter_id: int) -> CommitmentLetter:
    """The card if the reader may read its unit; NotFound otherwise (ids cannot be probed)."""
    letter = letter_queries.letter(ctx.session, letter_id)
    return readable(ctx.principal, letter)


def history(ctx: Context, unit_id: int) -> list[CommitmentLetter]:
    """Every card of a unit, latest first."""
    return letters.letter_history(ctx.session, unit_id)


def my_history(ctx: Context) -> list[CommitmentLetter] | None:
    """The reader's own cards, latest first (None for someone who is not a person)."""
    unit_id = _person_unit_id(ctx)
    return None if unit_id is None else letters.letter_history(ctx.session, unit_id)


def team_letters(ctx: Context, limit: int = TEAM_LIMIT) -> list[CommitmentLetter]:
    """The current cards of the teams the reader leads; region heads, HR and executives:
    of their scope; a sales person: none (their own cards are ``my_history``)."""
    leads = _leads(ctx)
    unit_id = _person_unit_id(ctx)
    if leads is not None:
        paths: tuple[str, ...] = tuple(g.unit_path for g in leads.grants)
    elif unit_id is None and ctx.principal is not None:
        paths = ctx.principal.scope_paths("unit.read")
    else:
        paths = ()
    return [x for x in letters.letters_in_scope(ctx.session, paths, limit=limit)
            if x.unit_id != unit_id]


@use_case
def sign(ctx: Context, letter_id: int) -> LetterSignature:
    """The person commits to their card (``LetterError`` if they may not)."""
    return letters.sign(ctx.session, readable_letter(ctx, letter_id), actor(ctx),
                        ctx.remote_addr)


@use_case
def countersign(ctx: Context, letter_id: int) -> LetterSignature:
    """The team lead countersigns a signed card (``LetterError`` if they may not)."""
    return letters.countersign(ctx.session, readable_letter(ctx, letter_id), actor(ctx),
                               ctx.remote_addr)
