"""session versions (server-side sign-out) and API token expiry

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

#: Tokens made before expiry existed get the default lifetime from their creation.
LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    # A plain-string default: SQLite then adds the column in place instead of copying
    # ``users``, which the rows of other tables refer to.
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    tokens = sa.table('api_tokens', sa.column('id', sa.Integer()),
                      sa.column('created_at', sa.DateTime()),
                      sa.column('expires_at', sa.DateTime()))
    bind = op.get_bind()
    rows = bind.execute(sa.select(tokens.c.id, tokens.c.created_at)).all()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for token_id, created_at in rows:
        bind.execute(tokens.update().where(tokens.c.id == token_id).values(
            expires_at=(created_at or now) + dt.timedelta(days=LEGACY_TOKEN_DAYS)))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    # Not a batch: copying ``users`` on SQLite fails while other rows refer to it
    # (SQLite 3.35+ drops a column in place).
    op.drop_column('users', 'session_version')
