"""actuals alerts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('actuals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('source_id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_actuals_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actuals')),
    sa.UniqueConstraint('unit_id', 'date', 'source', 'source_id', name='uq_actuals_unit_date_source')
    )
    with op.batch_alter_table('actuals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_actuals_date'), ['date'], unique=False)

    op.create_table('scan_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('week', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('triggered_by_id', sa.Integer(), nullable=True),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('raised', sa.Integer(), nullable=False),
    sa.Column('existing', sa.Integer(), nullable=False),
    sa.Column('suppressed', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.CheckConstraint("trigger IN ('cli', 'schedule', 'web', 'api', 'test')", name=op.f('ck_scan_runs_trigger')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_scan_runs_period_id_periods')),
    sa.ForeignKeyConstraint(['triggered_by_id'], ['users.id'], name=op.f('fk_scan_runs_triggered_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_runs'))
    )
    with op.batch_alter_table('scan_runs', schema=None) as batch_op:
        batch_op.create_index('ix_scan_runs_period_id_week', ['period_id', 'week'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('week', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('run', sa.Integer(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('label_en', sa.String(length=200), nullable=False),
    sa.Column('label_zh', sa.String(length=200), nullable=False),
    sa.Column('message_en', sa.Text(), nullable=False),
    sa.Column('message_zh', sa.Text(), nullable=False),
    sa.Column('remedies', sa.JSON(), nullable=False),
    sa.Column('rules_version_id', sa.Integer(), nullable=False),
    sa.Column('remedies_version_id', sa.Integer(), nullable=True),
    sa.Column('pacing_version_id', sa.Integer(), nullable=True),
    sa.Column('plan_id', sa.Integer(), nullable=True),
    sa.Column('scan_run_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name=op.f('ck_alerts_status')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['pacing_version_id'], ['spec_versions.id'], name=op.f('fk_alerts_pacing_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['period_id'], ['periods.id'], name=op.f('fk_alerts_period_id_periods')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_alerts_plan_id_plans')),
    sa.ForeignKeyConstraint(['remedies_version_id'], ['spec_versions.id'], name=op.f('fk_alerts_remedies_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['rules_version_id'], ['spec_versions.id'], name=op.f('fk_alerts_rules_version_id_spec_versions')),
    sa.ForeignKeyConstraint(['scan_run_id'], ['scan_runs.id'], name=op.f('fk_alerts_scan_run_id_scan_runs')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_alerts_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('rule', 'unit_id', 'period_id', 'week', name='uq_alerts_rule_unit_period_week')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_period_id_week', ['period_id', 'week'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_unit_id'), ['unit_id'], unique=False)

    op.create_table('job_leases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('acquired_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_job_leases'))
    )


def downgrade() -> None:
    op.drop_table('job_leases')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_unit_id'))
        batch_op.drop_index('ix_alerts_period_id_week')

    op.drop_table('alerts')
    with op.batch_alter_table('scan_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_scan_runs_period_id_week')

    op.drop_table('scan_runs')
    with op.batch_alter_table('actuals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_actuals_date'))

    op.drop_table('actuals')
