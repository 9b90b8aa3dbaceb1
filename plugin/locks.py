"""Serialising a read-then-write across workers and processes.

PostgreSQL: a transaction-scoped advisory lock on a key. SQLite: the database's single write lock,
taken at once by a no-op UPDATE (the same as `BEGIN IMMEDIATE`), so reads that follow see every
committed write and no other writer can slip in before this transaction commits.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.ledger import dialect_of


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


async def serialise(session: AsyncSession, key: str) -> None:
    """Hold `key` until the session's transaction ends."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _lock_id(key)})
    else:
        await session.execute(text("UPDATE clock_claims SET owner = owner WHERE 1 = 0"))
