"""The shared vocabulary between the planner, the executor and the adapters.

A *holding* is one thing one system holds about a subject (an order at Shopify, a profile at
Klaviyo, a shipment at PostNord, Gallra's own request row). It carries no personal data itself:
only a reference within its system, a label fit for a log or a certificate, and the dates the
retention rules count from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    ACCOUNTING_RECORD = "accounting_record"  # the order as a bookkeeping voucher
    ORDER_CONTACT = "order_contact"  # e-mail, phone, notes, marketing fields on an order
    SHIPMENT = "shipment"  # delivery data at carriers and shipping platforms
    NEWSLETTER = "newsletter"  # a subscription at an e-mail tool
    CUSTOMER_ACCOUNT = "customer_account"
    APP_REQUEST_DATA = "app_request_data"  # Gallra's own working data about a request


# The two systems every shop has, whatever it connects: Shopify itself and Gallra's own records
# (adapter names, like "klaviyo"; the one place either is spelled).
SHOPIFY = "shopify"
GALLRA = "gallra"


@dataclass(frozen=True, slots=True)
class Holding:
    system: str  # adapter name: "shopify", "klaviyo", "postnord", "gallra", ...
    category: Category
    ref: str  # stable reference inside the system, no personal data: "order:1001"
    label: str  # human label without personal data: "Order #1001"
    order_created: date | None = None
    delivered: date | None = None
    last_activity: date | None = None
    unsubscribed: date | None = None  # unsubscribed or bounced
    flags: frozenset[str] = frozenset()  # e.g. "open_return", "legal_hold", "bounced"
    country: str | None = None  # shipping country where it matters


@dataclass(frozen=True, slots=True)
class Shipment:
    """A fulfillment's tracking info as Shopify reports it."""

    order_id: int
    order_name: str
    carrier: str | None  # Shopify's trackingInfo.company, as written
    tracking_number: str | None
    tracking_url: str | None = None
    created: date | None = None
    delivered: date | None = None
    country: str | None = None


@dataclass(frozen=True)
class Subject:
    """Whom a request is about. Holds personal data: never log it, never store it unencrypted."""

    shop_domain: str
    customer_id: int | None = None
    email: str | None = None
    phone: str | None = None
    order_ids: tuple[int, ...] = ()
    shipments: tuple[Shipment, ...] = field(default=())
    request_id: int | None = None  # the Gallra request naming the subject (Gallra's own key)

    def identifies(self) -> bool:
        """Whether the subject carries anything a provider can be asked about (not `request_id`,
        which only Gallra's own records know)."""
        return bool(
            (self.email or "").strip()
            or (self.phone or "").strip()
            or self.customer_id
            or self.order_ids
            or self.shipments
        )

    def __repr__(self) -> str:  # keep personal data out of tracebacks and logs
        return (
            f"Subject(shop={self.shop_domain!r}, customer_id={self.customer_id!r}, "
            f"orders={len(self.order_ids)})"
        )


@dataclass(frozen=True, slots=True)
class ShipmentRef:
    """The reference of a shipment holding, `shipment:<order id>:<tracking number>` (`untracked`
    without one): the one place that writes and reads it, and the shipment holding's label.

    Shopify's holdings (`adapters.shopify_holdings`) and the carrier adapters' own `find` build it;
    the executor and the carrier adapters read it back into a `Shipment`. The tracking number may
    itself contain colons: only the first two separate."""

    order_id: int
    tracking_number: str | None

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentRef:
        return cls(shipment.order_id, shipment.tracking_number)

    def format(self) -> str:
        return f"{SHIPMENT_PREFIX}:{self.order_id}:{self.tracking_number or UNTRACKED}"

    @classmethod
    def parse(cls, ref: str) -> ShipmentRef | None:
        """The reference in `ref`, None when `ref` is not a shipment's."""
        prefix, _, rest = ref.partition(":")
        order, _, tracking = rest.partition(":")
        if prefix != SHIPMENT_PREFIX or not order.isdigit() or not tracking:
            return None
        return cls(int(order), None if tracking == UNTRACKED else tracking)

    def label(self, order_name: str) -> str:
        """The holding's label: fit for a log or a certificate, and it names the order."""
        return f"Shipment {self.tracking_number or '(no tracking number)'} of order {order_name}"

    @staticmethod
    def order_name_in(label: str) -> str:
        """The order name that `label` ends with (`#1001`)."""
        return label.rsplit(" ", 1)[-1]


SHIPMENT_PREFIX = "shipment"
UNTRACKED = "untracked"


def shipment_of_holding(holding: Holding, carrier: str | None = None) -> Shipment | None:
    """The shipment a shipment holding stands for (None for any other holding), as the carrier
    adapters need it; `carrier` defaults to the holding's system."""
    ref = ShipmentRef.parse(holding.ref) if holding.category == Category.SHIPMENT else None
    if ref is None:
        return None
    return Shipment(
        order_id=ref.order_id,
        order_name=ShipmentRef.order_name_in(holding.label),
        carrier=carrier or holding.system,
        tracking_number=ref.tracking_number,
        delivered=holding.delivered,
        country=holding.country,
    )


def shipments_of_holdings(holdings: list[Holding]) -> tuple[Shipment, ...]:
    """The shipments among `holdings`."""
    return tuple(s for s in map(shipment_of_holding, holdings) if s is not None)


# A holding as a step row keeps it (JSON): the one place that shape is written and read.
def holding_to_dict(holding: Holding) -> dict[str, Any]:
    return {
        "system": holding.system,
        "category": holding.category.value,
        "ref": holding.ref,
        "label": holding.label,
        "order_created": iso_day(holding.order_created),
        "delivered": iso_day(holding.delivered),
        "last_activity": iso_day(holding.last_activity),
        "unsubscribed": iso_day(holding.unsubscribed),
        "flags": sorted(holding.flags),
        "country": holding.country,
    }


def holding_from_dict(data: dict[str, Any]) -> Holding:
    return Holding(
        system=data["system"],
        category=Category(data["category"]),
        ref=data["ref"],
        label=data["label"],
        order_created=_date(data.get("order_created")),
        delivered=_date(data.get("delivered")),
        last_activity=_date(data.get("last_activity")),
        unsubscribed=_date(data.get("unsubscribed")),
        flags=frozenset(data.get("flags") or ()),
        country=data.get("country"),
    )


def iso_day(day: date | None) -> str | None:
    """A date as a step row keeps it (ISO 8601), or None."""
    return day.isoformat() if day else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
