"""Budbee against the budbee-php SDK's shapes: HMAC-signed requests in its vendor media type; an
order cancelled before pickup, and erasure of what Budbee keeps asked for by e-mail."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest
import respx

from adapters.base import Outcome, PermanentFailure
from adapters.budbee import MEDIA_TYPE, Budbee
from tests.adapters.support import assert_auth_failure_named, assert_throttling_honoured, build, subject

API = "https://api.budbee.com"
ORDER = "BB12345678"
CUSTOMER = subject(("#1001", "Budbee AB", ORDER), ("#1002", "Instabox", "IBX1"))
PRIVACY = "privacy@budbee.example"


def budbee(**extra: object) -> tuple[Budbee, object, object]:
    return build(Budbee, api_key="bb-key", api_secret="bb-secret", **extra)


@respx.mock
async def test_signed_cancel_then_erasure_request_in_swedish() -> None:
    adapter, outbox, _ = budbee(privacy_email=PRIVACY)
    route = respx.delete(f"{API}/multiple/orders/{ORDER}").respond(200, json={"id": ORDER})
    [holding] = await adapter.find(CUSTOMER)
    result = await adapter.erase(CUSTOMER, holding)
    assert result.outcome is Outcome.REQUEST_SENT and "cancelled" in result.detail
    request = route.calls.last.request
    assert request.headers["Accept"] == MEDIA_TYPE
    scheme, key, signature = request.headers["Authorization"].split(" ")
    lines = ["DELETE", f"date:{request.headers['X-HMAC-Date']}", f"nonce:{request.headers['X-HMAC-Nonce']}"]
    expected = hmac.new(b"bb-secret", "\n".join([*lines, str(request.url)]).encode(), hashlib.sha1).digest()
    assert (scheme, key, signature) == ("HmacSHA1", "bb-key", base64.b64encode(expected).decode())
    [mail] = outbox.sent
    assert mail["to"] == PRIVACY and mail["subject"].startswith("Begäran") and ORDER in mail["body"]


@respx.mock
async def test_delivered_order_is_still_asked_for_and_repeats_share_one_email() -> None:
    adapter, outbox, _ = budbee(privacy_email=PRIVACY)
    respx.delete(f"{API}/multiple/orders/{ORDER}").mock(
        side_effect=[httpx.Response(409, json={"message": "already delivered"}), httpx.Response(404)]
    )
    [holding] = await adapter.find(CUSTOMER)
    first, again = await adapter.erase(CUSTOMER, holding), await adapter.erase(CUSTOMER, holding)
    assert first.outcome is again.outcome is Outcome.REQUEST_SENT
    assert first.provider_ref == again.provider_ref and len(outbox.sent) == 1


@respx.mock
async def test_without_email_channel_a_cancel_is_reported_as_such() -> None:
    adapter, _, _ = budbee(email=False)
    respx.delete(f"{API}/multiple/orders/{ORDER}").mock(
        side_effect=[httpx.Response(200), httpx.Response(404)]
    )
    [holding] = await adapter.find(CUSTOMER)
    assert (await adapter.erase(CUSTOMER, holding)).outcome is Outcome.CANCELLED
    with pytest.raises(PermanentFailure, match="e-mail channel"):
        await adapter.erase(CUSTOMER, holding)


async def test_no_known_privacy_address_fails_before_cancelling() -> None:
    adapter, _, _ = budbee()
    [holding] = await adapter.find(CUSTOMER)
    with respx.mock(assert_all_called=False) as mock:
        cancel = mock.delete(f"{API}/multiple/orders/{ORDER}").respond(200)
        with pytest.raises(PermanentFailure, match="privacy_email"):
            await adapter.erase(CUSTOMER, holding)
    assert not cancel.called


@respx.mock
async def test_export_and_not_found() -> None:
    adapter, _, _ = budbee()
    respx.get(f"{API}/multiple/orders/{ORDER}").mock(
        side_effect=[httpx.Response(200, json={"id": ORDER, "status": "DELIVERED"}), httpx.Response(404)]
    )
    assert (await adapter.export(CUSTOMER))["orders"][0]["status"] == "DELIVERED"
    assert await adapter.export(CUSTOMER) == {}


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = budbee()
    route = respx.get(f"{API}/multiple/orders/{ORDER}")
    ok = httpx.Response(200, json={"id": ORDER})
    await assert_throttling_honoured(route, ok, lambda: adapter.export(CUSTOMER), sleeps)


@respx.mock
async def test_rejected_signature_names_the_settings() -> None:
    adapter, _, _ = budbee()
    route = respx.get(f"{API}/multiple/orders/gallra-connection-check")
    await assert_auth_failure_named(route, adapter.check, "budbee", "api_key", "api_secret")
