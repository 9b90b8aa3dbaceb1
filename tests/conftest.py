"""Shared fixtures: settings with test secrets, and real databases.

`db` runs a test on both SQLite (a file in a temporary directory) and the real PostgreSQL server
(GALLRA_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test): one fresh database per
test run, migrated with Alembic, emptied between tests and dropped at the end. PostgreSQL tests are
never skipped: if the server is unreachable they fail.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from starlette.applications import Starlette

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import Base
from plugin.settings import Settings
from plugin.timing import SystemClock
from tests.timing import SkippingClock

PG_ADMIN_URL = os.environ.get("GALLRA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TEST_SECRET = "hush"
TEST_ENCRYPTION_KEY = Fernet.generate_key().decode()


def cli_environment(database_url: str) -> dict[str, str]:
    """The settings `gallra` commands read from the environment, pointed at a test database."""
    return {
        "DATABASE_URL": database_url,
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }


async def gallra(*args: str) -> tuple[int, str]:
    """Run one `gallra` command line in a thread (commands run their own event loop)."""
    from typer.testing import CliRunner

    from plugin.cli import _assemble

    result = await asyncio.to_thread(CliRunner().invoke, _assemble(), list(args))
    return result.exit_code, result.output


def wait_for_health(url: str, process: subprocess.Popen[Any], log: Path) -> None:
    """Wait (up to 60 s) until a `gallra serve` started by a test answers /healthz; fail with its log
    if the process exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
        assert process.poll() is None, log.read_text()
    raise AssertionError(f"gallra serve did not answer within 60 s:\n{log.read_text()}")


def make_settings(database_url: str = "sqlite+aiosqlite:///:memory:", **overrides: object) -> Settings:
    values: dict[str, Any] = {
        "shopify_api_key": "test-client-id",
        "shopify_api_secret": TEST_SECRET,
        "encryption_key": TEST_ENCRYPTION_KEY,
        "database_url": database_url,
        "shopify_admin_url": "https://{shop}",
        "run_workers": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def serving(app: Starlette, base_url: str = "http://gallra.test") -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with its lifespan entered, as uvicorn runs it: on leaving, intake's
    writer (a process of its own on a SQLite file) finishes and stops."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
            yield client


@pytest.fixture
def vault() -> Vault:
    return Vault(TEST_ENCRYPTION_KEY)


def _blocking(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion from sync code, even when a loop is already running here."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server's admin database (create/drop a database)."""
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def empty_pg_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (not migrated), dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run."""
    name = f"gallra_test_{uuid.uuid4().hex[:10]}"
    _blocking(pg_admin(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    upgrade(url)
    yield url
    _blocking(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "gallra.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly migrated SQLite file, never written to: `fresh_sqlite_url` copies it."""
    path: Path = tmp_path_factory.mktemp("template") / "gallra.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def fresh_sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database file of the test's own (for commands and processes that open it
    themselves): a copy of the migrated template, the same schema as running the migrations again."""
    path = tmp_path / "gallra.db"
    with closing(sqlite3.connect(sqlite_template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return f"sqlite+aiosqlite:///{path}"


async def _empty(db: Database) -> None:
    deletes = [f'DELETE FROM "{table.name}";' for table in reversed(Base.metadata.sorted_tables)]
    async with db.transaction() as session:
        if not db.is_sqlite:
            # PostgreSQL: the same deletes in one round trip, a few times faster than one each.
            await session.execute(text(f"DO $$ BEGIN {' '.join(deletes)} END $$"))
        else:
            for delete in deletes:
                await session.execute(text(delete))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    """The same test on SQLite and on the real PostgreSQL server."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    database = Database(url)
    evidence.bind(database, Vault(TEST_ENCRYPTION_KEY))
    await _empty(database)
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    evidence.bind(database, Vault(TEST_ENCRYPTION_KEY))
    await _empty(database)
    yield database
    await database.dispose()


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    evidence.bind(database, Vault(TEST_ENCRYPTION_KEY))
    await _empty(database)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def shopify_schema() -> Any:
    """Shopify's Admin GraphQL schema (API 2026-01), built once per test run."""
    from tests.fakes.shopify import load_admin_schema

    return load_admin_schema()


@pytest.fixture
def clock() -> SkippingClock:
    """The test's clock: a `Runtime` built with it and the Shopify fake skip every wait together."""
    return SkippingClock()


@pytest.fixture
def system_clock_skips(monkeypatch: pytest.MonkeyPatch) -> SkippingClock:
    """For commands run in-process, which build their own `Runtime` on the system clock: its waits
    are skipped (and recorded on the returned clock) instead of slept."""
    skipping = SkippingClock()
    monkeypatch.setattr(SystemClock, "sleep", lambda _self, seconds: skipping.sleep(seconds))
    return skipping


@pytest.fixture
def shopify_fake(shopify_schema: Any, clock: SkippingClock) -> Iterator[Any]:
    """A stateful Shopify Admin API (tests/fakes/shopify.py) answering every https://{shop}/admin/...
    call made through httpx while the test runs, on the test's `clock`."""
    from tests.fakes.shopify import ShopifyFake

    fake = ShopifyFake(schema=shopify_schema, clock=clock.time)
    with fake.mocked():
        yield fake


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Say how many tests ran against the real PostgreSQL server (CI must show they were not skipped)."""
    counts = {
        outcome: sum(1 for report in terminalreporter.stats.get(outcome, []) if "postgres" in report.keywords)
        for outcome in ("passed", "failed", "error", "skipped")
    }
    server = PG_ADMIN_URL.rsplit("/", 1)[0]
    terminalreporter.write_line(
        f"PostgreSQL tests run against the real server {server}: {sum(counts.values())} "
        f"(passed {counts['passed']}, failed {counts['failed']}, errors {counts['error']}, "
        f"skipped {counts['skipped']})"
    )
