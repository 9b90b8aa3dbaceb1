"""steps: verification of an erasure (verification, verified_at, verify_after, verification_detail)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('verified_at', plugin.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verify_after', plugin.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('verification_detail', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_column('verification_detail')
        batch_op.drop_column('verify_after')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('verification')
