"""Admin test fixtures: a runtime over the test database, the ASGI app, an HTTP client, two shops."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from plugin.app import create_app
from plugin.crypto import Vault
from plugin.db import Database
from plugin.runtime import Runtime
from tests.admin.seed import Seeded, seed_shop
from tests.conftest import make_settings
from tests.timing import SkippingClock

SHOP_A = "shop-a.myshopify.com"
SHOP_B = "shop-b.myshopify.com"


@pytest.fixture
async def runtime(db: Database, vault: Vault, clock: SkippingClock) -> AsyncIterator[Runtime]:
    http = httpx.AsyncClient(timeout=5)
    yield Runtime(settings=make_settings(db.url), db=db, vault=vault, http=http, clock=clock)
    await http.aclose()


def admin_app(runtime: Runtime) -> Starlette:
    """The whole app, as `gallra serve` builds it (the test settings run no workers)."""
    return create_app(runtime)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = admin_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def shops(runtime: Runtime) -> tuple[Seeded, Seeded]:
    a = await seed_shop(runtime.db, runtime.vault, SHOP_A)
    b = await seed_shop(runtime.db, runtime.vault, SHOP_B, locale="sv")
    return a, b
