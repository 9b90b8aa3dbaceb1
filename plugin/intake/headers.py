"""Webhook headers, looked up in both families: classic `X-Shopify-*` and the newer `shopify-*`.

Only the signature header is required. Compliance deliveries have been seen without
`X-Shopify-Shop-Domain` or `X-Shopify-API-Version`, so every other header is optional.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_PREFIXES = ("x-shopify-", "shopify-")


@dataclass(frozen=True, slots=True)
class WebhookHeaders:
    signature: str | None
    topic: str | None
    shop_domain: str | None
    api_version: str | None
    webhook_id: str | None
    event_id: str | None
    triggered_at: str | None

    def __reduce__(self) -> tuple[type[WebhookHeaders], tuple[str | None, ...]]:
        # As its fields: see NewRequest.__reduce__.
        return (
            WebhookHeaders,
            (
                self.signature,
                self.topic,
                self.shop_domain,
                self.api_version,
                self.webhook_id,
                self.event_id,
                self.triggered_at,
            ),
        )

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> WebhookHeaders:
        """Each field from `X-Shopify-<name>` or `Shopify-<name>`, case-insensitively, in one pass
        over the raw headers (an ASGI scope's, or Starlette's `Headers.raw`). Blank counts as
        absent; the newer family wins when both are present, as Shopify's libraries do; of a
        repeated header the first counts."""
        first: dict[bytes, bytes] = {}
        for key, value in raw:
            key = key.lower()
            if key in _RAW_NAMES and key not in first:
                first[key] = value  # like Headers.get: the first of repeated headers counts
        values: dict[str, str | None] = dict.fromkeys(_FIELDS)
        for key, value in first.items():
            text = value.decode("latin-1").strip()
            if not text:
                continue
            field, newer = _RAW_NAMES[key]
            if newer or values[field] is None:
                values[field] = text
        return cls(**values)


# Header name (without its family prefix) for each field.
_FIELDS = {
    "signature": "hmac-sha256",
    "topic": "topic",
    "shop_domain": "shop-domain",
    "api_version": "api-version",
    "webhook_id": "webhook-id",
    "event_id": "event-id",
    "triggered_at": "triggered-at",
}
# Lower-cased raw header name -> (field, from the newer `shopify-*` family).
_RAW_NAMES = {
    (prefix + name).encode("latin-1"): (field, prefix == _PREFIXES[-1])
    for field, name in _FIELDS.items()
    for prefix in _PREFIXES
}
