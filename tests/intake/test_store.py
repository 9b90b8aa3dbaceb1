"""Group commit: one transaction per batch, duplicates inside a batch, and a bad row alone fails."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy.exc import DBAPIError

from plugin.db import Database
from plugin.intake.headers import WebhookHeaders
from plugin.intake.mapping import new_request
from plugin.intake.payloads import parse
from plugin.intake.store import Incoming, IntakeStore
from plugin.runtime import Runtime
from tests.intake.conftest import build_runtime, counts

SHOP = "batch-shop.myshopify.com"


def incoming(runtime: Runtime, data_request_id: int, webhook_id: str | None = None) -> Incoming:
    body = json.dumps(
        {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 5}, "data_request": {"id": data_request_id}}
    ).encode()
    headers = WebhookHeaders(
        signature="checked elsewhere",
        topic="customers/data_request",
        shop_domain=SHOP,
        api_version="2026-01",
        webhook_id=webhook_id or str(uuid.uuid4()),
        event_id=None,
        triggered_at=None,
    )
    payload = parse("customers/data_request", body)
    request = new_request("customers/data_request", payload, SHOP, runtime.vault, body)
    return Incoming(topic="customers/data_request", shop=SHOP, headers=headers, body=body, request=request)


async def test_a_burst_is_one_batch_with_in_batch_duplicates(db: Database) -> None:
    runtime = build_runtime(db)
    store = IntakeStore(runtime)
    commits = 0
    original = store._write

    async def counting(batch: list) -> None:  # type: ignore[type-arg]
        nonlocal commits
        commits += 1
        await original(batch)

    store._write = counting  # type: ignore[method-assign]
    items = [incoming(runtime, n) for n in range(40)]
    items += [incoming(runtime, 7), incoming(runtime, 99, webhook_id=items[3].headers.webhook_id)]
    answers = await asyncio.gather(*(store.submit(item) for item in items))
    await store.close()
    assert commits <= 2  # all forty arrived while at most one write was in flight
    assert [a.duplicate for a in answers] == [False] * 40 + [True, True]
    assert answers[40].request_id == answers[7].request_id and answers[41].request_id == answers[3].request_id
    assert await counts(db) == (40, 40)
    await runtime.http.aclose()


@pytest.mark.postgres
async def test_a_refused_row_fails_alone(pg_db: Database) -> None:
    runtime = build_runtime(pg_db)
    store = IntakeStore(runtime)
    items = [incoming(runtime, n) for n in range(5)]
    items[2] = incoming(runtime, 2, webhook_id="w" * 300)  # longer than the column: PostgreSQL refuses it
    answers = await asyncio.gather(*(store.submit(item) for item in items), return_exceptions=True)
    await store.close()
    assert isinstance(answers[2], DBAPIError)
    assert all(not isinstance(a, BaseException) and not a.duplicate for i, a in enumerate(answers) if i != 2)
    assert await counts(pg_db) == (4, 4)
    await runtime.http.aclose()


async def test_database_unreachable_fails_the_batch_without_retrying_rows() -> None:
    runtime = build_runtime(Database("postgresql://postgres@127.0.0.1:1/none"))
    store = IntakeStore(runtime)
    with pytest.raises((OSError, DBAPIError)):
        await store.submit(incoming(runtime, 1))
    await store.close()
    await runtime.http.aclose()
