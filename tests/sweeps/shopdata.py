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

# The shop's promises as its policy: the Swedish preset, orders kept 10 years, carrier data 36
# months, inactive customers 24 months. The expectations below restate these rules (and the preset's
# rules for contact data, newsletters and operational order data) as date arithmetic.
POLICY_TOML = """
preset = "SE"

[overrides.SE-1]
period = "10y"

[overrides.SE-3-SHIPMENT]
period = "36m"

[overrides.SE-4-ACCOUNT]
period = "24m"
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
        # Every 11th order was never marked delivered: its dates are unknown, so nothing that counts
        # from delivery may be erased. Carrier tracking exists only for the last four years.
        delivered = created + timedelta(days=rng.randrange(1, 6)) if index % 11 else None
        tracking: tuple[TrackingInfo, ...] = ()
        if NOW - created < timedelta(days=4 * 365):
            company, _adapter = CARRIERS[index % len(CARRIERS)]
            tracking = (TrackingInfo(company=company, number=f"TN{index:07d}SE"),)
        fulfillments = (
            FulfillmentRecord(
                id=7_000_000 + index,
                status="SUCCESS",
                created_at=created + timedelta(hours=20),
                delivered_at=delivered if delivered and delivered < NOW else None,
                tracking=tracking,
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


def operational_until(created: date) -> date:
    """ACC-OPS: the order's operational fields (IP, browser, ...) go 180 days after the order."""
    return created + timedelta(days=180)


def contact_until(delivered: date) -> date:
    """SE-3-CONTACT: contact data for complaints, 3 years and 2 months from delivery."""
    return add_period(delivered, years=3, months=2)


def shipment_until(delivered: date) -> date:
    """Carrier data: 36 months from delivery (the shop's promise, SE-3-SHIPMENT overridden)."""
    return add_period(delivered, months=36)


def customer_until(last_activity: date) -> date:
    """Inactive customers: 24 months after the last activity (SE-4-ACCOUNT overridden)."""
    return add_period(last_activity, months=24)


def suppression_until(unsubscribed: date) -> date:
    """MK-1-SUPPRESSION: the suppression entry stays 3 years after the opt-out (the profile's other
    fields go at once, MK-1-PROFILE)."""
    return add_period(unsubscribed, years=3)


@dataclass(frozen=True)
class Expected:
    actions: frozenset[tuple[str, str, str]]  # (system, action, ref) queued
    undecided: dict[str, int]  # per category

    def of(self, action: str) -> set[tuple[str, str, str]]:
        return {a for a in self.actions if a[1] == action}


def expected_actions(shop: ShopData, connected: tuple[str, ...] = CONNECTED) -> Expected:
    acts: set[tuple[str, str, str]] = set()
    undecided: dict[str, int] = {}

    def unknown(category: str) -> None:
        undecided[category] = undecided.get(category, 0) + 1

    for order in shop.orders:
        created = local(order.created_at)
        if accounting_until(created) < TODAY:
            acts.add(("shopify", "erase", f"order:{order.id}"))
        elif operational_until(created) < TODAY:
            acts.add(("shopify", "reduce", f"order:{order.id}"))
        delivered_at = max((f.delivered_at for f in order.fulfillments if f.delivered_at), default=None)
        if delivered_at is None:
            unknown("order_contact")
        elif contact_until(local(delivered_at)) < TODAY:
            acts.add(("shopify", "erase", f"order:{order.id}:contact"))
        for fulfillment in order.fulfillments:
            for info in fulfillment.tracking:
                adapter = dict(CARRIERS)[info.company or ""]
                ref = f"shipment:{order.id}:{info.number}"
                if delivered_at is None:
                    unknown("shipment")
                elif shipment_until(local(delivered_at)) < TODAY:
                    if adapter is None or adapter not in connected:
                        unknown("shipment")
                    else:
                        acts.add((adapter, "erase", ref))
    for customer in shop.customers:
        last = customer.last_order_at or customer.updated_at or customer.created_at
        assert last is not None
        if customer_until(local(last)) < TODAY and (
            customer.last_order_at is None or accounting_until(local(customer.last_order_at)) < TODAY
        ):
            acts.add(("shopify", "erase", f"customer:{customer.id}"))
        if customer.email_marketing_state == "UNSUBSCRIBED":
            unsubscribed = local(customer.marketing_updated_at or customer.updated_at or NOW)
            ref = f"customer:{customer.id}:marketing"
            if suppression_until(unsubscribed) < TODAY:
                acts.add(("shopify", "erase", ref))
            elif unsubscribed < TODAY:
                acts.add(("shopify", "reduce", ref))
    return Expected(frozenset(acts), undecided)
