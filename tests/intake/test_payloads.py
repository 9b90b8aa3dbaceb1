"""Payload models: the documented shapes, lenient where Shopify is, reasons without values."""

from __future__ import annotations

import json

import pytest

from plugin.intake.payloads import CustomersDataRequest, CustomersRedact, PayloadError, parse
from tests.intake.conftest import CUSTOMER_REDACT, DATA_REQUEST


def test_documented_payloads_parse() -> None:
    parsed = parse("customers/data_request", json.dumps(DATA_REQUEST).encode())
    assert isinstance(parsed, CustomersDataRequest)
    assert parsed.customer is not None and parsed.customer.id == 191167
    assert parsed.data_request is not None and parsed.data_request.id == 9999


def test_string_ids_coerced_and_extra_keys_ignored() -> None:
    body = {**CUSTOMER_REDACT, "shop_id": "954889", "orders_to_redact": ["1", 2], "future_field": {"x": 1}}
    parsed = parse("customers/redact", json.dumps(body).encode())
    assert isinstance(parsed, CustomersRedact)
    assert parsed.shop_id == 954889 and parsed.orders_to_redact == [1, 2]


def test_email_and_phone_may_be_missing_or_null() -> None:
    body = {**CUSTOMER_REDACT, "customer": {"id": 5, "email": None}, "orders_to_redact": []}
    parsed = parse("customers/redact", json.dumps(body).encode())
    assert isinstance(parsed, CustomersRedact)
    assert parsed.customer is not None and parsed.customer.email is None and parsed.customer.phone is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"   ", "empty body"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b"[" * 100_000, "not valid JSON"),  # nesting past the parser's limit
        # A lone surrogate escape: JSON that no UTF-8 text can hold.
        (b'{"shop_id": 1, "shop_domain": "ab.myshopify.com", "x": "\\ud800"}', "not valid JSON"),
        (b'{"shop_domain": "a.myshopify.com"}', "shop_id: missing"),
        (b'{"shop_id": 1, "shop_domain": "evil.example.com"}', "shop_domain: value_error"),
    ],
)
def test_bad_bodies_have_short_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse("shop/redact", body)


def test_reason_never_contains_the_value() -> None:
    body = {**DATA_REQUEST, "customer": {"id": "john@example.com", "email": ["john@example.com"]}}
    with pytest.raises(PayloadError) as caught:
        parse("customers/data_request", json.dumps(body).encode())
    assert "john" not in str(caught.value)
    assert "customer.id" in str(caught.value)
