"""The whole sweep against the Shopify fake: the shop's token, two bulk operations (orders with
fulfillments and tracking, customers), the real retention planner with the shop's stored policy,
and the real pipeline turning decisions into steps of a ledger request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin import connections
from plugin.models import Request, Shop, Step, Sweep
from plugin.runtime import Runtime
from plugin.shopify import bulk, tokens
from plugin.sweeps.run import run_sweep
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import (
    CONNECTED,
    NOW,
    POLICY_TOML,
    SHOP,
    TZ,
    ShopData,
    build_shop,
    expected_actions,
)

TOKEN = "shpat_twelve_years"


async def twelve_year_shop(runtime: Runtime, fake: ShopifyFake, *, swept_before: bool = True) -> None:
    """The test shop in the fake (orders over 12 years, carriers over 4, inactive customers) and
    in Gallra (token, policy, a PostNord connection)."""
    shop = build_shop()
    fake.add_shop(SHOP, country="SE", timezone=TZ, token=TOKEN)
    fake.bulk_polls_until_done = 0
    marketing = {c.id: c.email_marketing_state or "NOT_SUBSCRIBED" for c in shop.customers}
    for customer in shop.customers:
        fake.add_customer(
            SHOP,
            customer.id,
            email=customer.email,
            email_marketing=marketing[customer.id],
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )
    for order in shop.orders:
        fake.add_order(
            SHOP,
            order.id,
            name=order.name,
            created_at=order.created_at,
            customer_id=order.customer_id,
            shipping_country=order.shipping_country,
            fulfillments=[
                {
                    "id": f.id,
                    "created_at": f.created_at,
                    "delivered_at": f.delivered_at,
                    "tracking": [
                        {"company": t.company, "number": t.number, "url": t.url} for t in f.tracking
                    ],
                }
                for f in order.fulfillments
            ],
        )
    await tokens.register_shop(runtime, SHOP, TOKEN, country="SE", timezone=TZ)
    async with runtime.db.transaction() as session:
        stored = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        stored.policy_toml = POLICY_TOML
        for adapter in CONNECTED:
            await connections.configure(runtime, session, SHOP, adapter, {})
        if swept_before:
            session.add(Sweep(shop_domain=SHOP, day="2026-11-01", dry_run=True, status="done"))


async def what_shopify_has(runtime: Runtime) -> ShopData:
    """The shop as Shopify's bulk results describe it: the input the expectations are computed
    from (with the rule definitions), independently of what the sweep did."""
    client = await tokens.admin_client(runtime, SHOP)
    orders = [o async for o in bulk.stream_orders(client)]
    customers = [c async for c in bulk.stream_customers(client)]
    return ShopData(orders=sorted(orders, key=lambda o: o.id), customers=customers)


async def test_live_sweep_through_shopify_bulk_queues_exactly_the_expired(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    await twelve_year_shop(runtime, shopify_fake)
    seen = await what_shopify_has(runtime)
    expected = expected_actions(seen)

    report = await run_sweep(runtime, SHOP, now=NOW)

    assert report["status"] == "done" and report["dry_run"] is False
    assert report["tally"]["orders"] == 600 and report["tally"]["customers"] == 120
    async with runtime.db.session() as session:
        steps = (await session.execute(select(Step).where(Step.shop_domain == SHOP))).scalars().all()
        request = (await session.execute(select(Request).where(Request.kind == "sweep"))).scalar_one()
    assert {(s.system, s.action, s.holding_ref) for s in steps} == expected.actions
    assert len(steps) == len(expected.actions)  # one step per expired holding, none twice
    assert all(s.state == "pending" and s.request_id == request.id for s in steps)
    assert request.status == "in_progress" and request.email_enc is None
    # Every step says why: the rule and the law, never the customer's address.
    assert all(s.decision.get("rule_id") and "@" not in str(s.decision) for s in steps)
    # The sweep itself changed nothing at Shopify: it only read, through bulk operations.
    assert {m.name for m in shopify_fake.mutations} == {"bulkOperationRunQuery"}

    # A second run the same day does nothing: no bulk operation, no step.
    bulk_runs = len(shopify_fake.mutations)
    again = await run_sweep(runtime, SHOP, now=NOW + timedelta(hours=5))
    assert again["already"] is True and len(shopify_fake.mutations) == bulk_runs
    async with runtime.db.session() as session:
        assert len((await session.execute(select(Step.id))).all()) == len(steps)


async def test_dry_run_through_shopify_bulk_sends_nothing(
    runtime: Runtime, shopify_fake: ShopifyFake
) -> None:
    await twelve_year_shop(runtime, shopify_fake, swept_before=False)
    expected = expected_actions(await what_shopify_has(runtime))

    report = await run_sweep(runtime, SHOP, now=NOW)  # a new shop: its first sweep is a dry run

    assert report["dry_run"] is True and "first sweep" in (report["note"] or "")
    cats = report["tally"]["categories"]
    assert sum(c["erase"] for c in cats.values()) == len(expected.of("erase"))
    assert sum(c["reduce"] for c in cats.values()) == len(expected.of("reduce"))
    async with runtime.db.session() as session:
        assert (await session.execute(select(Step.id))).first() is None
        assert (await session.execute(select(Request.id))).first() is None
    assert {m.name for m in shopify_fake.mutations} == {"bulkOperationRunQuery"}
