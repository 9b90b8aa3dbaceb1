"""shops: the controller's legal name, address, owner overrides, shop/update refresh claim

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-04 19:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0008'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_name_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('address_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('controller_overrides', sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column('details_stale_at', plugin.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('shops', schema=None) as batch_op:
        batch_op.drop_column('details_stale_at')
        batch_op.drop_column('controller_overrides')
        batch_op.drop_column('address_enc')
        batch_op.drop_column('legal_name_enc')
