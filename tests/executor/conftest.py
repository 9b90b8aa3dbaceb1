from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from plugin.crypto import Vault
from plugin.db import Database
from plugin.executor.context import WorkerConfig
from plugin.executor.worker import Worker
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


def fast_config(owner: str = "w1", **overrides: float) -> WorkerConfig:
    values: dict[str, float] = {
        "backoff_base": 0.02,
        "backoff_cap": 0.1,
        "lease_seconds": 30.0,
        "poll_seconds": 0.05,
    }
    values.update(overrides)
    return WorkerConfig(owner=owner, **values)  # type: ignore[arg-type]


@pytest.fixture
async def worker(runtime: Runtime, sources: FakeSources) -> Worker:
    await add_shop(runtime)
    return Worker(runtime, fast_config(), sources)
