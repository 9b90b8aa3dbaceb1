"""Durable before 2xx: the delivery and its ledger request are written in one transaction.

Duplicates are caught twice, both by unique indexes so concurrent instances agree: by the
request's business key (`data_request.id`; shop + customer + sorted orders; the shop for
`shop/redact`), and by `(topic, webhook id)` for the delivery. A duplicate rolls back: it is
acknowledged and creates nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.crypto import Vault
from plugin.intake.headers import WebhookHeaders
from plugin.intake.payloads import (
    AppUninstalled,
    CustomersDataRequest,
    CustomersRedact,
    Payload,
    PayloadError,
    ShopRedact,
)
from plugin.ledger import (
    TOPIC_KINDS,
    NewRequest,
    find_request_id,
    insert_ignoring_conflicts,
    insert_request,
    orders_key,
)
from plugin.models import Delivery, Shop, utcnow
from plugin.runtime import Runtime

log = logging.getLogger("gallra.intake")


@dataclass(frozen=True, slots=True)
class Stored:
    duplicate: bool
    request_id: int | None


class _Duplicate(Exception):
    """Raised inside the transaction so that it rolls back; carries the existing request's id."""

    def __init__(self, request_id: int | None) -> None:
        self.request_id = request_id


def shop_domain_of(payload: Payload, headers: WebhookHeaders) -> str:
    """The signed body names the shop; the (unsigned) header is only a fallback."""
    if isinstance(payload, AppUninstalled):
        domain = payload.myshopify_domain or headers.shop_domain
        if not domain:
            raise PayloadError("no shop domain in body or headers")
        return domain.strip().lower()
    return payload.shop_domain


def _subject_key(
    vault: Vault, shop: str, customer_id: int | None, email: str | None, phone: str | None
) -> str:
    # Some customer records hold only an e-mail; the key then uses its keyed hash, never the address.
    if customer_id is not None:
        return f"customer:{customer_id}"
    if email:
        return f"email:{vault.email_hash(shop, email)}"
    if phone:
        return f"phone:{vault.phone_hash(shop, phone)}"
    return "customer:none"


def new_request(topic: str, payload: Payload, shop: str, vault: Vault, body: bytes) -> NewRequest | None:
    """What the ledger records for this delivery (None for topics that are not privacy requests)."""
    kind = TOPIC_KINDS.get(topic)
    if kind is None:
        return None
    if isinstance(payload, ShopRedact):
        return NewRequest(
            kind=kind,
            shop_domain=shop,
            business_key=f"shop:{payload.shop_id}",
            shopify_shop_id=payload.shop_id,
        )
    if isinstance(payload, CustomersDataRequest | CustomersRedact):
        customer = payload.customer
        customer_id = customer.id if customer else None
        email = customer.email if customer else None
        phone = customer.phone if customer else None
        if isinstance(payload, CustomersDataRequest):
            orders = list(payload.orders_requested or [])
            data_request_id = payload.data_request.id if payload.data_request else None
        else:
            orders = list(payload.orders_to_redact or [])
            data_request_id = None
        if customer_id is None and not email and not phone and not orders:
            raise PayloadError(f"body does not fit {topic}: no customer or orders named")
        if data_request_id is not None:
            key = f"data_request:{data_request_id}"
        elif isinstance(payload, CustomersDataRequest):
            # No documented id to dedupe on: the whole signed body stands for the request.
            key = f"body:{vault.lookup_hash(shop, body.decode('utf-8', 'replace'))}"
        else:
            key = f"{_subject_key(vault, shop, customer_id, email, phone)}|orders:{orders_key(orders)}"
        return NewRequest(
            kind=kind,
            shop_domain=shop,
            business_key=key,
            shopify_shop_id=payload.shop_id,
            customer_id=customer_id,
            email=email,
            phone=phone,
            order_ids=orders,
            data_request_id=data_request_id,
        )
    raise PayloadError(f"no ledger mapping for {topic}")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        # Shopify sends nanoseconds ("...46.395212977Z"); keep the first six digits.
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())[:6]
        try:
            parsed = datetime.fromisoformat(f"{head}.{digits or '0'}+00:00")
        except ValueError:
            return None
    return parsed if parsed.tzinfo else None


async def mark_uninstalled(session: AsyncSession, shop: str, triggered_at: str | None) -> None:
    """Mark the shop uninstalled and drop its tokens (Shopify has already revoked them).

    Repeated deliveries change nothing further; a delivery triggered before the shop's latest
    install (a late retry after a re-install) leaves the shop alone.
    """
    now = utcnow()
    statement = (
        update(Shop)
        .where(Shop.domain == shop, Shop.status != "redacted")
        .values(
            status="uninstalled",
            uninstalled_at=now,
            access_token_enc=None,
            access_token_expires_at=None,
            refresh_token_enc=None,
            refresh_token_expires_at=None,
            updated_at=now,
        )
    )
    triggered = _parse_time(triggered_at)
    if triggered is not None:
        statement = statement.where(or_(Shop.installed_at.is_(None), Shop.installed_at <= triggered))
    await session.execute(statement)


async def store(
    runtime: Runtime, topic: str, headers: WebhookHeaders, payload: Payload, body: bytes
) -> Stored:
    """Write the delivery (+ request) and commit. Raises database errors to the caller, which must
    then not answer 2xx; raises PayloadError for a body that names no shop or subject."""
    vault = runtime.vault
    shop = shop_domain_of(payload, headers)
    request = new_request(topic, payload, shop, vault, body)
    try:
        async with runtime.db.sessions() as session, session.begin():
            request_id: int | None = None
            if request is not None:
                request_id = await insert_request(session, vault, request)
                if request_id is None:
                    raise _Duplicate(await find_request_id(session, shop, request.kind, request.business_key))
            delivery = (
                insert_ignoring_conflicts(session, Delivery)
                .values(
                    shop_domain=shop,
                    topic=topic,
                    webhook_id=headers.webhook_id,
                    event_id=headers.event_id,
                    api_version=headers.api_version,
                    triggered_at=headers.triggered_at,
                    received_at=request.received_at if request else utcnow(),
                    body_enc=vault.encrypt(body),
                    request_id=request_id,
                )
                .returning(Delivery.id)
            )
            if (await session.execute(delivery)).scalar_one_or_none() is None:
                # Same webhook id seen before: answer with the request that delivery created.
                raise _Duplicate(await _request_of_delivery(session, topic, headers.webhook_id))
            if isinstance(payload, AppUninstalled):
                await mark_uninstalled(session, shop, headers.triggered_at)
    except _Duplicate as duplicate:
        log.info("duplicate %s delivery for %s acknowledged (request %s)", topic, shop, duplicate.request_id)
        return Stored(duplicate=True, request_id=duplicate.request_id)
    runtime.work_available.set()
    log.info("stored %s delivery for %s (request %s)", topic, shop, request_id)
    return Stored(duplicate=False, request_id=request_id)


async def _request_of_delivery(session: AsyncSession, topic: str, webhook_id: str | None) -> int | None:
    statement = select(Delivery.request_id).where(Delivery.topic == topic, Delivery.webhook_id == webhook_id)
    return (await session.execute(statement)).scalar_one_or_none()
