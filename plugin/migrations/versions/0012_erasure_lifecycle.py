"""Shopify's erasure lifecycle (shopify_erasures), customers/merge (customer_merges, requests.merged_from)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('shopify_erasures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('customer_id', sa.BigInteger(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('step_id', sa.Integer(), nullable=True),
    sa.Column('requested_at', plugin.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expected_at', plugin.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('merged_from', sa.JSON(), nullable=True),
    sa.Column('verified_at', plugin.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', plugin.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by', sa.String(length=64), nullable=True),
    sa.Column('cancel_reason_enc', sa.Text(), nullable=True),
    sa.CheckConstraint("state IN ('requested', 'cancelled', 'verified')", name=op.f('ck_shopify_erasures_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shopify_erasures')),
    sa.UniqueConstraint('shop_domain', 'customer_id', 'request_id', name=op.f('uq_shopify_erasures_shop_domain_customer_id_request_id'))
    )
    op.create_table('customer_merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('business_key', sa.String(length=255), nullable=False),
    sa.Column('kept_customer_id', sa.BigInteger(), nullable=False),
    sa.Column('deleted_customer_id', sa.BigInteger(), nullable=False),
    sa.Column('job_id', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('received_at', plugin.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('applied_at', plugin.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('moved', sa.JSON(), nullable=True),
    sa.CheckConstraint("state IN ('received', 'applied', 'ignored')", name=op.f('ck_customer_merges_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_merges')),
    sa.UniqueConstraint('shop_domain', 'business_key', name=op.f('uq_customer_merges_shop_domain_business_key'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_from', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('merged_from')
    op.drop_table('customer_merges')
    op.drop_table('shopify_erasures')
