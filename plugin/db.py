"""Database engines and sessions: SQLite (embedded default) or PostgreSQL (several instances)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool


def normalise_url(url: str) -> str:
    """Accept the URLs people write (`postgresql://`, `sqlite:///x.db`) and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """The URL without its password, for start-up messages."""
    return make_url(url).render_as_string(hide_password=True)


def private_sqlite_file(url: str) -> None:
    """Make a SQLite database file readable by its owner only, before SQLite opens it.

    SQLite creates a database file 0644 (less the umask) and gives its -wal, -shm and journal
    files the database file's own mode, so creating the file 0600 first covers all of them; an
    existing file (and its -wal and -shm) is tightened to 0600. They hold encrypted personal
    data, but also the look-up hashes and everything unencrypted about each request. No-op for
    in-memory databases and for PostgreSQL.
    """
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return
    if database.startswith("file:") or parsed.query.get("mode") == "memory":
        return  # a URI filename: SQLite resolves it, not us
    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # e.g. no such directory: SQLite's own error says so when it opens the file
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except OSError:
            pass  # not there, or not ours to change (then SQLite decides whether it may open it)


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; the busy timeout makes writers queue
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a commit survives a crash of the process, but in WAL mode it "might roll back
    # following a power loss or system crash" (SQLite's documentation). Webhook intake, whose
    # 2xx Shopify never repeats, commits on its own connection with FULL (plugin.intake.store).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        # Parameters stay out of SQL logs and of error messages (and so of logged tracebacks):
        # a statement's values are the one place personal data could slip into a log.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            private_sqlite_file(self.url)
            if ":memory:" not in self.url:
                # Pooled: opening a SQLite connection (a thread, the file, the pragmas) costs ~10 ms,
                # far more than the webhook write it serves. One writer at a time either way.
                kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=5, max_overflow=10, pool_timeout=5)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=5)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
