"""Typed records of what Gallra reads from Shopify. IDs are numeric legacy ids (the GraphQL GID's
last segment); times are aware UTC datetimes. Records with personal data hide it from repr."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


def gid(kind: str, legacy_id: int) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def legacy_id(gid_value: str) -> int:
    """`gid://shopify/Order/123` (or `...?key=v`) → 123."""
    return int(gid_value.rsplit("/", 1)[1].split("?", 1)[0])


@dataclass(frozen=True, slots=True)
class TrackingInfo:
    company: str | None
    number: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentRecord:
    id: int
    status: str | None
    created_at: datetime | None
    delivered_at: datetime | None
    tracking: tuple[TrackingInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    name: str  # "#1001"
    created_at: datetime
    processed_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    customer_id: int | None = None
    shipping_country: str | None = None  # ISO 3166-1 alpha-2
    fulfillments: tuple[FulfillmentRecord, ...] = ()
    # A chargeback or inquiry not yet decided (`Order.disputes` NEEDS_RESPONSE / UNDER_REVIEW), and
    # a return requested or under way (`Order.returnStatus`): both keep the order until settled.
    open_dispute: bool = False
    open_return: bool = False


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    email: str | None = field(default=None, repr=False)
    legal_name: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)  # one line, see operations.postal_address
    phone: str | None = field(default=None, repr=False)
    first_name: str | None = field(default=None, repr=False)
    last_name: str | None = field(default=None, repr=False)
    email_marketing_state: str | None = None  # SUBSCRIBED, UNSUBSCRIBED, NOT_SUBSCRIBED, ...
    sms_marketing_state: str | None = None
    marketing_updated_at: datetime | None = None  # emailMarketingConsent.consentUpdatedAt
    number_of_orders: int = 0
    can_delete: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_order_at: datetime | None = None
    orders: tuple[OrderRecord, ...] = ()


@dataclass(frozen=True)
class ShopRecord:
    id: int
    name: str
    email: str | None = field(default=None, repr=False)
    legal_name: str | None = field(default=None, repr=False)
    address: str | None = field(default=None, repr=False)  # one line, see operations.postal_address
    country: str | None = None  # ISO 3166-1 alpha-2 of the shop's billing address
    timezone: str | None = None  # IANA name
    currency: str | None = None
    plan: str | None = None
