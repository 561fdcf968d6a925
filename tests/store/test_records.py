"""Invariants the store guarantees: immutable specs, append-only audit, fast columns."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from quotaflow.services import specs
from quotaflow.services.seeding import period_weeks
from quotaflow.store import db
from quotaflow.store.guards import ImmutableRecordError
from quotaflow.store.models import AuditEntry, OrgUnit, SpecVersion
from quotaflow.store.queries import load_attribute_column, period_by_code


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


def test_spec_versions_are_numbered_hashed_and_immutable(session) -> None:
    first = specs.create_version(session, "test_kind", "immutable", {"a": 1, "b": [1, 2]}, None)
    second = specs.create_version(session, "test_kind", "immutable", {"b": [1, 2], "a": 2}, None)
    session.commit()
    assert (first.version, second.version) == (1, 2)
    assert first.content_hash == specs.content_hash({"b": [1, 2], "a": 1})
    assert first.content_hash != second.content_hash
    first.content = {"a": 99}
    with pytest.raises(ImmutableRecordError, match="immutable"):
        session.flush()
    session.rollback()
    session.delete(session.get(SpecVersion, first.id))
    with pytest.raises(ImmutableRecordError):
        session.flush()
    session.rollback()


def test_activation_keeps_one_active_version(session) -> None:
    v1 = specs.create_version(session, "test_kind", "active", {"n": 1}, None)
    v2 = specs.create_version(session, "test_kind", "active", {"n": 2}, None)
    specs.activate(session, v1, None)
    specs.activate(session, v2, None)
    session.commit()
    session.refresh(v1)
    assert (v1.status, v2.status) == ("retired", "active")
    assert specs.active_version(session, "test_kind", "active").id == v2.id
    actions = session.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_id.like("active@%"))
    ).all()
    assert actions.count("activate_spec_version") == 2


def test_the_database_refuses_two_active_versions(session) -> None:
    a = specs.create_version(session, "test_kind", "twice", {"n": 1}, None)
    b = specs.create_version(session, "test_kind", "twice", {"n": 2}, None)
    session.commit()
    session.execute(text("UPDATE spec_versions SET status = 'active' WHERE id = :id"), {"id": a.id})
    with pytest.raises(IntegrityError):
        session.execute(text("UPDATE spec_versions SET status = 'active' WHERE id = :id"), {"id": b.id})
    session.rollback()


def test_audit_log_is_append_only_in_the_database(session) -> None:
    entry_id = session.scalar(select(AuditEntry.id).limit(1))
    assert entry_id is not None
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_log SET action = 'forged' WHERE id = :id"), {"id": entry_id})
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": entry_id})
    session.rollback()
    entry = session.get(AuditEntry, entry_id)
    entry.action = "forged"
    with pytest.raises(ImmutableRecordError):
        session.flush()
    session.rollback()


def test_attribute_column_loads_in_unit_order(session) -> None:
    period = period_by_code(session, "2026Q4")
    units = session.execute(select(OrgUnit.id, OrgUnit.code).order_by(OrgUnit.code.desc())).all()
    ids = np.array([u.id for u in units] + [10**9])  # the last id has no value
    column = load_attribute_column(session, period.id, "headcount", ids)
    by_code = dict(zip([u.code for u in units], column[:-1], strict=True))
    assert np.isnan(column[-1])
    assert by_code["P0001"] == 1.0
    people = sum(1 for code in by_code if code.startswith("P"))
    assert by_code["HQ"] == people
    missing = load_attribute_column(session, period.id, "no_such_attribute", ids)
    assert np.isnan(missing).all()


def test_period_weeks_are_iso_weeks_clipped_to_the_quarter() -> None:
    weeks = period_weeks(dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert weeks[0] == (2026, 40, dt.date(2026, 10, 1), dt.date(2026, 10, 4))
    assert weeks[-1] == (2026, 53, dt.date(2026, 12, 28), dt.date(2026, 12, 31))
    assert len(weeks) == 14
    days = sum((end - start).days + 1 for _, _, start, end in weeks)
    assert days == 92


def test_periods_are_stored_with_their_weeks(session) -> None:
    period = period_by_code(session, "2026Q4")
    assert [w.iso_week for w in period.weeks][:2] == [40, 41]
    assert period.weeks[-1].end_date == period.end_date
