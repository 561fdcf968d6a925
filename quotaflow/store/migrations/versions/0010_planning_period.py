"""the company's planning period, a stored choice

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

An existing database keeps planning for what it showed before: the setting starts at its
latest period (by start date), the period pages defaulted to until now; without periods it
starts empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    settings = op.create_table('company_settings',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('planning_period_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('id = 1', name=op.f('ck_company_settings_single_row')),
    sa.ForeignKeyConstraint(['planning_period_id'], ['periods.id'],
                            name=op.f('fk_company_settings_planning_period_id_periods')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_company_settings'))
    )
    periods = sa.table('periods', sa.column('id', sa.Integer()), sa.column('start_date', sa.Date()))
    latest = op.get_bind().scalar(
        sa.select(periods.c.id).order_by(periods.c.start_date.desc()).limit(1))
    # The one row exists from the start (choosing only updates it); no periods: no choice yet.
    op.bulk_insert(settings, [{'id': 1, 'planning_period_id': latest}])


def downgrade() -> None:
    op.drop_table('company_settings')
