"""A test shop with twelve years of orders, four years of carrier shipments and inactive customers,
generated deterministically, plus the expectations computed straight from the shop's promises
(the rule definitions), independently of the sweep and of the planner's code."""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from adapters.shopify_holdings import customer_holdings, order_holdings
from plugin.holdings import Category, Holding
from plugin.retention import Policy, Rule
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
#
# The policy's rules (category, period, anchor, action at expiry, flag) are evaluated here with the
# test's own date arithmetic and the planner's documented sweep semantics, not with the planner's
# code: a rule keeps a holding through `anchor + period`; the longest running rule keeps it;
# run-out reduce rules strip fields while it is kept; once nothing runs and an erase rule has run
# out it is erased; a missing date never erases.


def plus(start: date, years: int = 0, months: int = 0, days: int = 0) -> date:
    """Calendar arithmetic, clamping 31 Jan + 1 month to 28/29 Feb."""
    month0 = start.month - 1 + months + 12 * years
    year, month0 = start.year + month0 // 12, month0 % 12
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(start.day, last)) + timedelta(days=days)


def anchor_date(rule: Rule, holding: Holding, fiscal_year_end: tuple[int, int]) -> date | None:
    anchor = rule.anchor.value
    if anchor in ("order_created", "delivered", "last_activity", "unsubscribed"):
        return getattr(holding, anchor)  # type: ignore[no-any-return]
    created = holding.order_created
    if created is None:
        return None
    month, day = fiscal_year_end
    fye = date(created.year, month, min(day, calendar.monthrange(created.year, month)[1]))
    if fye < created:
        fye = date(created.year + 1, month, min(day, calendar.monthrange(created.year + 1, month)[1]))
    if anchor == "fiscal_year_end":
        return fye
    if anchor == "fiscal_year_calendar_end":
        return date(fye.year, 12, 31)
    if anchor == "calendar_year_end":
        return date(created.year, 12, 31)
    raise AssertionError(f"anchor {anchor} not covered by the test")


def verdict(holding: Holding, policy: Policy, today: date = TODAY) -> tuple[str, date | None]:
    """(erase | reduce | keep | undecided, keep-until) in sweep mode."""
    running: list[date] = []
    erase_ran_out = reduce_ran_out = False
    unknown_erase = unknown_any = False
    for rule in policy.rules:
        if rule.category != holding.category or rule.flag is not None:
            continue
        start = anchor_date(rule, holding, policy.fiscal_year_end)
        erases = rule.at_expiry.value == "erase"
        if start is None:
            if rule.anchor.value == "unsubscribed":  # still subscribed: kept, not unknown
                running.append(date.max)
                continue
            unknown_any = True
            unknown_erase = unknown_erase or erases
            continue
        period = rule.period_on(today)
        until = plus(start, period.years, period.months, period.days)
        if until >= today:
            running.append(until)
        elif erases:
            erase_ran_out = True
        else:
            reduce_ran_out = True
    if unknown_any and (unknown_erase or not running):
        return "undecided", None
    if running:
        kept = max(running)
        return ("reduce" if reduce_ran_out else "keep"), (None if kept == date.max else kept)
    if erase_ran_out:
        return "erase", None
    if reduce_ran_out:
        return "reduce", None
    return "undecided", None  # no rule for the category


@dataclass(frozen=True)
class Expected:
    actions: frozenset[tuple[str, str, str]]  # (system, action, ref) queued
    undecided: dict[str, int]  # per category

    def of(self, action: str) -> set[tuple[str, str, str]]:
        return {a for a in self.actions if a[1] == action}


def expected_actions(shop: ShopData, connected: tuple[str, ...] = CONNECTED) -> Expected:
    policy = Policy.from_toml(POLICY_TOML)
    acts: set[tuple[str, str, str]] = set()
    undecided: dict[str, int] = {}
    holdings = [h for order in shop.orders for h in order_holdings(order, TZ)]
    for customer in shop.customers:
        for holding in customer_holdings(customer, TZ):
            if holding.category == Category.CUSTOMER_ACCOUNT and customer.number_of_orders:
                # Erased at Shopify only when the newest order is past bookkeeping as well.
                last = Holding(
                    "shopify",
                    Category.ACCOUNTING_RECORD,
                    "x",
                    "x",
                    order_created=local_or_none(customer.last_order_at),
                )
                action, _ = verdict(holding, policy)
                gate, until = verdict(last, policy)
                if action in ("erase", "reduce") and gate != "erase":
                    if until is None:
                        undecided["customer_account"] = undecided.get("customer_account", 0) + 1
                    continue
            holdings.append(holding)
    for holding in holdings:
        action, _until = verdict(holding, policy)
        reachable = holding.system in ("shopify", "gallra") or holding.system in connected
        if holding.system == "shopify" and holding.ref.startswith("order:"):
            reachable = False  # Shopify erases orders only with their customer
        if action in ("erase", "reduce") and reachable:
            acts.add((holding.system, action, holding.ref))
        elif action == "undecided" or action in ("erase", "reduce"):
            undecided[holding.category.value] = undecided.get(holding.category.value, 0) + 1
    return Expected(frozenset(acts), undecided)


def local_or_none(moment: datetime | None) -> date | None:
    return local(moment) if moment else None
