"""Alembic environment: runs migrations on the async engine for SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from plugin.db import Database
from plugin.models import Base

config = context.config
target_metadata = Base.metadata
# PostgreSQL advisory lock key held while migrating ("gallra" in ASCII): instances of `gallra
# serve` starting together against one database migrate one after another, and the later ones find
# the schema already at head. SQLite is the embedded, one-process deployment: nothing to lock.
MIGRATION_LOCK = 0x67616C6C7261


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Transaction-scoped: released by the commit (or rollback) that ends the migration. The
        # version table is read after the lock is granted, so a waiter sees the winner's commit.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online() -> None:
    db = Database(config.get_main_option("sqlalchemy.url") or "")
    async with db.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # A table rebuilt in batch mode is dropped and recreated; with foreign keys on, SQLite
            # runs the drop as a DELETE and cascades it into the rows that refer to the table.
            # The pragma only takes effect outside a transaction, so it comes first.
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await connection.commit()
        await connection.run_sync(_run)
        await connection.commit()
        if connection.dialect.name == "sqlite":
            await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            await connection.commit()
    await db.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_online())
