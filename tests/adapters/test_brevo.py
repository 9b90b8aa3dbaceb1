"""Brevo against its documented shapes (developers.brevo.com): contact look-up by e-mail, delete by
contact id, 404 `document_not_found` as absent, 429 timed by `x-sib-ratelimit-reset`."""

from __future__ import annotations

import json

import httpx
import respx

from adapters.base import Outcome
from adapters.brevo import Brevo
from plugin.holdings import Category, Holding, Subject
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://api.brevo.com/v3"
LOOKUP = f"{API}/contacts/anna.svensson%40example.se"
CONTACT = {
    "id": 42,
    "email": EMAIL,
    "emailBlacklisted": False,
    "listIds": [3],
    "attributes": {"FIRSTNAME": "Anna"},
}
MISSING = {"code": "document_not_found", "message": "Contact does not exist"}


def brevo() -> tuple[Brevo, RecordingChannel, Waits]:
    return build(Brevo, api_key="xkeysib-1")


@respx.mock
async def test_finds_the_contact_and_deletes_it() -> None:
    adapter, _, _ = brevo()
    lookup = respx.get(LOOKUP, params={"identifierType": "email_id"}).respond(200, json=CONTACT)
    delete = respx.delete(f"{API}/contacts/42", params={"identifierType": "contact_id"}).respond(204)
    [holding] = await adapter.find(subject())
    assert holding.ref == "contact:42" and lookup.calls.last.request.headers["api-key"] == "xkeysib-1"
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED
    assert delete.called
    assert (await adapter.export(subject()))["contact"]["listIds"] == [3]


@respx.mock
async def test_unknown_contact_and_repeated_erase_are_already_absent() -> None:
    adapter, _, _ = brevo()
    respx.get(LOOKUP).mock(side_effect=[httpx.Response(200, json=CONTACT), httpx.Response(404, json=MISSING)])
    respx.delete(f"{API}/contacts/42").mock(
        side_effect=[httpx.Response(204), httpx.Response(404, json=MISSING)]
    )
    [holding] = await adapter.find(subject())
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ALREADY_ABSENT
    assert await adapter.find(subject()) == []


@respx.mock
async def test_throttling_honours_retry_after_and_the_reset_header() -> None:
    adapter, _, sleeps = brevo()
    route = respx.get(LOOKUP)
    await assert_throttling_honoured(
        route, httpx.Response(200, json=CONTACT), lambda: adapter.find(subject()), sleeps
    )
    # Brevo's 429 usually has no Retry-After: x-sib-ratelimit-reset says when the window reopens.
    route.side_effect = [
        httpx.Response(429, headers={"x-sib-ratelimit-reset": "3"}),
        httpx.Response(200, json=CONTACT),
    ]
    assert len(await adapter.find(subject())) == 1
    assert sleeps.slept[-1] == 3.0


@respx.mock
async def test_rejected_key_names_the_setting() -> None:
    adapter, _, _ = brevo()
    route = respx.get(f"{API}/account")
    await assert_auth_failure_named(route, adapter.check, "brevo", "api_key")


@respx.mock
async def test_contact_is_erased_by_id_for_a_subject_without_an_address() -> None:
    # A sweep's (or a request's) holding names the contact id; the delete needs no e-mail.
    adapter, _, _ = brevo()
    delete = respx.delete(f"{API}/contacts/42", params={"identifierType": "contact_id"}).respond(204)
    nobody = Subject(shop_domain="butik-a.myshopify.com")
    result = await adapter.erase(nobody, Holding("brevo", Category.NEWSLETTER, "contact:42", "Brevo contact"))
    assert result.outcome is Outcome.ERASED and delete.called


def test_brevo_offers_no_sweep() -> None:
    # Brevo's contact listing has `emailBlacklisted` but no unsubscribe date (`modifiedAt` moves on
    # any update), and a contact's statistics cover at most 90 days a call.
    assert Brevo.can_sweep is False


NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # a swept holding: no address, only the id
HOLDING = Holding("brevo", Category.NEWSLETTER, "contact:42", "Brevo contact")


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


@respx.mock
async def test_reduce_blocklists_the_contact_and_names_what_brevo_still_holds() -> None:
    adapter, _, _ = brevo()
    update = respx.put(f"{API}/contacts/42", params={"identifierType": "contact_id"}).respond(204)

    first = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)
    again = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)  # setting the flags twice is harmless

    assert first == again and first.outcome is Outcome.SUPPRESSED and update.call_count == 2
    assert json.loads(update.calls.last.request.content) == {"emailBlacklisted": True, "smsBlacklisted": True}
    assert {c.request.method for c in respx.calls} == {"PUT"}  # never DELETE: it drops the blocklist
    # Nothing is reported removed: Brevo documents no call that clears attributes.
    assert first.removed == () and first.still_held == MK1_FIELDS
    assert "still held at the provider: name, phone, address, profile_properties, activity_history" in (
        first.detail
    )
    assert "blocklist" in first.detail and first.provider_ref == "42"


@respx.mock
async def test_reduce_of_an_unknown_contact_is_already_absent() -> None:
    adapter, _, _ = brevo()
    respx.put(f"{API}/contacts/42").respond(404, json=MISSING)

    assert (await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)).outcome is Outcome.ALREADY_ABSENT
    assert {c.request.method for c in respx.calls} == {"PUT"}


@respx.mock
async def test_reduce_honours_throttling_and_names_a_rejected_key() -> None:
    adapter, _, sleeps = brevo()
    route = respx.put(f"{API}/contacts/42")
    await assert_throttling_honoured(
        route, httpx.Response(204), lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS), sleeps
    )
    await assert_auth_failure_named(
        route, lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS), "brevo", "api_key"
    )


def test_brevo_offers_reduce() -> None:
    assert Brevo.can_reduce is True
