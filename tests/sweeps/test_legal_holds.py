"""The retention sweep against the Shopify fake keeps what a legal hold or an open dispute/return
holds: two customers alike in everything, one of them held, and orders alike but for a dispute or
a return. Released, the next day's sweep erases what was held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from plugin import connections, legal_holds
from plugin.models import Shop, Step, Sweep
from plugin.runtime import Runtime
from plugin.shopify import tokens
from plugin.sweeps.run import run_sweep
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import CONNECTED, NOW, POLICY_TOML, SHOP, TZ

TOKEN = "shpat_holds"
OLD = datetime(2013, 3, 4, 10, tzinfo=UTC)


async def small_shop(runtime: Runtime, fake: ShopifyFake) -> None:
    """Customers 501-504, inactive since 2013, one order each with a PostNord parcel: 502's order
    has an open chargeback, 503's an open return."""
    fake.add_shop(SHOP, country="SE", timezone=TZ, token=TOKEN)
    fake.bulk_polls_until_done = 0
    for n, customer_id in enumerate((501, 502, 503, 504)):
        fake.add_customer(
            SHOP, customer_id, email=f"c{customer_id}@example.se", created_at=OLD, updated_at=OLD
        )
        fake.add_order(
            SHOP,
            9000 + n,
            name=f"#{9000 + n}",
            created_at=OLD,
            customer_id=customer_id,
            fulfillments=[
                {
                    "id": 100 + n,
                    "created_at": OLD,
                    "delivered_at": OLD + timedelta(days=2),
                    "tracking": [{"company": "PostNord", "number": f"RR{n}SE", "url": None}],
                }
            ],
            disputes=["UNDER_REVIEW"] if customer_id == 502 else ["WON"],
            return_status="RETURN_REQUESTED" if customer_id == 503 else "RETURNED",
        )
    await tokens.register_shop(runtime, SHOP, TOKEN, country="SE", timezone=TZ)
    async with runtime.db.transaction() as session:
        stored = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        stored.policy_toml = POLICY_TOML
        for adapter in CONNECTED:
            await connections.configure(runtime, session, SHOP, adapter, {})
        # A shop's first sweep is a preview; this one has had it.
        session.add(Sweep(shop_domain=SHOP, day="2026-11-01", dry_run=True, status="done"))


async def queued(runtime: Runtime) -> set[str]:
    async with runtime.db.session() as session:
        rows = await session.execute(select(Step.holding_ref).where(Step.shop_domain == SHOP))
        return {ref for (ref,) in rows if ref}


async def test_a_held_customer_and_open_claims_are_kept_by_the_sweep_until_released(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    await small_shop(runtime, shopify_fake)
    async with runtime.db.transaction() as session:
        hold = await legal_holds.place(
            session,
            runtime.vault,
            SHOP,
            customer_id=501,
            email=None,
            reason="police inquiry",
            placed_by="owner",
        )

    report = await run_sweep(runtime, SHOP, now=NOW)

    assert report["status"] == "done"
    refs = await queued(runtime)
    # The customer nobody holds goes, with the parcel at the carrier.
    assert {"customer:504", "shipment:9003:RR3SE"} <= refs
    # The held customer's account and parcel stay; so do the disputed and returned orders' parcels.
    for kept in ("customer:501", "shipment:9000:RR0SE", "shipment:9001:RR1SE", "shipment:9002:RR2SE"):
        assert kept not in refs, kept

    async with runtime.db.transaction() as session:
        await legal_holds.release(session, runtime.vault, SHOP, hold.id, released_by="owner", reason="closed")
    shop = shopify_fake.shops[SHOP]
    shop.orders[9001]["disputes"] = ["WON"]
    shop.orders[9002]["return_status"] = "RETURNED"

    report = await run_sweep(runtime, SHOP, now=NOW + timedelta(days=1))

    assert report["status"] == "done"
    refs = await queued(runtime)
    assert {"customer:501", "shipment:9000:RR0SE", "shipment:9001:RR1SE", "shipment:9002:RR2SE"} <= refs
