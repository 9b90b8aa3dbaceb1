"""Voyado Engage against its documented shapes: contact id by e-mail, delete by id, the mandatory
User-Agent and apikey headers."""

from __future__ import annotations

import httpx
import respx

from adapters.base import Outcome
from adapters.voyado import Voyado
from plugin.holdings import Category, Holding, Subject
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://butik.voyado.com/api/v2"
CONTACT_ID = "6a1f5f2c-0c7e-4f39-b1c4-2d4e5f6a7b8c"


def voyado() -> tuple[Voyado, RecordingChannel, Waits]:
    return build(Voyado, api_key="vy-key", tenant="butik")


@respx.mock
async def test_finds_the_contact_and_deletes_it() -> None:
    adapter, _, _ = voyado()
    lookup = respx.get(f"{API}/contacts/id", params={"email": EMAIL}).respond(200, json=CONTACT_ID)
    respx.get(f"{API}/contacts/{CONTACT_ID}").respond(200, json={"id": CONTACT_ID, "email": EMAIL})
    delete = respx.delete(f"{API}/contacts/{CONTACT_ID}").respond(204)
    [holding] = await adapter.find(subject())
    headers = lookup.calls.last.request.headers
    assert headers["apikey"] == "vy-key" and headers["User-Agent"].startswith("Gallra/")
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED and delete.called
    assert (await adapter.export(subject()))["contact"]["id"] == CONTACT_ID


@respx.mock
async def test_unknown_contact_and_repeated_erase_are_already_absent() -> None:
    adapter, _, _ = voyado()
    respx.get(f"{API}/contacts/id").mock(
        side_effect=[httpx.Response(200, json=CONTACT_ID), httpx.Response(404)]
    )
    respx.delete(f"{API}/contacts/{CONTACT_ID}").mock(side_effect=[httpx.Response(204), httpx.Response(404)])
    [holding] = await adapter.find(subject())
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ALREADY_ABSENT
    assert await adapter.find(subject()) == []


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = voyado()
    route = respx.get(f"{API}/contacts/id")
    await assert_throttling_honoured(
        route, httpx.Response(200, json=CONTACT_ID), lambda: adapter.find(subject()), sleeps
    )


@respx.mock
async def test_rejected_key_names_the_setting() -> None:
    adapter, _, _ = voyado()
    route = respx.get(f"{API}/contacts/id", params={"email": "connection-check@gallra.invalid"})
    await assert_auth_failure_named(route, adapter.check, "voyado", "api_key")
    route.side_effect = None
    route.respond(404)
    await adapter.check()


NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # a swept holding: no address, only the id
HOLDING = Holding("voyado", Category.NEWSLETTER, f"contact:{CONTACT_ID}", "Voyado contact")


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


@respx.mock
async def test_reduce_unsubscribes_from_e_mail_and_names_what_voyado_still_holds() -> None:
    adapter, _, _ = voyado()
    unsubscribe = respx.post(f"{API}/contacts/{CONTACT_ID}/unsubscribeEmail").respond(200, json=True)

    first = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)
    again = await adapter.reduce(NOBODY, HOLDING, MK1_FIELDS)

    assert first == again and first.outcome is Outcome.SUPPRESSED and unsubscribe.call_count == 2
    assert unsubscribe.calls.last.request.headers["User-Agent"] == "Gallra/0.1"
    assert unsubscribe.calls.last.request.content == b""
    assert {c.request.method for c in respx.calls} == {"POST"}  # never DELETE
    assert first.removed == () and first.still_held == MK1_FIELDS
    assert "still held at the provider: name, phone, address, profile_properties, activity_history" in (
        first.detail
    )


@respx.mock
async def test_reduce_honours_throttling_and_names_a_rejected_key() -> None:
    adapter, _, sleeps = voyado()
    unsubscribe = respx.post(f"{API}/contacts/{CONTACT_ID}/unsubscribeEmail")
    await assert_throttling_honoured(
        unsubscribe,
        httpx.Response(200, json=True),
        lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS),
        sleeps,
    )
    await assert_auth_failure_named(
        unsubscribe, lambda: adapter.reduce(NOBODY, HOLDING, MK1_FIELDS), "voyado", "api_key"
    )


@respx.mock
async def test_reduce_of_an_unknown_contact_is_already_absent() -> None:
    adapter, _, _ = voyado()
    respx.post(f"{API}/contacts/{CONTACT_ID}/unsubscribeEmail").respond(404)

    assert (await adapter.reduce(NOBODY, HOLDING, ())).outcome is Outcome.ALREADY_ABSENT
    assert {c.request.method for c in respx.calls} == {"POST"}
