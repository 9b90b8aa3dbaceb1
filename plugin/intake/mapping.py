"""What a verified delivery means for the ledger: its shop, and the request (with its business key).

Everything here comes from the signed body, never from a header (headers are unsigned; the one
exception is the shop of `customers/merge`, whose body names none, see `shop_domain_of`): the shop,
and the business keys that make a request unique per shop and kind, so that a replay of a genuine
delivery, under any headers and any webhook id, is a duplicate of the original. The keys are
`data_request.id`; the customer plus the sorted `orders_to_redact`; the shop for `shop/redact`.
Where a customer record carries only an e-mail, the key uses its keyed per-shop hash, never the
value itself.
"""

from __future__ import annotations

from plugin.crypto import Vault
from plugin.intake.payloads import (
    CustomersDataRequest,
    CustomersMerge,
    CustomersRedact,
    Payload,
    PayloadError,
    ShopRedact,
    ShopResource,
    is_shop_domain,
)
from plugin.ledger import TOPIC_KINDS, NewRequest, orders_key


def shop_domain_of(payload: Payload, header_shop: str | None = None) -> str:
    """The shop the signed body names: a validated `*.myshopify.com` domain (see `payloads`).

    `customers/merge` is the one topic whose body names no shop: its shop is the (unsigned)
    `X-Shopify-Shop-Domain` header's, validated the same way, and required. That is safe for what
    a merge does: it only moves the named shop's rows keyed by the deleted customer's id, and
    Shopify's customer ids are unique across shops, so a genuine merge replayed under another
    shop's header finds nothing there to move (`plugin.pipelines.merges`)."""
    if isinstance(payload, CustomersMerge):
        if not is_shop_domain(header_shop):
            raise PayloadError(
                "customers/merge names no shop: X-Shopify-Shop-Domain missing or not *.myshopify.com"
            )
        assert header_shop is not None
        return header_shop.strip().lower()
    if isinstance(payload, ShopResource):
        return payload.shop
    return payload.shop_domain


def _subject_keys(vault: Vault, shop: str, customer_id: int | None, email: str | None) -> tuple[str, ...]:
    """The subject's part of the key: the one stored first, then those it may be stored under
    (`Vault.lookup_hashes`)."""
    if customer_id is not None:
        return (f"customer:{customer_id}",)
    # The payload model guarantees an id or an e-mail.
    return tuple(f"email:{digest}" for digest in vault.email_hashes(shop, email or ""))


def new_request(topic: str, payload: Payload, shop: str, vault: Vault) -> NewRequest | None:
    """The ledger request this delivery creates (None for topics that are not privacy requests)."""
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
    data_request_id: int | None = None
    others: list[str] = []
    if isinstance(payload, CustomersDataRequest):
        orders = list(payload.orders_requested or [])
        data_request_id = payload.data_request.id
        key = f"data_request:{data_request_id}"
    else:
        orders = list(payload.orders_to_redact or [])
        subjects = _subject_keys(vault, shop, customer.id, customer.email)
        key, *others = (f"{subject}|orders:{orders_key(orders)}" for subject in subjects)
    return NewRequest(
        kind=kind,
        shop_domain=shop,
        business_key=key,
        shopify_shop_id=payload.shop_id,
        customer_id=customer.id,
        email=customer.email,
        phone=customer.phone,
        order_ids=orders,
        data_request_id=data_request_id,
        other_keys=tuple(others),
    )
