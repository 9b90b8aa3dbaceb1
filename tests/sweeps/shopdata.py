"""A test shop with twelve years of orders, four years of carrier shipments and inactive customers,
generated deterministically, plus the expectations computed straight from the shop's promises
(the rule definitions), independently of the sweep and of the planner's code."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from plugin.retention.dates import add_period
from plugin.shopify.records import CustomerRecord, FulfillmentRecord, OrderRecord, TrackingInfo

SHOP = "twelve-years.myshopify.com"
TZ = "Europe/Stockholm"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 10:00 in Stockholm
TODAY = date(2026, 11, 22)
# (Shopify's free-text carrier name, the adapter it maps to or None when unknown, connected?)
CARRIERS = (("PostNord", "postnord"), ("Bring", "bring"), ("Acme Freight AB", None))
CONNECTED = ("postnord",)

# The shop's promises (its policy), written out as the rule definitions the expectations use:
POLICY_TOML = """
preset = "SE"

[overrides.SE-1]
period = "10y"
"""


def local(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(TZ)).date()


@dataclass
class ShopData:
    orders: list[OrderRecord] = field(default_factory=list)
    customers: list[CustomerRecord] = field(default_factory=list)


def build_shop(n_orders: int = 600, n_customers: int = 120, seed: int = 7) -> ShopData:
    rng = random.Random(seed)
    start = NOW - timedelta(days=12 * 365)
    customers_last: dict[int, datetime] = {}
    shop = ShopData()
    for index in range(n_orders):
        created = start + timedelta(seconds=rng.randrange(int((NOW - start).total_seconds()) - 86400))
        order_id = 5_000_000 + index
        customer_id = 9_000 + rng.randrange(n_customers) if rng.random() < 0.8 else None
        fulfillments: tuple[FulfillmentRecord, ...] = ()
        if NOW - created < timedelta(days=4 * 365):  # carriers only in the last four years
            company, _adapter = CARRIERS[index % len(CARRIERS)]
            delivered = created + timedelta(days=rng.randrange(1, 6)) if index % 11 else None
            fulfillments = (
                FulfillmentRecord(
                    id=7_000_000 + index,
                    status="SUCCESS",
                    created_at=created + timedelta(hours=20),
                    delivered_at=delivered if delivered and delivered < NOW else None,
                    tracking=(TrackingInfo(company=company, number=f"TN{index:07d}SE"),),
                ),
            )
        order = OrderRecord(
            id=order_id,
            name=f"#{1001 + index}",
            created_at=created,
            customer_id=customer_id,
            shipping_country="SE",
            fulfillments=fulfillments,
        )
        shop.orders.append(order)
        if customer_id is not None and created > customers_last.get(
            customer_id, datetime.min.replace(tzinfo=UTC)
        ):
            customers_last[customer_id] = created
    for index in range(n_customers):
        customer_id = 9_000 + index
        last = customers_last.get(customer_id)
        created = start + timedelta(days=rng.randrange(30))
        updated = last or created + timedelta(days=rng.randrange(3000))
        marketing = ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED")[index % 3]
        shop.customers.append(
            CustomerRecord(
                id=customer_id,
                email=f"c{index}@example.com",
                email_marketing_state=marketing,
                marketing_updated_at=updated if marketing == "UNSUBSCRIBED" else None,
                number_of_orders=sum(1 for o in shop.orders if o.customer_id == customer_id),
                created_at=created,
                updated_at=updated,
                last_order_at=last,
            )
        )
    shop.orders.sort(key=lambda o: o.id)
    return shop


# ---- expectations, from the rule definitions ---------------------------------------------------


def accounting_until(created: date) -> date:
    """SE-1 overridden to 10 years, counted like Bokföringslagen 7 kap. 2 §: to 31 December of the
    10th year after the calendar year in which the fiscal year (ending 31 December) ended."""
    return date(created.year + 10, 12, 31)


def shipment_until(delivered: date) -> date:
    """Carrier data: 36 months from delivery (the shop's promise)."""
    return add_period(delivered, months=36)


def customer_until(last_activity: date) -> date:
    """Inactive customers: 24 months after the last activity."""
    return add_period(last_activity, months=24)


@dataclass(frozen=True)
class Expected:
    erase: frozenset[tuple[str, str]]  # (system, ref) acted on
    undecided: int


def expected_actions(shop: ShopData, connected: tuple[str, ...] = CONNECTED) -> Expected:
    erase: set[tuple[str, str]] = set()
    undecided = 0
    for order in shop.orders:
        created = local(order.created_at)
        if accounting_until(created) < TODAY:
            erase.add(("shopify", f"order:{order.id}"))
        for fulfillment in order.fulfillments:
            for info in fulfillment.tracking:
                adapter = dict(CARRIERS)[info.company or ""]
                ref = f"shipment:{order.id}:{info.number}"
                if fulfillment.delivered_at is None:
                    undecided += 1  # no delivery date: never erased, shown to the owner
                    continue
                if shipment_until(local(fulfillment.delivered_at)) < TODAY:
                    if adapter is None or adapter not in connected:
                        undecided += 1
                    else:
                        erase.add((adapter, ref))
    for customer in shop.customers:
        last = customer.last_order_at or customer.updated_at or customer.created_at
        assert last is not None
        if customer_until(local(last)) >= TODAY:
            continue
        if customer.last_order_at is not None and accounting_until(local(customer.last_order_at)) >= TODAY:
            continue  # an order still kept for bookkeeping keeps the customer
        erase.add(("shopify", f"customer:{customer.id}"))
    return Expected(frozenset(erase), undecided)
