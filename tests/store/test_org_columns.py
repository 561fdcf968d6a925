"""The one org loader: the tree as columns, and input columns by either read path."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from quotaflow.store import db
from quotaflow.store import org_columns as oc
from quotaflow.store.models import AttributeValue, OrgUnit
from quotaflow.store.queries import period_by_code


@pytest.fixture
def session(app):
    with app.app_context():
        yield db.session
        db.session.rollback()


def test_the_tree_as_columns(session) -> None:
    units = oc.org_columns(session, paths=True)
    stored = session.execute(select(OrgUnit.id, OrgUnit.code, OrgUnit.parent_id, OrgUnit.path)
                             .where(OrgUnit.active).order_by(OrgUnit.id)).all()
    assert units.ids.tolist() == [r.id for r in stored]
    assert units.codes.tolist() == [r.code for r in stored]
    assert units.paths.tolist() == [r.path for r in stored]
    root = units.codes.tolist().index("HQ")
    assert units.parent_row[root] == -1 and units.level[root] == "company"
    east = units.codes.tolist().index("EAST")
    assert units.parent_row[east] == root and units.level[east] == "region"
    assert not units.orphans.any()
    assert oc.org_columns(session).paths.size == 0


def test_whole_columns_read_as_values_only_equal_the_pairs(session) -> None:
    period = period_by_code(session, "2026Q4")
    units = oc.org_columns(session)
    for name in ("hist_sales", "new_city_share", "headcount"):
        fast = oc.input_column(session, period.id, name, units.ids, all_active=True)
        placed = oc.input_column(session, period.id, name, units.ids)
        assert np.array_equal(fast, placed, equal_nan=True)
        assert not np.isnan(fast).any()


def test_a_missing_value_or_an_inactive_unit_falls_back_to_placing(session) -> None:
    period = period_by_code(session, "2026Q4")
    person = session.scalar(select(OrgUnit).where(OrgUnit.code == "P0002"))
    session.execute(delete(AttributeValue).where(
        AttributeValue.period_id == period.id, AttributeValue.unit_id == person.id,
        AttributeValue.name == "cost"))
    units = oc.org_columns(session)
    column = oc.input_column(session, period.id, "cost", units.ids, all_active=True)
    row = units.ids.tolist().index(person.id)
    assert np.isnan(column[row]) and np.isnan(column).sum() == 1
    session.rollback()

    # An inactive unit's value is stored but not read: the join narrows to active units.
    session.execute(update(OrgUnit).where(OrgUnit.id == person.id).values(active=False))
    assert oc.inactive_units(session) == 1
    units = oc.org_columns(session)
    assert person.id not in units.ids.tolist()
    column = oc.input_column(session, period.id, "headcount", units.ids, all_active=True)
    assert np.array_equal(column, oc.input_column(session, period.id, "headcount", units.ids))
    assert len(column) == units.size and not np.isnan(column).any()
    session.rollback()


def test_a_value_for_a_unit_outside_the_list_is_not_placed(session) -> None:
    period = period_by_code(session, "2026Q4")
    units = oc.org_columns(session)
    some = units.ids[::7]
    column = oc.input_column(session, period.id, "headcount", some)
    whole = oc.input_column(session, period.id, "headcount", units.ids)
    assert np.array_equal(column, whole[::7])
