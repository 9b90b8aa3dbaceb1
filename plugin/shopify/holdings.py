"""Shopify records → holdings, in the shop's time zone. Pure and cheap: the redact pipeline calls
it for one customer's orders, the retention sweep for a million."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime

from adapters.carriers import carrier_adapter
from plugin.holdings import Category, Holding, Shipment
from plugin.retention.dates import local_date
from plugin.shopify.records import CustomerRecord, OrderRecord

UNKNOWN_CARRIER = "unknown_carrier"


def shop_date(moment: datetime | None, timezone: str | None) -> date | None:
    return None if moment is None else local_date(moment, timezone)


def order_shipments(order: OrderRecord, timezone: str | None) -> Iterator[Shipment]:
    for fulfillment in order.fulfillments:
        for info in fulfillment.tracking or ():
            yield Shipment(
                order_id=order.id,
                order_name=order.name,
                carrier=info.company,
                tracking_number=info.number,
                tracking_url=info.url,
                created=shop_date(fulfillment.created_at, timezone),
                delivered=shop_date(fulfillment.delivered_at, timezone),
                country=order.shipping_country,
            )


def order_holdings(
    order: OrderRecord,
    timezone: str | None,
    carrier_of: Callable[[str | None], str | None] = carrier_adapter,
) -> list[Holding]:
    """The order as a voucher, its contact fields, and one shipment holding per tracking number
    (at the carrier's adapter, or `unknown_carrier` so the shop owner sees it)."""
    created = shop_date(order.created_at, timezone)
    delivered_dates = [f.delivered_at for f in order.fulfillments if f.delivered_at]
    delivered = shop_date(max(delivered_dates), timezone) if delivered_dates else None
    flags = frozenset({"cancelled"}) if order.cancelled_at else frozenset()
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
            country=order.shipping_country,
        ),
        Holding(
            system="shopify",
            category=Category.ORDER_CONTACT,
            ref=f"order:{order.id}:contact",
            label=f"Contact details on order {order.name}",
            order_created=created,
            delivered=delivered,
            flags=flags,
            country=order.shipping_country,
        ),
    ]
    for shipment in order_shipments(order, timezone):
        system = carrier_of(shipment.carrier) or UNKNOWN_CARRIER
        held.append(
            Holding(
                system=system,
                category=Category.SHIPMENT,
                ref=f"shipment:{order.id}:{shipment.tracking_number or 'untracked'}",
                label=f"Shipment {shipment.tracking_number or '(no tracking number)'} of order {order.name}",
                order_created=created,
                delivered=shipment.delivered or delivered,
                flags=flags | {"carrier_unknown"} if system == UNKNOWN_CARRIER else flags,
                country=order.shipping_country,
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
