"""flow instances

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('flow_instances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flow_version_id', sa.Integer(), nullable=False),
    sa.Column('flow_key', sa.String(length=128), nullable=False),
    sa.Column('subject_type', sa.String(length=64), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('initiator_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'running', 'approved', 'rejected', 'withdrawn')", name=op.f('ck_flow_instances_status')),
    sa.CheckConstraint('revision >= 0', name=op.f('ck_flow_instances_revision_not_negative')),
    sa.ForeignKeyConstraint(['flow_version_id'], ['spec_versions.id'], name=op.f('fk_flow_instances_flow_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['initiator_id'], ['users.id'], name=op.f('fk_flow_instances_initiator_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_flow_instances_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_instances'))
    )
    with op.batch_alter_table('flow_instances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flow_instances_flow_version_id'), ['flow_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_instances_initiator_id'), ['initiator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flow_instances_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index('ix_flow_instances_subject', ['subject_type', 'subject_id'], unique=False)
        batch_op.create_index('ix_flow_instances_status', ['status'], unique=False)

    op.create_table('flow_tasks',
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('node', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['flow_instances.id'], name=op.f('fk_flow_tasks_instance_id_flow_instances')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_flow_tasks_user_id_users')),
    sa.PrimaryKeyConstraint('instance_id', 'task_id', name=op.f('pk_flow_tasks'))
    )
    with op.batch_alter_table('flow_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_flow_tasks_user_id_status', ['user_id', 'status'], unique=False)
        batch_op.create_index('ix_flow_tasks_status_due_at', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flow_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_tasks_status_due_at')
        batch_op.drop_index('ix_flow_tasks_user_id_status')

    op.drop_table('flow_tasks')
    with op.batch_alter_table('flow_instances', schema=None) as batch_op:
        batch_op.drop_index('ix_flow_instances_status')
        batch_op.drop_index('ix_flow_instances_subject')
        batch_op.drop_index(batch_op.f('ix_flow_instances_unit_id'))
        batch_op.drop_index(batch_op.f('ix_flow_instances_initiator_id'))
        batch_op.drop_index(batch_op.f('ix_flow_instances_flow_version_id'))

    op.drop_table('flow_instances')
