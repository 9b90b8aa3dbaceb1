from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from plugin.crypto import Vault
from plugin.db import Database
from plugin.runtime import Runtime
from tests.conftest import make_settings
from tests.timing import SkippingClock


@pytest.fixture
async def runtime(db: Database, vault: Vault, clock: SkippingClock) -> AsyncIterator[Runtime]:
    """A runtime on the `db` fixture (SQLite and PostgreSQL) whose HTTP goes to the Shopify fake,
    both on the test's clock."""
    async with httpx.AsyncClient() as http:
        yield Runtime(settings=make_settings(database_url=db.url), db=db, vault=vault, http=http, clock=clock)
