from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.shopify import Shopify
from plugin.crypto import Vault
from plugin.db import Database
from plugin.executor.context import WorkerConfig
from plugin.models import utcnow
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.executor.doubles import FakeSources, Ledger, add_shop
from tests.timing import SkippingClock


@pytest.fixture
async def runtime(db: Database, clock: SkippingClock) -> AsyncIterator[Runtime]:
    http = httpx.AsyncClient(timeout=5.0)
    rt = Runtime(
        settings=make_settings(db.url), db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http, clock=clock
    )
    yield rt
    await http.aclose()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def sources(runtime: Runtime, ledger: Ledger) -> FakeSources:
    return FakeSources(runtime, ledger)


class Clock:
    """A worker's clock that tests move on (claims and verification times follow it)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def fast_config(owner: str = "w1", *, clock: Clock | None = None, **overrides: float) -> WorkerConfig:
    values: dict[str, float] = {
        "backoff_base": 0.02,
        "backoff_cap": 0.1,
        "lease_seconds": 30.0,
        "poll_seconds": 0.05,
    }
    values.update(overrides)
    config = WorkerConfig(owner=owner, **values)  # type: ignore[arg-type]
    return config if clock is None else replace(config, clock=clock)


@pytest.fixture
async def worker(runtime: Runtime, sources: FakeSources) -> Worker:
    await add_shop(runtime)
    return Worker(runtime, fast_config(), sources)


async def after_shopify_erasure(worker: Worker, clock: Clock, shopify_fake: Any, shop: str) -> None:
    """Shopify carries out the customer data erasures Gallra requested, and the worker looks again
    once Shopify's delay has passed (`adapters/shopify.py`, verification): the request finishes."""
    shopify_fake.carry_out_erasures(shop, all_pending=True)
    clock.advance(Shopify.verification.after + timedelta(minutes=1))
    await worker.drain(limit=60, settle=0.3)
