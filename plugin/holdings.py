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


class Category(StrEnum):
    ACCOUNTING_RECORD = "accounting_record"  # the order as a bookkeeping voucher
    ORDER_CONTACT = "order_contact"  # e-mail, phone, notes, marketing fields on an order
    SHIPMENT = "shipment"  # delivery data at carriers and shipping platforms
    NEWSLETTER = "newsletter"  # a subscription at an e-mail tool
    CUSTOMER_ACCOUNT = "customer_account"
    APP_REQUEST_DATA = "app_request_data"  # Gallra's own working data about a request


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

    def __repr__(self) -> str:  # keep personal data out of tracebacks and logs
        return (
            f"Subject(shop={self.shop_domain!r}, customer_id={self.customer_id!r}, "
            f"orders={len(self.order_ids)})"
        )
