"""states: a CHECK constraint per state column, built from the enums in plugin.states

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 22:10:00.000000
"""

from collections.abc import Sequence

from plugin.migrations.checks import drop_state_checks, replace_state_checks

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# 0012 created its tables (shopify_erasures, customer_merges) with their constraints already.
TABLES = ("requests", "steps", "shops", "adapter_connections", "outbox", "notifications", "sweeps")


def upgrade() -> None:
    replace_state_checks(*TABLES, create_only=True)


def downgrade() -> None:
    drop_state_checks(*TABLES)
