"""The signature check against Shopify's documented test vectors."""

from __future__ import annotations

import json

from starlette.datastructures import Headers

from plugin.intake.headers import WebhookHeaders
from plugin.intake.signature import sign, verify

RAW = b'{"shop_id":954889,"shop_domain":"snowdevil.myshopify.com"}'


def test_documented_vector() -> None:
    assert sign(RAW, "hush") == "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY="
    assert verify(RAW, "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY=", ["hush"])


def test_reserialised_body_does_not_verify() -> None:
    reserialised = json.dumps(json.loads(RAW)).encode()
    assert sign(reserialised, "hush") == "UNtNgwv+NJ1PfIL/fh7BBlgM1FDE6yVIqPgaMJWrthA="
    assert not verify(reserialised, "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY=", ["hush"])


def test_previous_secret_accepted_and_others_refused() -> None:
    signed_with_old = sign(RAW, "old")
    assert verify(RAW, signed_with_old, ["new", "old"])
    assert not verify(RAW, signed_with_old, ["new"])
    assert not verify(RAW, None, ["hush"])
    assert not verify(RAW, "", ["hush"])
    assert not verify(RAW, "unXxOs41nqtk5v6Btqh9qz9Dh6mprKtn5eLN4XfJwSY=", ["", "other"])
    # hex of the right MAC is not the right encoding
    assert not verify(RAW, "9e75f13ace359eab64e6fe81b6a87dab3f4387a8e9a4ab67e5e2cde177c9c126", ["hush"])


def test_headers_both_families_case_insensitive() -> None:
    classic = WebhookHeaders.from_raw(
        Headers({"x-shopify-hmac-sha256": "a", "X-SHOPIFY-TOPIC": "shop/redact"}).raw
    )
    events = Headers({"Shopify-Hmac-Sha256": "b", "shopify-shop-domain": "x.myshopify.com"})
    assert classic.signature == "a" and classic.topic == "shop/redact"
    read = WebhookHeaders.from_raw(events.raw)
    assert read.signature == "b" and read.shop_domain == "x.myshopify.com" and read.api_version is None
    assert WebhookHeaders.from_raw(Headers({"x-shopify-topic": "  "}).raw).topic is None
