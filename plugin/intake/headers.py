"""Webhook headers, looked up in both families: classic `X-Shopify-*` and the newer `shopify-*`.

Only the signature header is required. Compliance deliveries have been seen without
`X-Shopify-Shop-Domain` or `X-Shopify-API-Version`, so every other header is optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_PREFIXES = ("x-shopify-", "shopify-")


def lookup(headers: Mapping[str, str], name: str) -> str | None:
    """The value of `X-Shopify-<name>` or `Shopify-<name>`, case-insensitively; blank counts as absent.

    `headers` must already be case-insensitive (Starlette's `Headers` is); `name` is given as
    e.g. "hmac-sha256". The newer family wins when both are present, as Shopify's libraries do.
    """
    for prefix in reversed(_PREFIXES):
        value = headers.get(prefix + name)
        if value is not None and value.strip():
            return value.strip()
    return None


@dataclass(frozen=True, slots=True)
class WebhookHeaders:
    signature: str | None
    topic: str | None
    shop_domain: str | None
    api_version: str | None
    webhook_id: str | None
    event_id: str | None
    triggered_at: str | None

    @classmethod
    def read(cls, headers: Mapping[str, str]) -> WebhookHeaders:
        return cls(
            signature=lookup(headers, "hmac-sha256"),
            topic=lookup(headers, "topic"),
            shop_domain=lookup(headers, "shop-domain"),
            api_version=lookup(headers, "api-version"),
            webhook_id=lookup(headers, "webhook-id"),
            event_id=lookup(headers, "event-id"),
            triggered_at=lookup(headers, "triggered-at"),
        )
