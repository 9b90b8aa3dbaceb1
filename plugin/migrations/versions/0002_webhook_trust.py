"""webhook trust: unconfirmed uninstall claims on shops, the reason an on-hold request waits

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('uninstall_claimed_at', plugin.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hold_reason', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('hold_reason')
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('uninstall_claimed_at')
