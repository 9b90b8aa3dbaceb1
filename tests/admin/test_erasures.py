"""The admin's Shopify erasures (page and JSON API): each shop sees only its own, cancels one within
Shopify's window with a reason, and is refused (nothing changed) after it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from plugin.models import Evidence, ShopifyErasure, utcnow
from plugin.runtime import Runtime
from plugin.shopify import erasures
from tests.admin.conftest import SHOP_A, SHOP_B
from tests.admin.helpers import bearer, get_page, post_form
from tests.admin.seed import Seeded

CUSTOMER = 8080


async def _track(runtime: Runtime, shop: str, *, days_ago: int = 0) -> int:
    async with runtime.db.transaction() as session:
        await erasures.track(
            session,
            shop_domain=shop,
            customer_id=CUSTOMER,
            request_id=None,
            step_id=None,
            requested_at=utcnow() - timedelta(days=days_ago),
            last_order_at=None,
        )
        return int(
            (
                await session.execute(select(ShopifyErasure.id).where(ShopifyErasure.shop_domain == shop))
            ).scalar_one()
        )


def _stock(shopify_fake: Any) -> None:
    shopify_fake.add_shop(SHOP_A, token="shpat_test")
    shopify_fake.add_customer(SHOP_A, CUSTOMER, email="kim@example.se")


async def test_api_lists_the_shops_own_and_cancels_with_a_reason(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded], shopify_fake: Any
) -> None:
    _stock(shopify_fake)
    mine = await _track(runtime, SHOP_A)
    theirs = await _track(runtime, SHOP_B)
    # Shopify has the erasure Gallra asked for.
    await shopify_fake_request(runtime, shopify_fake)

    listed = await client.get("/admin/api/shopify-erasures", headers=bearer(runtime, SHOP_A))
    assert listed.status_code == 200
    (row,) = listed.json()["erasures"]
    assert (row["id"], row["customer_id"], row["state"], row["cancellable"]) == (
        mine,
        CUSTOMER,
        "requested",
        True,
    )

    path = f"/admin/api/shopify-erasures/{mine}/cancel"
    assert (await client.post(path, headers=bearer(runtime, SHOP_A), json={"reason": " "})).status_code == 409
    foreign = f"/admin/api/shopify-erasures/{theirs}/cancel"
    assert (
        await client.post(foreign, headers=bearer(runtime, SHOP_A), json={"reason": "x"})
    ).status_code == 404
    done = await client.post(path, headers=bearer(runtime, SHOP_A), json={"reason": "Fel kund, sa Maja"})
    assert done.status_code == 200 and done.json() == {"status": "cancelled", "erasure_id": mine}
    async with runtime.db.session() as session:
        row_a = await session.get(ShopifyErasure, mine)
        row_b = await session.get(ShopifyErasure, theirs)
        entry = (
            await session.execute(
                select(Evidence).where(
                    Evidence.shop_domain == SHOP_A, Evidence.kind == "shopify_erasure_cancelled"
                )
            )
        ).scalar_one()
    assert row_a is not None and row_b is not None
    assert (row_a.state, row_a.cancelled_by) == ("cancelled", "shopify-user:42")
    assert row_b.state == "requested"
    assert entry.identifiers is not None and entry.identifiers["cancelled_by"] == "shopify-user:42"
    assert "Maja" not in json.dumps(entry.payload)
    again = await client.post(path, headers=bearer(runtime, SHOP_A), json={"reason": "again"})
    assert again.status_code == 409 and "cancelled" in again.json()["reason"]


async def shopify_fake_request(runtime: Runtime, shopify_fake: Any) -> None:
    """Ask the fake for the erasure as the Shopify adapter does."""
    from plugin.shopify.operations import request_customer_erasure
    from plugin.shopify.tokens import admin_client

    await request_customer_erasure(await admin_client(runtime, SHOP_A), CUSTOMER)


async def test_page_shows_the_erasures_and_cancels_in_the_window_only(
    client: httpx.AsyncClient, runtime: Runtime, shops: tuple[Seeded, Seeded], shopify_fake: Any
) -> None:
    _stock(shopify_fake)
    await shopify_fake_request(runtime, shopify_fake)
    late = await _track(runtime, SHOP_A, days_ago=11)  # Shopify's 10 days have passed

    page = await get_page(client, runtime, SHOP_A, "/admin/erasures")
    assert page.status_code == 200
    assert str(CUSTOMER) in page.text and "window has ended" in page.text
    assert f"/admin/erasures/{late}/cancel" not in page.text
    refused = await post_form(
        client, runtime, SHOP_A, f"/admin/erasures/{late}/cancel", {"reason": "late"}, csrf_from=SHOP_A
    )
    assert refused.status_code == 409 and "window to cancel ended" in refused.text
    assert [m.name for m in shopify_fake.mutations].count("customerCancelDataErasure") == 0

    async with runtime.db.transaction() as session:  # a fresh one, inside the window
        row = await session.get(ShopifyErasure, late)
        assert row is not None
        row.requested_at, row.expected_at = utcnow(), utcnow() + timedelta(days=10)
    page = await get_page(client, runtime, SHOP_A, "/admin/erasures")
    assert f"/admin/erasures/{late}/cancel" in page.text
    done = await post_form(
        client, runtime, SHOP_A, f"/admin/erasures/{late}/cancel", {"reason": "mistake"}, csrf_from=SHOP_A
    )
    assert done.status_code == 303 and "done=erasure_cancelled" in done.headers["location"]
    other = await get_page(client, runtime, SHOP_B, "/admin/erasures")
    assert other.status_code == 200 and str(CUSTOMER) not in other.text
