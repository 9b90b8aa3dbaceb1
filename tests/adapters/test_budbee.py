"""Budbee against the budbee-php SDK: HMAC-signed requests in its vendor media type, orders found
by cart id (the shop's order number), cancelled before pickup, and erasure of what Budbee keeps
as controller asked for by e-mail."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx
import pytest
import respx

from adapters.base import Outcome, PermanentFailure
from adapters.budbee import MEDIA_TYPE, Budbee
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import assert_auth_failure_named, assert_throttling_honoured, build, subject

API = "https://api.budbee.com"
BUDBEE_ID = "a7f3c2e1"
ORDER: dict[str, object] = {
    "id": BUDBEE_ID,
    "cart": {"cartId": "1001"},
    "delivery": {"name": "Anna Svensson"},
}
OTHER: dict[str, object] = {
    "id": "ffff",
    "cart": {"cartId": "10010"},
}  # the keyword search matches more than the cart id
CUSTOMER = subject(("#1001", "Budbee AB", "BB123"), ("#1002", "Instabox", "IBX1"))
PRIVACY = "privacy@budbee.example"


def budbee(**extra: Any) -> tuple[Budbee, RecordingChannel, Waits]:
    return build(Budbee, api_key="bb-key", api_secret="bb-secret", **extra)


def mock_search(*orders: dict[str, object]) -> respx.Route:
    return respx.get(f"{API}/multiple/orders", params={"keyword": "1001"}).respond(200, json=list(orders))


@respx.mock
async def test_finds_by_cart_id_cancels_and_asks_by_email_in_swedish() -> None:
    adapter, outbox, _ = budbee(privacy_email=PRIVACY)
    search = mock_search(ORDER, OTHER)
    cancel = respx.delete(f"{API}/multiple/orders/{BUDBEE_ID}").respond(200, json=ORDER)
    [holding] = await adapter.find(CUSTOMER)  # the Instabox shipment is not Budbee's
    assert holding.ref == "shipment:1000:BB123"  # the ref Shopify's order holdings give it
    result = await adapter.erase(CUSTOMER, holding)
    assert result.outcome is Outcome.REQUEST_SENT and "1 Budbee order(s) cancelled" in result.detail
    request = search.calls.last.request
    assert request.headers["Accept"] == MEDIA_TYPE and cancel.called
    scheme, key, signature = request.headers["Authorization"].split(" ")
    lines = ["GET", f"date:{request.headers['X-HMAC-Date']}", f"nonce:{request.headers['X-HMAC-Nonce']}"]
    expected = hmac.new(b"bb-secret", "\n".join([*lines, str(request.url)]).encode(), hashlib.sha1).digest()
    assert (scheme, key, signature) == ("HmacSHA1", "bb-key", base64.b64encode(expected).decode())
    [mail] = outbox.sent
    assert mail["to"] == PRIVACY and mail["subject"].startswith("Begäran") and "BB123" in mail["body"]
    assert (await adapter.export(CUSTOMER))["orders"] == [ORDER]


@respx.mock
async def test_delivered_or_unknown_orders_are_still_asked_for_once() -> None:
    adapter, outbox, _ = budbee(privacy_email=PRIVACY)
    mock_search(ORDER)
    respx.delete(f"{API}/multiple/orders/{BUDBEE_ID}").mock(
        side_effect=[httpx.Response(409, json={"message": "already delivered"}), httpx.Response(404)]
    )
    [holding] = await adapter.find(CUSTOMER)
    first, again = await adapter.erase(CUSTOMER, holding), await adapter.erase(CUSTOMER, holding)
    assert first.outcome is again.outcome is Outcome.REQUEST_SENT and "nothing left" in first.detail
    assert first.provider_ref == again.provider_ref and len(outbox.sent) == 1


@respx.mock
async def test_not_in_the_api_is_still_a_holding_asked_for_by_email() -> None:
    adapter, outbox, _ = budbee(privacy_email=PRIVACY)
    mock_search(OTHER)
    [holding] = await adapter.find(CUSTOMER)
    exported = await adapter.export(CUSTOMER)  # what Budbee received, though its API has no order
    assert "orders" not in exported and [s["tracking_number"] for s in exported["shipments"]] == ["BB123"]
    assert (await adapter.erase(CUSTOMER, holding)).outcome is Outcome.REQUEST_SENT and len(outbox.sent) == 1
    assert await adapter.find(subject(("#1003", "PostNord", "P1"))) == []


@respx.mock
async def test_without_email_channel_a_cancel_is_reported_as_such() -> None:
    adapter, _, _ = budbee(email=False)
    mock_search(ORDER)
    respx.delete(f"{API}/multiple/orders/{BUDBEE_ID}").mock(
        side_effect=[httpx.Response(200), httpx.Response(404)]
    )
    [holding] = await adapter.find(CUSTOMER)
    assert (await adapter.erase(CUSTOMER, holding)).outcome is Outcome.CANCELLED
    with pytest.raises(PermanentFailure, match="e-mail channel"):
        await adapter.erase(CUSTOMER, holding)


@respx.mock
async def test_no_known_privacy_address_fails_before_cancelling() -> None:
    adapter, _, _ = budbee()
    mock_search(ORDER)
    cancel = respx.delete(f"{API}/multiple/orders/{BUDBEE_ID}").respond(200)
    [holding] = await adapter.find(CUSTOMER)
    with pytest.raises(PermanentFailure, match="privacy_email"):
        await adapter.erase(CUSTOMER, holding)
    assert not cancel.called


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = budbee()
    route = respx.get(f"{API}/multiple/orders")
    ok = httpx.Response(200, json=[ORDER])
    await assert_throttling_honoured(route, ok, lambda: adapter.export(CUSTOMER), sleeps)


@respx.mock
async def test_rejected_signature_names_the_settings() -> None:
    adapter, _, _ = budbee()
    route = respx.get(f"{API}/multiple/orders", params={"num": "1"})
    await assert_auth_failure_named(route, adapter.check, "budbee", "api_key", "api_secret")
