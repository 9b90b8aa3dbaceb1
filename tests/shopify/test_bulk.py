from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from plugin.shopify.bulk import (
    BulkOperationFailed,
    bulk_finished,
    join_children,
    run_bulk_query,
    start_bulk_query,
    stream_customers,
    stream_jsonl,
    stream_orders,
    wait_for_bulk,
)
from plugin.shopify.client import AdminClient
from tests.fakes.shopify import ShopifyFake
from tests.shopify.helpers import SHOP, VirtualClock, client_for


def _t(year: int, month: int = 1) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


@pytest.fixture
async def setup(shopify_fake: ShopifyFake) -> AsyncIterator[tuple[AdminClient, VirtualClock]]:
    shopify_fake.add_shop(SHOP)
    for c in range(1, 5):
        shopify_fake.add_customer(SHOP, c, email=f"c{c}@example.com", email_marketing="SUBSCRIBED")
    for n in range(12):
        shopify_fake.add_order(
            SHOP,
            500 + n,
            customer_id=1 + n % 3,
            created_at=_t(2014 + n),
            fulfillments=[
                {
                    "id": 900 + n,
                    "delivered_at": _t(2014 + n, 2),
                    "tracking": [{"company": "Bring", "number": f"TN{n}", "url": None}],
                }
            ],
        )
    clock = VirtualClock()
    async with httpx.AsyncClient() as http:
        yield client_for(shopify_fake, http, clock), clock


async def test_stream_orders_end_to_end(
    setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, clock = setup
    orders = [o async for o in stream_orders(client, sleep=clock.sleep)]
    assert [o.id for o in orders] == list(range(500, 512))
    assert orders[3].fulfillments[0].tracking[0].number == "TN3"
    assert orders[3].fulfillments[0].delivered_at == _t(2017, 2)
    run = shopify_fake.mutations[0]
    assert run.name == "bulkOperationRunQuery" and run.variables["groupObjects"] is False
    assert clock.sleeps  # it polled at least once before COMPLETED


async def test_stream_orders_with_filter(setup: tuple[AdminClient, VirtualClock]) -> None:
    client, clock = setup
    orders = [
        o async for o in stream_orders(client, query_filter="created_at:<2016-01-01", sleep=clock.sleep)
    ]
    assert [o.id for o in orders] == [500, 501]


async def test_stream_customers_with_last_order(setup: tuple[AdminClient, VirtualClock]) -> None:
    client, clock = setup
    customers = {c.id: c async for c in stream_customers(client, sleep=clock.sleep)}
    assert customers[1].last_order_at == _t(2023) and customers[4].last_order_at is None
    assert customers[1].email is None  # the sweep query reads no contact data
    assert customers[2].email_marketing_state == "SUBSCRIBED"


async def test_nested_connection_children_are_joined(
    setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, clock = setup
    query = "{ customers { edges { node { id orders { edges { node { id createdAt } } } } } } }"
    nodes = [n async for n in run_bulk_query(client, query, sleep=clock.sleep)]
    assert shopify_fake.mutations[0].variables["groupObjects"] is True
    by_customer = {n.node["id"]: [c["id"] for c in n.children] for n in nodes}
    assert by_customer["gid://shopify/Customer/1"] == [f"gid://shopify/Order/{500 + n}" for n in (0, 3, 6, 9)]
    assert by_customer["gid://shopify/Customer/4"] == []


@pytest.mark.parametrize("status", ["FAILED", "EXPIRED", "CANCELED"])
async def test_failed_operations_raise(
    status: str, setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, clock = setup
    shopify_fake.bulk_outcome(SHOP, status=status, error_code="ACCESS_DENIED" if status == "FAILED" else None)
    with pytest.raises(BulkOperationFailed) as info:
        [o async for o in stream_orders(client, sleep=clock.sleep)]
    assert info.value.status == status and not info.value.partial


async def test_partial_data_is_streamed_then_reported(
    setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, clock = setup
    shopify_fake.bulk_outcome(SHOP, status="FAILED", error_code="TIMEOUT", partial=True)
    seen: list[int] = []
    with pytest.raises(BulkOperationFailed) as info:
        async for order in stream_orders(client, allow_partial=True, sleep=clock.sleep):
            seen.append(order.id)
    assert info.value.partial and info.value.error_code == "TIMEOUT"
    assert seen == list(range(500, 506))


async def test_finish_webhook_wakes_the_waiter(
    setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, _ = setup
    shopify_fake.bulk_polls_until_done = 1
    operation = await start_bulk_query(client, "{ orders { edges { node { id } } } }")

    async def finish_soon() -> None:
        await asyncio.sleep(0.05)
        bulk_finished(operation)

    task = asyncio.create_task(finish_soon())
    started = asyncio.get_running_loop().time()
    info = await wait_for_bulk(client, operation, first_poll=30.0, max_poll=60.0)
    await task
    assert info.status == "COMPLETED"
    assert asyncio.get_running_loop().time() - started < 5  # not the 15-30 s poll delay


async def _lines(items: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in items:
        yield json.loads(json.dumps(item))


async def test_join_refuses_orphans() -> None:
    lines = [{"id": "gid://shopify/Order/1"}, {"id": "x", "__parentId": "gid://shopify/Order/2"}]
    with pytest.raises(BulkOperationFailed):
        [n async for n in join_children(_lines(lines))]


async def test_expired_result_file(
    setup: tuple[AdminClient, VirtualClock], shopify_fake: ShopifyFake
) -> None:
    client, _ = setup
    shopify_fake.router.get("https://storage.fake-shopify.test/gone.jsonl").respond(403)
    with pytest.raises(BulkOperationFailed) as info:
        [x async for x in stream_jsonl(client.http, "https://storage.fake-shopify.test/gone.jsonl")]
    assert info.value.status == "EXPIRED"
