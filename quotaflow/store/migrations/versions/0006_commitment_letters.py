"""commitment letters

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('commitment_letters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('superseded_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("status IN ('issued', 'signed', 'countersigned', 'superseded')", name=op.f('ck_commitment_letters_status')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_commitment_letters_version_positive')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_commitment_letters_plan_id_plans')),
    sa.ForeignKeyConstraint(['superseded_by_id'], ['commitment_letters.id'], name=op.f('fk_commitment_letters_superseded_by_id_commitment_letters')),
    sa.ForeignKeyConstraint(['unit_id'], ['org_units.id'], name=op.f('fk_commitment_letters_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_commitment_letters')),
    sa.UniqueConstraint('plan_id', 'unit_id', name='uq_commitment_letters_plan_id_unit_id'),
    sa.UniqueConstraint('unit_id', 'version', name='uq_commitment_letters_unit_id_version')
    )
    with op.batch_alter_table('commitment_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_commitment_letters_plan_id'), ['plan_id'], unique=False)

    op.create_table('letter_signatures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('letter_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.CheckConstraint("role IN ('person', 'manager')", name=op.f('ck_letter_signatures_role')),
    sa.ForeignKeyConstraint(['letter_id'], ['commitment_letters.id'], name=op.f('fk_letter_signatures_letter_id_commitment_letters')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_letter_signatures_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_signatures')),
    sa.UniqueConstraint('letter_id', 'role', name='uq_letter_signatures_letter_id_role')
    )


def downgrade() -> None:
    op.drop_table('letter_signatures')
    with op.batch_alter_table('commitment_letters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_commitment_letters_plan_id'))

    op.drop_table('commitment_letters')
