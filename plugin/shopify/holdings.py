"""Shopify records → holdings, in the shop's time zone. Pure and cheap: the redact pipeline calls
it for one customer's orders, the retention sweep for a million."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from adapters.carriers import carrier_adapter
from plugin.holdings import Category, Holding
from plugin.retention.dates import local_date
from plugin.shopify.records import CustomerRecord, OrderRecord

UNKNOWN_CARRIER = "unknown_carrier"


def shop_date(moment: datetime | None, timezone: str | None) -> date | None:
    return None if moment is None else local_date(moment, timezone)


_CANCELLED = frozenset({"cancelled"})
_UNKNOWN = frozenset({"carrier_unknown"})
# Set while the order has an open chargeback/inquiry or return; the policy's DISPUTE-* and RETURN-*
# rules keep the order, its contact details and its shipments until Shopify says it is settled.
OPEN_DISPUTE_FLAG, OPEN_RETURN_FLAG = "open_dispute", "open_return"
OPEN_CLAIM_FLAGS = frozenset({OPEN_DISPUTE_FLAG, OPEN_RETURN_FLAG})


def order_flags(order: OrderRecord) -> frozenset[str]:
    flags = _CANCELLED if order.cancelled_at else frozenset()
    if order.open_dispute:
        flags |= {OPEN_DISPUTE_FLAG}
    if order.open_return:
        flags |= {OPEN_RETURN_FLAG}
    return flags


def order_holdings(
    order: OrderRecord,
    timezone: str | None,
    carrier_of: Callable[[str | None], str | None] = carrier_adapter,
) -> list[Holding]:
    """The order as a voucher, its contact fields, and one shipment holding per tracking number
    (at the carrier's adapter, or `unknown_carrier` so the shop owner sees it). A shipment counts
    from its own fulfillment's delivery, else the order's. The retention sweep calls this for
    every order it plans, so each date is converted once."""
    created = shop_date(order.created_at, timezone)
    latest = max((f.delivered_at for f in order.fulfillments if f.delivered_at), default=None)
    delivered = shop_date(latest, timezone)
    flags = order_flags(order)
    country = order.shipping_country
    label = f"Order {order.name}"
    held = [
        Holding(
            system="shopify",
            category=Category.ACCOUNTING_RECORD,
            ref=f"order:{order.id}",
            label=label,
            order_created=created,
            delivered=delivered,
            flags=flags,
            country=country,
        ),
        Holding(
            system="shopify",
            category=Category.ORDER_CONTACT,
            ref=f"order:{order.id}:contact",
            label=f"Contact details on order {order.name}",
            order_created=created,
            delivered=delivered,
            flags=flags,
            country=country,
        ),
    ]
    for fulfillment in order.fulfillments:
        if not fulfillment.tracking:
            continue
        moment = fulfillment.delivered_at
        # Most orders have one fulfillment, whose delivery is the order's: already converted.
        day = delivered if moment is latest else shop_date(moment, timezone)
        for info in fulfillment.tracking:
            system = carrier_of(info.company) or UNKNOWN_CARRIER
            number = info.number
            held.append(
                Holding(
                    system=system,
                    category=Category.SHIPMENT,
                    ref=f"shipment:{order.id}:{number or 'untracked'}",
                    label=f"Shipment {number or '(no tracking number)'} of order {order.name}",
                    order_created=created,
                    delivered=day or delivered,
                    flags=flags | _UNKNOWN if system == UNKNOWN_CARRIER else flags,
                    country=country,
                )
            )
    return held


def customer_holdings(customer: CustomerRecord, timezone: str | None) -> list[Holding]:
    """The customer account, and the marketing consent Shopify holds for it."""
    last = customer.last_order_at or customer.updated_at or customer.created_at
    held = [
        Holding(
            system="shopify",
            category=Category.CUSTOMER_ACCOUNT,
            ref=f"customer:{customer.id}",
            label=f"Customer account {customer.id}",
            last_activity=shop_date(last, timezone),
            flags=frozenset({"has_orders"}) if customer.number_of_orders else frozenset(),
        )
    ]
    states = {customer.email_marketing_state, customer.sms_marketing_state}
    if states & {"SUBSCRIBED", "PENDING", "UNSUBSCRIBED"}:
        subscribed = bool(states & {"SUBSCRIBED", "PENDING"})
        held.append(
            Holding(
                system="shopify",
                category=Category.NEWSLETTER,
                ref=f"customer:{customer.id}:marketing",
                label=f"Marketing consent of customer {customer.id}",
                last_activity=shop_date(last, timezone),
                unsubscribed=None
                if subscribed
                else shop_date(customer.marketing_updated_at or customer.updated_at, timezone),
                flags=frozenset() if subscribed else frozenset({"unsubscribed"}),
            )
        )
    return held
