from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from plugin.shopify.client import (
    GraphQLErrors,
    MaxCostExceeded,
    ShopifyAuthError,
    ShopifyUnavailable,
    UserErrors,
    graphql_url,
)
from tests.conftest import make_settings
from tests.fakes.shopify import ShopifyFake
from tests.shopify.helpers import SHOP, VirtualClock, client_for

ORDERS_10 = "query Orders10 { orders(first: 8) { nodes { id } } }"  # costs 10 points


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def test_url_uses_setting_and_manifest_version() -> None:
    assert graphql_url(make_settings(), SHOP) == f"https://{SHOP}/admin/api/2026-01/graphql.json"
    settings = make_settings(shopify_admin_url="http://127.0.0.1:9999/{shop}", shopify_api_version="2026-04")
    assert graphql_url(settings, SHOP) == f"http://127.0.0.1:9999/{SHOP}/admin/api/2026-04/graphql.json"


async def test_execute_sends_token_and_returns_data(
    shopify_fake: ShopifyFake, http: httpx.AsyncClient
) -> None:
    shopify_fake.add_shop(SHOP, name="Snow Devil")
    client = client_for(shopify_fake, http, VirtualClock())
    assert await client.execute("query { shop { name } }") == {"shop": {"name": "Snow Devil"}}
    assert shopify_fake.requests[0].headers["X-Shopify-Access-Token"] == "shpat_test"


async def test_paces_instead_of_being_throttled(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    clock = VirtualClock()
    shop = shopify_fake.add_shop(SHOP)
    shop.bucket.maximum = shop.bucket.available = 100.0
    shop.bucket.restore_rate = 50.0
    client = client_for(shopify_fake, http, clock)
    for _ in range(60):  # 600 points through a 100-point bucket
        await client.execute(ORDERS_10)
    # The first call had to guess the cost; after it the client knows the bucket and paces itself.
    assert shopify_fake.throttled == 0
    assert client.throttle.restore_rate == 50.0 and client.throttle.maximum == 100.0
    assert clock.now - 1_000_000.0 == pytest.approx((600 - 100) / 50, rel=0.05)


async def test_throttled_answer_waits_and_retries(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    clock = VirtualClock()
    shop = shopify_fake.add_shop(SHOP)
    client = client_for(shopify_fake, http, clock)
    await client.execute(ORDERS_10)
    shop.bucket.available = 0  # another app instance used the bucket up behind our back
    await client.execute(ORDERS_10)
    assert shopify_fake.throttled == 1 and client.throttled == 1
    assert clock.sleeps and clock.sleeps[-1] == pytest.approx(10 / shop.bucket.restore_rate, abs=0.11)


async def test_429_retry_after_and_5xx_and_network(
    shopify_fake: ShopifyFake, http: httpx.AsyncClient
) -> None:
    clock = VirtualClock()
    shopify_fake.add_shop(SHOP)
    shopify_fake.fail_next(SHOP, status=429, headers={"Retry-After": "2.5"})
    shopify_fake.fail_next(SHOP, status=502)
    shopify_fake.fail_next(SHOP, network=True)
    client = client_for(shopify_fake, http, clock)
    assert await client.execute("{ shop { name } }") == {"shop": {"name": "shop-a"}}
    assert clock.sleeps[0] == 2.5 and len(clock.sleeps) == 3


async def test_gives_up_after_max_attempts(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    shopify_fake.add_shop(SHOP)
    shopify_fake.fail_next(SHOP, status=503, times=3)
    client = client_for(shopify_fake, http, VirtualClock(), max_attempts=3)
    with pytest.raises(ShopifyUnavailable):
        await client.execute("{ shop { name } }")


async def test_max_cost_exceeded_is_not_retried(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    shopify_fake.add_shop(SHOP)
    client = client_for(shopify_fake, http, VirtualClock())
    with pytest.raises(MaxCostExceeded) as info:
        await client.execute(
            "query Big { customers(first: 250) { nodes { orders(first: 50) { nodes { id } } } } }"
        )
    assert info.value.max_cost == 1000 and "bulk operation" in str(info.value)
    assert len(shopify_fake.requests) == 1


async def test_invalid_document_and_bad_token(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    shopify_fake.add_shop(SHOP)
    client = client_for(shopify_fake, http, VirtualClock())
    with pytest.raises(GraphQLErrors, match="Cannot query field"):
        await client.execute("query { shop { nam } }")
    shopify_fake.shops[SHOP].tokens.clear()
    with pytest.raises(ShopifyAuthError) as info:
        await client.execute("query { shop { name } }")
    assert "shpat_test" not in str(info.value)


async def test_user_errors_are_typed_without_messages(
    shopify_fake: ShopifyFake, http: httpx.AsyncClient
) -> None:
    shopify_fake.add_shop(SHOP)
    client = client_for(shopify_fake, http, VirtualClock())
    with pytest.raises(UserErrors) as info:
        await client.mutate(
            """mutation Erase($id: ID!) { customerRequestDataErasure(customerId: $id) {
                 customerId userErrors { field message code } } }""",
            {"id": "gid://shopify/Customer/404"},
            "customerRequestDataErasure",
        )
    assert info.value.codes == {"DOES_NOT_EXIST"}


async def test_paginate_walks_every_page(shopify_fake: ShopifyFake, http: httpx.AsyncClient) -> None:
    shopify_fake.add_shop(SHOP)
    for n in range(7):
        shopify_fake.add_order(SHOP, 100 + n, created_at=datetime(2024, 1, 1 + n, tzinfo=UTC))
    client = client_for(shopify_fake, http, VirtualClock())
    document = """query Page($after: String) { orders(first: 3, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id } } }"""
    ids = [node["id"] async for node in client.paginate(document, {}, ("orders",))]
    assert ids == [f"gid://shopify/Order/{100 + n}" for n in range(7)]
    assert len(shopify_fake.requests) == 3


def test_error_messages_withhold_variable_values() -> None:
    from plugin.shopify.client import GraphQLErrors

    error = GraphQLErrors(
        "Op", [{"message": "Variable $input of type X! was provided invalid value for email: a@example.com"}]
    )
    assert "a@example.com" not in str(error) and "invalid value (value withheld)" in str(error)
