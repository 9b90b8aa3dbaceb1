"""Shopify records → holdings, in the shop's time zone. Pure and cheap: the redact pipeline calls
it for one customer's orders, the retention sweep for a million.

What retention reads of a record is its *shape* (`order_shape`, `customer_shape`); the holdings
are built from the shape and the record's names (ids, order name, tracking numbers) alone. So
records of equal shape have holdings that differ only in `ref` and `label`, which no rule reads:
the sweep counts alike records by one verdict on that (plugin.sweeps.patterns), and there is no
second reading of a record to keep in step with this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, tzinfo
from typing import NamedTuple

from adapters.carriers import carrier_adapter
from plugin.holdings import Category, Holding, ShipmentRef
from plugin.retention.dates import day_in, local_date, shop_zone
from plugin.shopify.records import CustomerRecord, OrderRecord, TrackingInfo

UNKNOWN_CARRIER = "unknown_carrier"


def shop_date(moment: datetime | None, timezone: str | None) -> date | None:
    return None if moment is None else local_date(moment, timezone)


def _day(moment: datetime | None, zone: tzinfo) -> date | None:
    return None if moment is None else day_in(moment, zone)


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


class OrderShape(NamedTuple):
    """What retention reads of an order, as local dates of the shop."""

    created: date | None
    delivered: date | None  # the latest delivery of the order
    flags: frozenset[str]  # cancelled, an open dispute or return (`order_flags`)
    country: str | None
    # Per tracking number, in the order's own order: (the day its shipment counts from, the system)
    shipments: tuple[tuple[date | None, str], ...]


def _tracking(order: OrderRecord) -> Iterator[tuple[datetime | None, TrackingInfo]]:
    for fulfillment in order.fulfillments:
        for info in fulfillment.tracking:
            yield fulfillment.delivered_at, info


def order_shape(
    order: OrderRecord, zone: tzinfo, carrier_of: Callable[[str | None], str | None] = carrier_adapter
) -> OrderShape:
    """A shipment counts from its own fulfillment's delivery, else the order's; its system is the
    carrier's adapter, or `unknown_carrier` so the shop owner sees it. The sweep makes this for
    every order of a shop."""
    fulfillments = order.fulfillments
    if len(fulfillments) == 1:
        latest = fulfillments[0].delivered_at
    else:
        latest = max((f.delivered_at for f in fulfillments if f.delivered_at), default=None)
    delivered = None if latest is None else day_in(latest, zone)
    shipments = []
    for fulfillment in fulfillments:
        moment = fulfillment.delivered_at
        # Most orders have one fulfillment, whose delivery is the order's: already converted.
        day = delivered if moment is None or moment is latest else day_in(moment, zone)
        for info in fulfillment.tracking:
            shipments.append((day, carrier_of(info.company) or UNKNOWN_CARRIER))
    return OrderShape(
        day_in(order.created_at, zone),
        delivered,
        order_flags(order),
        order.shipping_country,
        tuple(shipments),
    )


def order_holdings(
    order: OrderRecord,
    timezone: str | None,
    carrier_of: Callable[[str | None], str | None] = carrier_adapter,
) -> list[Holding]:
    """The order as a voucher, its contact fields, and one shipment holding per tracking number."""
    return shaped_order_holdings(order, order_shape(order, shop_zone(timezone), carrier_of))


def shaped_order_holdings(order: OrderRecord, shape: OrderShape) -> list[Holding]:
    """`order_holdings` from the order's shape, already made."""
    created, delivered, flags, country, shipments = shape
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
    for (day, system), (_moment, info) in zip(shipments, _tracking(order), strict=True):
        ref = ShipmentRef(order.id, info.number)
        held.append(
            Holding(
                system=system,
                category=Category.SHIPMENT,
                ref=ref.format(),
                label=ref.label(order.name),
                order_created=created,
                delivered=day,
                flags=flags | _UNKNOWN if system == UNKNOWN_CARRIER else flags,
                country=country,
            )
        )
    return held


class CustomerShape(NamedTuple):
    """What retention reads of a customer, as local dates of the shop."""

    last_activity: date | None
    has_orders: bool
    # Marketing consent Shopify holds, if any: (still subscribed, the day it ended if not)
    marketing: tuple[bool, date | None] | None
    last_order: date | None


def customer_shape(customer: CustomerRecord, zone: tzinfo) -> CustomerShape:
    states = {customer.email_marketing_state, customer.sms_marketing_state}
    marketing = None
    if states & {"SUBSCRIBED", "PENDING", "UNSUBSCRIBED"}:
        subscribed = bool(states & {"SUBSCRIBED", "PENDING"})
        ended = None if subscribed else _day(customer.marketing_updated_at or customer.updated_at, zone)
        marketing = (subscribed, ended)
    return CustomerShape(
        _day(customer.last_order_at or customer.updated_at or customer.created_at, zone),
        bool(customer.number_of_orders),
        marketing,
        _day(customer.last_order_at, zone),
    )


def customer_holdings(customer: CustomerRecord, timezone: str | None) -> list[Holding]:
    """The customer account, and the marketing consent Shopify holds for it."""
    return shaped_customer_holdings(customer, customer_shape(customer, shop_zone(timezone)))


def shaped_customer_holdings(customer: CustomerRecord, shape: CustomerShape) -> list[Holding]:
    """`customer_holdings` from the customer's shape, already made."""
    held = [
        Holding(
            system="shopify",
            category=Category.CUSTOMER_ACCOUNT,
            ref=f"customer:{customer.id}",
            label=f"Customer account {customer.id}",
            last_activity=shape.last_activity,
            flags=frozenset({"has_orders"}) if shape.has_orders else frozenset(),
        )
    ]
    if shape.marketing is not None:
        subscribed, ended = shape.marketing
        held.append(
            Holding(
                system="shopify",
                category=Category.NEWSLETTER,
                ref=f"customer:{customer.id}:marketing",
                label=f"Marketing consent of customer {customer.id}",
                last_activity=shape.last_activity,
                unsubscribed=ended,
                flags=frozenset() if subscribed else frozenset({"unsubscribed"}),
            )
        )
    return held


def last_order_holding(customer: CustomerRecord, shape: CustomerShape) -> Holding | None:
    """The customer's most recent order as a voucher (None without orders): planned to learn
    whether every order of theirs is past bookkeeping, since the newest one expires last."""
    if not shape.has_orders:
        return None
    return Holding(
        system="shopify",
        category=Category.ACCOUNTING_RECORD,
        ref=f"customer:{customer.id}:last_order",
        label=f"Last order of customer {customer.id}",
        order_created=shape.last_order,
    )
