"""Omnisend against the 2026-03-15 Contacts API: look-up by e-mail, unsubscribe by PATCH (there
is no DELETE), deletion asked for by e-mail; 429 timed by the body's `retryAfter`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from adapters.base import Outcome
from adapters.omnisend import Omnisend
from plugin.holdings import Category, Holding, Subject
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://api.omnisend.com/api"
CONTACT_ID = "60a6170920d91c215e949b5c"
LISTED: dict[str, Any] = {
    "contacts": [{"id": CONTACT_ID, "email": EMAIL, "status": "subscribed"}],
    "paging": {"hasMore": False},
}
HOLDING = Holding("omnisend", Category.NEWSLETTER, f"contact:{CONTACT_ID}", "Omnisend contact")
PROBLEM = {
    "type": "https://problems.omnisend.com/problem",
    "title": "Not Found",
    "status": 404,
    "detail": "x",
}


@respx.mock
async def test_unsubscribes_through_the_api_and_asks_for_deletion_by_email() -> None:
    adapter, outbox, _ = build(Omnisend, api_key="om-key")
    lookup = respx.get(f"{API}/contacts", params={"email": EMAIL}).respond(200, json=LISTED)
    patch = respx.patch(f"{API}/contacts/{CONTACT_ID}").respond(200, json=LISTED["contacts"][0])
    [holding] = await adapter.find(subject())
    assert lookup.calls.last.request.headers["Omnisend-Version"] == "2026-03-15"
    assert lookup.calls.last.request.headers["Authorization"] == "Omnisend-API-Key om-key"
    result = await adapter.erase(subject(), holding)
    sent = json.loads(patch.calls.last.request.content)
    assert sent["identifiers"][0]["channels"]["email"]["status"] == "unsubscribed"
    assert result.outcome is Outcome.REQUEST_SENT and result.provider_ref == "GAL-0001"
    [mail] = outbox.sent
    assert mail["to"] == "info@omnisend.com" and EMAIL in mail["body"] and "{reference}" in mail["subject"]
    assert mail["reply_to"] == "dpo@butik.se"


@respx.mock
async def test_without_an_email_channel_the_contact_is_only_suppressed() -> None:
    adapter, _, _ = build(Omnisend, email=False, api_key="om-key")
    respx.patch(f"{API}/contacts/{CONTACT_ID}").respond(200, json={})
    holding = HOLDING
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.SUPPRESSED


@respx.mock
async def test_unknown_contact_and_repeated_erase() -> None:
    adapter, outbox, _ = build(Omnisend, api_key="om-key", privacy_email="privacy@omnisend.example")
    holding = HOLDING
    respx.patch(f"{API}/contacts/{CONTACT_ID}").mock(
        side_effect=[
            httpx.Response(200, json={}),
            httpx.Response(200, json={}),
            httpx.Response(404, json=PROBLEM),
        ]
    )
    first = await adapter.erase(subject(), holding)
    second = await adapter.erase(subject(), holding)
    assert first.outcome is second.outcome is Outcome.REQUEST_SENT
    assert first.provider_ref == second.provider_ref and len(outbox.sent) == 1
    assert outbox.sent[0]["to"] == "privacy@omnisend.example"
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ALREADY_ABSENT
    respx.get(f"{API}/contacts").respond(200, json={"contacts": [], "paging": {}})
    assert await adapter.find(subject()) == []


@respx.mock
async def test_throttling_honours_retry_after_in_header_or_body() -> None:
    adapter, _, sleeps = build(Omnisend, api_key="om-key")
    route = respx.get(f"{API}/contacts")
    await assert_throttling_honoured(
        route, httpx.Response(200, json=LISTED), lambda: adapter.find(subject()), sleeps
    )
    body = {
        "title": "Too Many Requests",
        "status": 429,
        "instance": "urn:omnisend:request:1",
        "retryAfter": 4,
    }
    route.side_effect = [httpx.Response(429, json=body), httpx.Response(200, json=LISTED)]
    assert len(await adapter.find(subject())) == 1
    assert sleeps.slept[-1] == 4.0


@respx.mock
async def test_rejected_key_names_the_setting() -> None:
    adapter, _, _ = build(Omnisend, api_key="om-key")
    await assert_auth_failure_named(respx.get(f"{API}/contacts"), adapter.check, "omnisend", "api_key")


NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # a swept holding: no address, only the id


def full_contact(email_status: str, sms_status: str) -> dict[str, object]:
    """A contact as `GET /contacts/{id}` answers it (ContactResponse, 2026-03-15)."""
    return {
        "id": CONTACT_ID,
        "email": EMAIL,
        "identifiers": [
            {"type": "email", "id": EMAIL, "channels": {"email": {"status": email_status}}},
            {"type": "phone", "id": "+46701234567", "channels": {"sms": {"status": sms_status}}},
        ],
    }


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


@respx.mock
async def test_reduce_unsubscribes_every_subscribed_channel_and_sends_no_deletion_request() -> None:
    adapter, outbox, _ = build(Omnisend, api_key="om-key")
    respx.get(f"{API}/contacts/{CONTACT_ID}").mock(
        side_effect=[
            httpx.Response(200, json=full_contact("subscribed", "subscribed")),
            httpx.Response(200, json=full_contact("unsubscribed", "unsubscribed")),
        ]
    )
    patch = respx.patch(f"{API}/contacts/{CONTACT_ID}").respond(200, json={})

    first = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)
    again = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)  # nothing subscribed: no PATCH

    assert first == again and first.outcome is Outcome.SUPPRESSED and patch.call_count == 1
    # Nothing is reported removed: there is no DELETE and no documented way to clear fields.
    assert first.removed == () and first.still_held == MK1_FIELDS
    assert "still held at the provider: name, phone, address, profile_properties, activity_history" in (
        first.detail
    )
    sent = json.loads(patch.calls.last.request.content)
    assert sent == {
        "identifiers": [
            {"type": "email", "id": EMAIL, "channels": {"email": {"status": "unsubscribed"}}},
            {"type": "phone", "id": "+46701234567", "channels": {"sms": {"status": "unsubscribed"}}},
        ]
    }
    assert outbox.sent == [] and "DELETE" not in {c.request.method for c in respx.calls}


@respx.mock
async def test_reduce_of_an_unknown_contact_is_already_absent() -> None:
    adapter, outbox, _ = build(Omnisend, api_key="om-key")
    respx.get(f"{API}/contacts/{CONTACT_ID}").respond(404, json=PROBLEM)

    assert (await adapter.reduce(NOBODY, HOLDING, ())).outcome is Outcome.ALREADY_ABSENT
    assert outbox.sent == [] and {c.request.method for c in respx.calls} == {"GET"}


@respx.mock
async def test_reduce_honours_throttling_and_names_a_rejected_key() -> None:
    adapter, _, sleeps = build(Omnisend, api_key="om-key")
    respx.get(f"{API}/contacts/{CONTACT_ID}").respond(200, json=full_contact("subscribed", "unsubscribed"))
    patch = respx.patch(f"{API}/contacts/{CONTACT_ID}")
    await assert_throttling_honoured(
        patch, httpx.Response(200, json={}), lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS), sleeps
    )
    await assert_auth_failure_named(
        patch, lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS), "omnisend", "api_key"
    )
