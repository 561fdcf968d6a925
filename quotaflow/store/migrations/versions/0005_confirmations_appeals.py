"""confirmations appeals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('confirmation_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('parent_unit_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('policy_version_id', sa.Integer(), nullable=False),
    sa.Column('opened_plan_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'settled')", name=op.f('ck_confirmation_groups_status')),
    sa.ForeignKeyConstraint(['opened_plan_id'], ['plans.id'], name=op.f('fk_confirmation_groups_opened_plan_id_plans')),
    sa.ForeignKeyConstraint(['parent_unit_id'], ['org_units.id'], name=op.f('fk_confirmation_groups_parent_unit_id_org_units')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_confirmation_groups_period_id_periods')),
    sa.ForeignKeyConstraint(['policy_version_id'], ['spec_versions.id'], name=op.f('fk_confirmation_groups_policy_version_id_spec_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confirmation_groups')),
    sa.UniqueConstraint('period_id', 'parent_unit_id', name='uq_confirmation_groups_period_parent')
    )
    with op.batch_alter_table('confirmation_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_confirmation_groups_period_id'), ['period_id'], unique=False)

    op.create_table('confirmation_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note_en', sa.Text(), nullable=True),
    sa.Column('note_zh', sa.Text(), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'accepted', 'appealed')", name=op.f('ck_confirmation_items_status')),
    sa.CheckConstraint('target >= 0', name=op.f('ck_confirmation_items_target_not_negative')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_confirmation_items_decided_by_id_users')),
    sa.ForeignKeyConstraint(['group_id'], ['confirmation_groups.id'], name=op.f('fk_confirmation_items_group_id_confirmation_groups')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_confirmation_items_plan_id_plans')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_confirmation_items_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confirmation_items')),
    sa.UniqueConstraint('group_id', 'unit_id', name='uq_confirmation_items_group_unit')
    )
    with op.batch_alter_table('confirmation_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_confirmation_items_unit_id'), ['unit_id'], unique=False)

    op.create_table('appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('allocated', sa.BigInteger(), nullable=False),
    sa.Column('requested', sa.BigInteger(), nullable=False),
    sa.Column('approved', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flow_key', sa.String(length=128), nullable=False),
    sa.Column('flow_instance_id', sa.Integer(), nullable=True),
    sa.Column('result_plan_id', sa.Integer(), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'approved', 'rejected', 'withdrawn')", name=op.f('ck_appeals_status')),
    sa.CheckConstraint('requested >= 0', name=op.f('ck_appeals_requested_not_negative')),
    sa.ForeignKeyConstraint(['flow_instance_id'], ['flow_instances.id'], name=op.f('fk_appeals_flow_instance_id_flow_instances')),
    sa.ForeignKeyConstraint(['item_id'], ['confirmation_items.id'], name=op.f('fk_appeals_item_id_confirmation_items')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_appeals_period_id_periods')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_appeals_plan_id_plans')),
    sa.ForeignKeyConstraint(['result_plan_id'], ['plans.id'], name=op.f('fk_appeals_result_plan_id_plans')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_appeals_submitted_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_appeals_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals'))
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeals_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appeals_period_id'), ['period_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeals_period_id'))
        batch_op.drop_index(batch_op.f('ix_appeals_item_id'))

    op.drop_table('appeals')
    with op.batch_alter_table('confirmation_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_confirmation_items_unit_id'))

    op.drop_table('confirmation_items')
    with op.batch_alter_table('confirmation_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_confirmation_groups_period_id'))

    op.drop_table('confirmation_groups')
