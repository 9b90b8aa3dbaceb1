"""Provider 429 and 5xx storms against the real Klaviyo adapter over HTTP: every request still
completes, each profile is deleted once, nothing is marked failed, and Retry-After is waited out."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Request, Step
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.executor.conftest import Clock, fast_config
from tests.executor.doubles import SHOP, add_request, add_shop
from tests.fakes.providers import FakeProviders, ProviderServer
from tests.timing import SkippingClock

EMAILS = [f"s{i}@example.se" for i in range(6)]


@pytest.fixture
async def runtime(db: Database, clock: SkippingClock) -> AsyncIterator[Runtime]:
    """The fake provider listens on loopback: a custom provider URL to a private address, which
    the server refuses unless its operator allows both. Retry-After and back-off waits are skipped
    on the test's clock, which records them."""
    settings = make_settings(db.url, allow_custom_provider_urls=True, allow_private_provider_urls=True)
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield Runtime(settings=settings, db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http, clock=clock)


@pytest.mark.parametrize("statuses", [(429,), (500, 502, 503, 504)], ids=["429", "5xx"])
async def test_storm_is_ridden_out(runtime: Runtime, clock: SkippingClock, statuses: tuple[int, ...]) -> None:
    providers = FakeProviders(latency=0.005, profiles=set(EMAILS))
    # Far more failures than one call's own retries absorb, so steps are rescheduled too.
    providers.storm.extend(itertools.islice(itertools.cycle(statuses), 24))
    await add_shop(runtime)
    with ProviderServer(providers) as server:
        async with runtime.db.transaction() as session:
            await configure(
                runtime, session, SHOP, "klaviyo", {"api_key": "pk_x", "base_url": f"{server.url}/klaviyo"}
            )
        ids = [await add_request(runtime, email=e, key=e) for e in EMAILS]
        # Steps and requests rescheduled with backoff come due on the worker's clock, which the
        # test moves on instead of waiting.
        worker_clock = Clock()
        config = fast_config(concurrency=4, backoff_base=0.05, backoff_cap=0.5, clock=worker_clock)
        worker = Worker(runtime, config, LiveSources(runtime))
        await worker.drain(limit=120)
        for _ in range(20):
            async with runtime.db.session() as session:
                open_ = (await session.execute(select(Request.id).where(Request.status != "done"))).all()
            if not open_:
                break
            worker_clock.advance(timedelta(seconds=0.5))  # the backoff's cap
            await worker.drain(limit=60)

    assert providers.storm_answered == 24
    if statuses == (429,):
        assert 1.0 in clock.sleeps  # the storm's Retry-After: 1 was waited (on the test's clock)
    assert dict(providers.deletions) == {e: 1 for e in EMAILS}
    async with runtime.db.session() as session:
        statuses_ = (await session.execute(select(Request.status).where(Request.id.in_(ids)))).scalars().all()
        failed = (await session.execute(select(Step.id).where(Step.state == "failed"))).all()
    assert set(statuses_) == {"done"} and failed == []
