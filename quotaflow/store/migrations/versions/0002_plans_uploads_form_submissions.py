"""plans uploads form submissions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('storage_name', sa.String(length=64), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_uploads_unit_id_org_units')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_uploads_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads')),
    sa.UniqueConstraint('storage_name', name=op.f('uq_uploads_storage_name'))
    )
    op.create_table('form_submissions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('form_version_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['form_version_id'], ['spec_versions.id'], name=op.f('fk_form_submissions_form_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_form_submissions_period_id_periods')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_form_submissions_submitted_by_id_users')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_form_submissions_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_form_submissions'))
    )
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_submissions_form_version_id'), ['form_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_form_submissions_unit_id'), ['unit_id'], unique=False)

    op.create_table('plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('scenario', sa.String(length=64), nullable=False),
    sa.Column('company_total', sa.BigInteger(), nullable=False),
    sa.Column('planned_total', sa.BigInteger(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('presets_version_id', sa.Integer(), nullable=True),
    sa.Column('risks_version_id', sa.Integer(), nullable=True),
    sa.Column('based_on_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'published', 'superseded')", name=op.f('ck_plans_status')),
    sa.ForeignKeyConstraint(['based_on_id'], ['plans.id'], name=op.f('fk_plans_based_on_id_plans')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_plans_created_by_id_users')),
    sa.ForeignKeyConstraint(['model_version_id'], ['spec_versions.id'], name=op.f('fk_plans_model_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_plans_period_id_periods')),
    sa.ForeignKeyConstraint(['presets_version_id'], ['spec_versions.id'], name=op.f('fk_plans_presets_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['risks_version_id'], ['spec_versions.id'], name=op.f('fk_plans_risks_version_id_spec_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans')),
    sa.UniqueConstraint('period_id', 'number', name='uq_plans_period_number')
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plans_period_id'), ['period_id'], unique=False)

    op.create_table('plan_units',
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.BigInteger(), nullable=False),
    sa.Column('lower', sa.Float(), nullable=True),
    sa.Column('upper', sa.Float(), nullable=True),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('factor_amounts', sa.JSON(), nullable=False),
    sa.Column('bounds_adjustment', sa.BigInteger(), nullable=False),
    sa.Column('rounding_adjustment', sa.BigInteger(), nullable=False),
    sa.Column('risks', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_plan_units_plan_id_plans')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_plan_units_unit_id_org_units')),
    sa.PrimaryKeyConstraint('plan_id', 'unit_id', name=op.f('pk_plan_units'))
    )


def downgrade() -> None:
    op.drop_table('plan_units')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plans_period_id'))

    op.drop_table('plans')
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_form_submissions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_form_submissions_form_version_id'))

    op.drop_table('form_submissions')
    op.drop_table('uploads')
