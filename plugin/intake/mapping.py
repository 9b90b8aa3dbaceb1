"""What a verified delivery means for the ledger: its shop, and the request (with its business key).

Business keys make a request unique per shop and kind: `data_request.id`; the customer plus the
sorted `orders_to_redact`; the shop for `shop/redact`. Where a customer record carries only an
e-mail or phone, the key uses its keyed per-shop hash, never the value itself.
"""

from __future__ import annotations

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
from plugin.ledger import TOPIC_KINDS, NewRequest, orders_key


def shop_domain_of(payload: Payload, headers: WebhookHeaders) -> str:
    """The signed body names the shop; the (unsigned) header is only a fallback."""
    if isinstance(payload, AppUninstalled):
        domain = payload.myshopify_domain or headers.shop_domain
        if not domain:
            raise PayloadError("no shop domain in body or headers")
        return domain.strip().lower()
    return payload.shop_domain


def _subject_keys(
    vault: Vault, shop: str, customer_id: int | None, email: str | None, phone: str | None
) -> tuple[str, ...]:
    """The subject's part of the key: the one stored first, then those it may be stored under
    (`Vault.lookup_hashes`)."""
    if customer_id is not None:
        return (f"customer:{customer_id}",)
    if email:
        return tuple(f"email:{digest}" for digest in vault.email_hashes(shop, email))
    if phone:
        return tuple(f"phone:{digest}" for digest in vault.phone_hashes(shop, phone))
    return ("customer:none",)


def new_request(topic: str, payload: Payload, shop: str, vault: Vault, body: bytes) -> NewRequest | None:
    """The ledger request this delivery creates (None for topics that are not privacy requests).

    Raises PayloadError for a customer topic that names neither a customer nor an order.
    """
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
    if not isinstance(payload, CustomersDataRequest | CustomersRedact):
        raise PayloadError(f"no ledger mapping for {topic}")
    customer = payload.customer
    customer_id = customer.id if customer else None
    email = customer.email if customer else None
    phone = customer.phone if customer else None
    data_request_id: int | None = None
    if isinstance(payload, CustomersDataRequest):
        orders = list(payload.orders_requested or [])
        data_request_id = payload.data_request.id if payload.data_request else None
    else:
        orders = list(payload.orders_to_redact or [])
    if customer_id is None and not email and not phone and not orders:
        raise PayloadError(f"body does not fit {topic}: no customer or orders named")
    others: list[str] = []
    if data_request_id is not None:
        key = f"data_request:{data_request_id}"
    elif isinstance(payload, CustomersDataRequest):
        # No documented id to dedupe on: the whole signed body (keyed hash) stands for the request.
        key, *others = (f"body:{h}" for h in vault.lookup_hashes(shop, body.decode("utf-8", "replace")))
    else:
        subjects = _subject_keys(vault, shop, customer_id, email, phone)
        key, *others = (f"{subject}|orders:{orders_key(orders)}" for subject in subjects)
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
        other_keys=tuple(others),
    )
