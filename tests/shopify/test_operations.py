from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from plugin.shopify.client import AdminClient, UserErrors
from plugin.shopify.operations import (
    fetch_customer,
    fetch_orders,
    fetch_shop,
    request_customer_erasure,
    set_marketing_unsubscribed,
)
from plugin.shopify.records import TrackingInfo
from tests.fakes.shopify import ShopifyFake
from tests.shopify.helpers import SHOP, VirtualClock, client_for


def _t(year: int, month: int = 1, day: int = 1) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


@pytest.fixture
async def client(shopify_fake: ShopifyFake) -> AsyncIterator[AdminClient]:
    shopify_fake.add_shop(SHOP, name="Snow Devil", country="SE", timezone="Europe/Stockholm", currency="SEK")
    shopify_fake.add_customer(
        SHOP,
        191167,
        email="john@example.com",
        phone="+46701234567",
        first_name="John",
        email_marketing="SUBSCRIBED",
        sms_marketing="SUBSCRIBED",
    )
    for n in range(30):  # more than one page of 25
        shopify_fake.add_order(SHOP, 1000 + n, customer_id=191167, created_at=_t(2015 + n % 10, 1 + n % 12))
    shopify_fake.add_order(
        SHOP,
        299938,
        customer_id=191167,
        created_at=_t(2026, 3),
        closed_at=_t(2026, 3, 5),
        shipping_country="FI",
        fulfillments=[
            {
                "id": 77,
                "created_at": _t(2026, 3, 2),
                "delivered_at": _t(2026, 3, 4),
                "tracking": [
                    {"company": "PostNord", "number": "RR123SE", "url": "https://t.example/RR123SE"}
                ],
            }
        ],
    )
    async with httpx.AsyncClient() as http:
        yield client_for(shopify_fake, http, VirtualClock())


async def test_fetch_customer_with_all_orders_and_tracking(client: AdminClient) -> None:
    customer = await fetch_customer(client, 191167)
    assert customer is not None
    assert (customer.email, customer.phone, customer.first_name) == (
        "john@example.com",
        "+46701234567",
        "John",
    )
    assert customer.email_marketing_state == "SUBSCRIBED" and customer.sms_marketing_state == "SUBSCRIBED"
    assert customer.number_of_orders == 31 and not customer.can_delete
    assert len(customer.orders) == 31 and customer.last_order_at == _t(2026, 3)
    order = next(o for o in customer.orders if o.id == 299938)
    assert (
        order.shipping_country == "FI" and order.closed_at == _t(2026, 3, 5) and order.customer_id == 191167
    )
    (fulfillment,) = order.fulfillments
    assert fulfillment.delivered_at == _t(2026, 3, 4)
    assert fulfillment.tracking == (TrackingInfo("PostNord", "RR123SE", "https://t.example/RR123SE"),)
    assert "john@example.com" not in repr(customer)


async def test_fetch_missing_customer(client: AdminClient) -> None:
    assert await fetch_customer(client, 404) is None


async def test_fetch_orders_by_ids_skips_unknown(client: AdminClient) -> None:
    orders = await fetch_orders(client, [299938, 404, *range(1000, 1060)])
    assert [o.id for o in orders] == [299938, *range(1000, 1030)]


async def test_fetch_shop(client: AdminClient) -> None:
    shop = await fetch_shop(client)
    assert (shop.name, shop.country, shop.timezone, shop.currency, shop.plan) == (
        "Snow Devil",
        "SE",
        "Europe/Stockholm",
        "SEK",
        "Basic",
    )


async def test_unsubscribe_both_channels(client: AdminClient, shopify_fake: ShopifyFake) -> None:
    await set_marketing_unsubscribed(client, 191167, email=True, sms=True, now=_t(2026, 9))
    customer = shopify_fake.customer(SHOP, 191167)
    assert customer["email_marketing"] == customer["sms_marketing"] == "UNSUBSCRIBED"
    assert [m.name for m in shopify_fake.mutations] == [
        "customerEmailMarketingConsentUpdate",
        "customerSmsMarketingConsentUpdate",
    ]
    assert shopify_fake.mutations[0].variables["input"]["emailMarketingConsent"] == {
        "marketingState": "UNSUBSCRIBED",
        "consentUpdatedAt": "2026-09-01T12:00:00Z",
    }


async def test_unsubscribe_without_phone_is_a_user_error(
    client: AdminClient, shopify_fake: ShopifyFake
) -> None:
    shopify_fake.add_customer(SHOP, 5, email="only@example.com")
    with pytest.raises(UserErrors) as info:
        await set_marketing_unsubscribed(client, 5, email=False, sms=True)
    assert info.value.codes == {"INVALID"} and "only@example.com" not in str(info.value)


async def test_request_erasure(client: AdminClient, shopify_fake: ShopifyFake) -> None:
    assert await request_customer_erasure(client, 191167) == "gid://shopify/Customer/191167"
    assert await request_customer_erasure(client, 404) is None  # gone already counts as done
    assert shopify_fake.shops[SHOP].erasure_requested == {191167}
    assert [m.variables for m in shopify_fake.mutations] == [
        {"customerId": "gid://shopify/Customer/191167"},
        {"customerId": "gid://shopify/Customer/404"},
    ]


async def test_orders_say_whether_a_dispute_or_a_return_is_open(
    client: AdminClient, shopify_fake: ShopifyFake
) -> None:
    orders = shopify_fake.shops[SHOP].orders
    states = {
        1000: (["NEEDS_RESPONSE"], "NO_RETURN"),
        1001: (["WON", "UNDER_REVIEW"], "NO_RETURN"),
        1002: (["LOST", "ACCEPTED", "WON"], "RETURNED"),
        1003: ([], "RETURN_REQUESTED"),
        1004: ([], "IN_PROGRESS"),
        1005: ([], "INSPECTION_COMPLETE"),
        1006: ([], "RETURN_FAILED"),
    }
    for order_id, (disputes, returns) in states.items():
        orders[order_id]["disputes"], orders[order_id]["return_status"] = disputes, returns

    found = {o.id: (o.open_dispute, o.open_return) for o in await fetch_orders(client, list(states))}

    assert found == {
        1000: (True, False),
        1001: (True, False),
        1002: (False, False),
        1003: (False, True),
        1004: (False, True),
        1005: (False, True),
        1006: (False, False),
    }
