"""legal_holds: holds the shop owner places on a customer's data

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('legal_holds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=True),
    sa.Column('email_enc', sa.Text(), nullable=True),
    sa.Column('email_hash', sa.String(length=64), nullable=True),
    sa.Column('reason_enc', sa.Text(), nullable=False),
    sa.Column('placed_at', plugin.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('placed_by_enc', sa.Text(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('released_at', plugin.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('released_by_enc', sa.Text(), nullable=True),
    sa.Column('release_reason_enc', sa.Text(), nullable=True),
    sa.Column('released_how', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_holds')),
    sa.UniqueConstraint('shop_domain', 'key', name=op.f('uq_legal_holds_shop_domain_key'))
    )
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.create_index('ix_legal_holds_active', ['shop_domain', 'released_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('legal_holds', schema=None) as batch_op:
        batch_op.drop_index('ix_legal_holds_active')
    op.drop_table('legal_holds')
