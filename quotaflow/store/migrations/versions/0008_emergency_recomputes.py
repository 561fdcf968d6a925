"""emergency recomputes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('emergency_recomputes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('cities', sa.JSON(), nullable=False),
    sa.Column('unit_codes', sa.JSON(), nullable=False),
    sa.Column('frozen', sa.JSON(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flow_instance_id', sa.Integer(), nullable=True),
    sa.Column('result_plan_id', sa.Integer(), nullable=True),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'published', 'rejected', 'withdrawn')", name=op.f('ck_emergency_recomputes_status')),
    sa.CheckConstraint('total IS NULL OR total > 0', name=op.f('ck_emergency_recomputes_total_positive')),
    sa.ForeignKeyConstraint(['flow_instance_id'], ['flow_instances.id'], name=op.f('fk_emergency_recomputes_flow_instance_id_flow_instances')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_emergency_recomputes_period_id_periods')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_emergency_recomputes_plan_id_plans')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_emergency_recomputes_requested_by_id_users')),
    sa.ForeignKeyConstraint(['result_plan_id'], ['plans.id'], name=op.f('fk_emergency_recomputes_result_plan_id_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emergency_recomputes'))
    )
    with op.batch_alter_table('emergency_recomputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_emergency_recomputes_period_id'), ['period_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('emergency_recomputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_emergency_recomputes_period_id'))

    op.drop_table('emergency_recomputes')
