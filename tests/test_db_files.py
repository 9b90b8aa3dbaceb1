"""The SQLite database and its -wal and -shm files are readable by their owner only (0600), however
they are created: migrations, the app's engine, intake's writer process."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from plugin.db import Database
from plugin.intake.writer import writer_engine
from plugin.migrate import upgrade_async


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems give a service: files would be created world-readable (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(path: Path) -> dict[str, int]:
    found = {}
    for suffix in ("", "-wal", "-shm"):
        name = Path(f"{path}{suffix}")
        if name.exists():
            found[name.name] = stat.S_IMODE(name.stat().st_mode)
    return found


async def test_migrated_and_served_database_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "gallra.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    db = Database(url)
    try:
        async with db.transaction() as session:  # a write: WAL mode makes the -wal and -shm files
            await session.execute(text("CREATE TABLE probe (x INTEGER)"))
            await session.execute(text("INSERT INTO probe VALUES (1)"))
        async with db.session() as session:
            await session.execute(text("SELECT x FROM probe"))
            found = modes(path)  # while a connection is open the -wal and -shm are there
    finally:
        await db.dispose()
    assert set(found) == {"gallra.db", "gallra.db-wal", "gallra.db-shm"}
    assert found == dict.fromkeys(found, 0o600)


def test_intake_writer_creates_private_files(tmp_path: Path) -> None:
    # The writer process opens the file with an engine of its own (plugin.intake.writer).
    path = tmp_path / "intake.db"
    engine = writer_engine(f"sqlite+aiosqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE probe (x INTEGER)"))
            connection.commit()
            found = modes(path)
    finally:
        engine.dispose()
    assert set(found) == {"intake.db", "intake.db-wal", "intake.db-shm"}
    assert found == dict.fromkeys(found, 0o600)


async def test_existing_world_readable_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade_async(url)
    for name in (path, Path(f"{path}-wal")):
        name.touch()
        name.chmod(0o644)
    db = Database(url)
    await db.dispose()
    assert modes(path) == {"old.db": 0o600, "old.db-wal": 0o600}


def test_memory_and_postgres_urls_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Database("sqlite+aiosqlite:///:memory:")
    Database("postgresql+asyncpg://postgres@127.0.0.1:5432/none")
    assert list(tmp_path.iterdir()) == []
