"""Crash: SIGKILL a real `gallra worker` process while it waits on a provider mid-request; after a
restart every request completes and each erasure was performed exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bench.providers import FakeProviders, ProviderServer
from plugin import evidence
from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.migrate import upgrade
from plugin.models import Request, Shop, Step
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.executor.doubles import add_request

SHOP = "crash.myshopify.com"
EMAILS = [f"c{i}@example.se" for i in range(6)]
VICTIM = EMAILS[3]


def _start_worker(
    env: dict[str, str], cwd: Path, concurrency: int = 1, lease_seconds: float = 3
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plugin.cli",
            "worker",
            "--concurrency",
            str(concurrency),
            "--lease-seconds",
            str(lease_seconds),
            "--poll-seconds",
            "0.2",
            "--no-clocks",
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _statuses(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = (await session.execute(select(Request.business_key, Request.status))).all()
    return {key: status for key, status in rows}


async def _shop_with_klaviyo(runtime: Runtime, provider_url: str, emails: list[str]) -> dict[str, str]:
    """The shop, its Klaviyo connection to the fake, one customers/redact request per e-mail; the
    environment a `gallra worker` process needs to reach the same database."""
    async with runtime.db.transaction() as session:
        session.add(Shop(domain=SHOP, name="Crash", country="SE", timezone="Europe/Stockholm"))
        await configure(
            runtime, session, SHOP, "klaviyo", {"api_key": "pk_test", "base_url": f"{provider_url}/klaviyo"}
        )
    for email in emails:
        await add_request(runtime, email=email, domain=SHOP, key=email)
    return {
        **os.environ,
        "DATABASE_URL": runtime.db.url,
        "SHOPIFY_API_KEY": "test-client-id",
        "SHOPIFY_API_SECRET": "hush",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "GALLRA_LOG_LEVEL": "WARNING",
        "GALLRA_ALLOW_CUSTOM_PROVIDER_URLS": "1",
        "GALLRA_ALLOW_PRIVATE_PROVIDER_URLS": "1",
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database the worker processes can reach: a fresh SQLite file, or the test PostgreSQL
    database (emptied by the `pg_db` fixture)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_db").url)
    url = f"sqlite+aiosqlite:///{tmp_path / 'gallra.db'}"
    upgrade(url)
    return url


async def test_sigkill_mid_request_then_restart_erases_each_once(tmp_path: Path, database_url: str) -> None:
    url = database_url
    db = Database(url)
    # The fake provider listens on loopback, which the server calls only when its operator allows
    # custom provider URLs and private addresses (here and in the worker processes' environment).
    settings = make_settings(url, allow_custom_provider_urls=True, allow_private_provider_urls=True)
    runtime = Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=httpx.AsyncClient())
    providers = FakeProviders(latency=0.02, profiles=set(EMAILS))
    providers.block_first_deletion(VICTIM)
    with ProviderServer(providers) as server:
        env = await _shop_with_klaviyo(runtime, server.url, EMAILS)
        first = _start_worker(env, tmp_path)
        deadline = time.monotonic() + 60
        while VICTIM not in providers.waiting:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the worker never reached the blocked deletion"
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL

        before = await _statuses(db)
        async with db.session() as session:
            running = (await session.execute(select(Step).where(Step.state == "running"))).scalars().all()
        assert [s.system for s in running] == ["klaviyo"]  # the step that was mid-call
        assert before[VICTIM] != "done"
        assert providers.deletions[VICTIM] == 0  # the hanging call never completed

        second = _start_worker(env, tmp_path)
        try:
            deadline = time.monotonic() + 90
            while set((await _statuses(db)).values()) != {"done"}:
                assert second.poll() is None, second.stderr.read().decode() if second.stderr else ""
                assert time.monotonic() < deadline, f"not finished after restart: {await _statuses(db)}"
                await asyncio.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=20)

    assert dict(providers.deletions) == {email: 1 for email in EMAILS}
    async with db.session() as session:
        chain = await evidence.verify(session, SHOP)
        victim_step = (
            await session.execute(
                select(Step)
                .join(Request, Request.id == Step.request_id)
                .where(Request.business_key == VICTIM, Step.system == "klaviyo")
            )
        ).scalar_one()
    assert chain.ok
    assert (victim_step.state, victim_step.attempts) == ("done", 2)  # the killed attempt counted
    await runtime.http.aclose()
    await db.dispose()


async def test_two_worker_processes_on_postgres_erase_each_once(pg_db: Database, tmp_path: Path) -> None:
    """Two `gallra worker` processes against one PostgreSQL database share the work, never run a
    step twice, and together stay within Klaviyo's limits (shared through the database): the
    provider refuses no call, so no step needs a second attempt."""
    url = pg_db.url
    runtime = Runtime(
        settings=make_settings(url, allow_custom_provider_urls=True, allow_private_provider_urls=True),
        db=pg_db,
        vault=Vault(TEST_ENCRYPTION_KEY),
        http=httpx.AsyncClient(),
    )
    emails = [f"p{i}@example.se" for i in range(24)]
    providers = FakeProviders(latency=0.02, profiles=set(emails))
    with ProviderServer(providers) as server:
        env = await _shop_with_klaviyo(runtime, server.url, emails)
        # No worker dies here, so the lease can be long: on a loaded machine a 3 s lease can lapse
        # between heartbeats, and a lapsed lease is (rightly) taken over by the other worker.
        workers = [_start_worker(env, tmp_path, concurrency=4, lease_seconds=30) for _ in range(2)]
        try:
            deadline = time.monotonic() + 120
            while set((await _statuses(pg_db)).values()) != {"done"}:
                for worker in workers:
                    assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
                assert time.monotonic() < deadline, f"not finished: {await _statuses(pg_db)}"
                await asyncio.sleep(0.2)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(timeout=20)
    assert dict(providers.deletions) == {email: 1 for email in emails}
    async with pg_db.session() as session:
        attempts = (await session.execute(select(Step.system, Step.attempts))).all()
        assert (await evidence.verify(session, SHOP)).ok
    # The fake checks every call against Klaviyo's sliding windows as it arrives.
    assert {key: (stats.over_limit, dict(stats.over_windows)) for key, stats in providers.stats.items()} == {
        key: (0, {}) for key in ("klaviyo:profiles", "klaviyo:suppression", "klaviyo:deletion")
    }
    assert providers.stats["klaviyo:deletion"].calls == len(emails)
    assert max(n for _system, n in attempts) == 1
    assert [n for system, n in attempts if system == "klaviyo"] == [1] * len(emails)
    await runtime.http.aclose()
