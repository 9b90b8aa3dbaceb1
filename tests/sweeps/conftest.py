"""A runtime on the test database (SQLite and PostgreSQL, via the `db` fixture) for sweep tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from plugin.crypto import Vault
from plugin.db import Database
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.timing import SkippingClock


@pytest.fixture
async def runtime(db: Database, clock: SkippingClock) -> AsyncIterator[Runtime]:
    async with httpx.AsyncClient() as http:
        yield Runtime(
            settings=make_settings(db.url), db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http, clock=clock
        )
