"""evidence: keyed chain, identifiers apart, head record; requests: minimised_at

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-04 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import plugin.models


revision: str = '0005'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing entries keep their unkeyed hashes as version 1; a shop's next append re-chains them
    # under the key (plugin.evidence), which a migration cannot do: it has no key.
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identifiers', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))

    op.create_table('evidence_heads',
    sa.Column('shop_domain', sa.String(length=255), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('mac', sa.String(length=64), nullable=False),
    sa.Column('updated_at', plugin.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('shop_domain', name=op.f('pk_evidence_heads'))
    )

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('minimised_at', plugin.models.UTCDateTime(timezone=True), nullable=True))

    _rechain_existing()


def _rechain_existing() -> None:
    """Each shop's unkeyed chain, checked as it stands, re-written under the key with its
    identifiers split off (plugin.evidence.rechained). A chain that does not verify is left as it
    is, so `gallra evidence verify` still shows where it broke."""
    from types import SimpleNamespace

    from plugin import evidence as chain
    from plugin.crypto import Vault
    from plugin.settings import load_settings

    bind = op.get_bind()
    entries = sa.table(
        'evidence',
        sa.column('id', sa.Integer()),
        sa.column('shop_domain', sa.String()),
        sa.column('seq', sa.Integer()),
        sa.column('request_id', sa.Integer()),
        sa.column('at', plugin.models.UTCDateTime()),
        sa.column('kind', sa.String()),
        sa.column('payload', sa.JSON()),
        sa.column('identifiers', sa.JSON()),
        sa.column('version', sa.Integer()),
        sa.column('key_id', sa.String()),
        sa.column('prev_hash', sa.String()),
        sa.column('hash', sa.String()),
    )
    heads = sa.table(
        'evidence_heads',
        sa.column('shop_domain', sa.String()),
        sa.column('seq', sa.Integer()),
        sa.column('hash', sa.String()),
        sa.column('key_id', sa.String()),
        sa.column('mac', sa.String()),
        sa.column('updated_at', plugin.models.UTCDateTime()),
    )
    shops = [row[0] for row in bind.execute(sa.select(entries.c.shop_domain).distinct())]
    if not shops:
        return
    # The app's key: this migration runs from `gallra db upgrade` / `gallra serve`, configured.
    settings = load_settings()
    previous = settings.encryption_key_previous
    keys = chain.ChainKeys(
        Vault(settings.encryption_key.get_secret_value(), previous.get_secret_value() if previous else None)
    )
    for shop in shops:
        rows = bind.execute(
            sa.select(entries).where(entries.c.shop_domain == shop).order_by(entries.c.seq)
        ).all()
        new = chain.rechained(keys, shop, [SimpleNamespace(**row._mapping) for row in rows], legacy_ok=True)
        if not new:
            continue
        for row, rewritten in zip(rows, new, strict=True):
            bind.execute(
                sa.update(entries)
                .where(entries.c.id == row.id)
                .values(
                    payload=rewritten.payload,
                    identifiers=rewritten.identifiers,
                    version=chain.KEYED,
                    key_id=rewritten.key_id,
                    prev_hash=rewritten.prev_hash,
                    hash=rewritten.hash,
                )
            )
        bind.execute(sa.insert(heads).values(**chain.head_record(keys, shop, new[-1].seq, new[-1].hash)))


def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('minimised_at')
    op.drop_table('evidence_heads')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('version')
        batch_op.drop_column('identifiers')
