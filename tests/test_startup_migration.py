"""Instances of `gallra serve` starting together on one fresh PostgreSQL database: each migrates
on start, one after another under the advisory lock, and all of them start."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from plugin.db import Database
from plugin.migrate import alembic_config
from plugin.models import Base
from tests.conftest import empty_pg_database

ROOT = Path(__file__).resolve().parents[1]
# Imports first (the slow part), then waits for the go line, so the upgrades start together.
STARTER = """
import sys
from plugin.migrate import upgrade
print("ready", flush=True)
sys.stdin.readline()
upgrade(sys.argv[1])
"""


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    async with empty_pg_database("gallra_start") as url:
        yield url


def _differences(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


@pytest.mark.postgres
async def test_instances_starting_together_all_migrate_and_leave_the_schema_at_head(
    fresh_postgres: str,
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    starters = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            STARTER,
            fresh_postgres,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    try:
        for starter in starters:
            assert starter.stdout is not None
            assert await asyncio.wait_for(starter.stdout.readline(), 60) == b"ready\n"
        for starter in starters:
            assert starter.stdin is not None
            starter.stdin.write(b"go\n")
        results = [await asyncio.wait_for(starter.communicate(), 120) for starter in starters]
    finally:
        for starter in starters:
            if starter.returncode is None:
                starter.kill()
                await starter.wait()
    assert [starter.returncode for starter in starters] == [0, 0, 0], [err for _out, err in results]

    db = Database(fresh_postgres)
    try:
        async with db.engine.connect() as connection:
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            heads = list(versions.scalars())
            differences = await connection.run_sync(_differences)
    finally:
        await db.dispose()
    assert heads == ScriptDirectory.from_config(alembic_config(fresh_postgres)).get_heads()
    assert differences == []
