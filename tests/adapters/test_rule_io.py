"""Rule.io against its documented shapes (rulecom/rule-io-sdk): look-up by e-mail on v2, delete by
id on v3, 404 as absent, 429 with either Retry-After form, 4xx never retried."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from adapters.base import Outcome, PermanentFailure
from adapters.rule_io import RuleIo
from plugin.holdings import Category, Holding, Subject
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_no_personal_data,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://app.rule.io/api"
LOOKUP = f"{API}/v2/subscribers/anna.svensson%40example.se"
SUBSCRIBER = {
    "subscriber": {"id": 4711, "email": EMAIL, "opted_in": True, "tags": [{"id": 1, "name": "Newsletter"}]}
}


def rule_io() -> tuple[RuleIo, RecordingChannel, Waits]:
    return build(RuleIo, api_key="rule-key")


@respx.mock
async def test_finds_the_subscriber_and_deletes_it_by_id() -> None:
    adapter, _, _ = rule_io()
    lookup = respx.get(LOOKUP, params={"identified_by": "email"}).respond(200, json=SUBSCRIBER)
    delete = respx.delete(f"{API}/v3/subscribers/4711", params={"identified_by": "id"}).respond(204)
    [holding] = await adapter.find(subject())
    assert (holding.system, holding.category, holding.ref) == (
        "rule_io",
        Category.NEWSLETTER,
        "subscriber:4711",
    )
    assert lookup.calls.last.request.headers["Authorization"] == "Bearer rule-key"
    result = await adapter.erase(subject(), holding)
    assert result.outcome is Outcome.ERASED and result.provider_ref == "4711"
    assert delete.called and EMAIL not in str(delete.calls.last.request.url)
    assert (await adapter.export(subject()))["subscriber"]["id"] == 4711


@respx.mock
async def test_unknown_subscriber_is_nothing_held() -> None:
    adapter, _, _ = rule_io()
    respx.get(LOOKUP).respond(404, json={"error": "Subscriber not found"})
    assert await adapter.find(subject()) == []
    assert await adapter.export(subject()) == {}


@respx.mock
async def test_repeated_erase_is_already_absent() -> None:
    adapter, _, _ = rule_io()
    respx.get(LOOKUP).respond(200, json=SUBSCRIBER)
    respx.delete(f"{API}/v3/subscribers/4711").mock(side_effect=[httpx.Response(204), httpx.Response(404)])
    [holding] = await adapter.find(subject())
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ALREADY_ABSENT


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = rule_io()
    route = respx.get(LOOKUP)
    await assert_throttling_honoured(
        route, httpx.Response(200, json=SUBSCRIBER), lambda: adapter.find(subject()), sleeps
    )


@respx.mock
async def test_retry_after_in_stockholm_local_time_is_understood() -> None:
    adapter, _, sleeps = rule_io()
    soon = datetime.now(UTC) + timedelta(seconds=20)
    local = soon.astimezone(ZoneInfo("Europe/Stockholm")).strftime("%Y-%m-%d %H:%M:%S")
    respx.get(LOOKUP).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": local}),
            httpx.Response(200, json=SUBSCRIBER),
        ]
    )
    assert len(await adapter.find(subject())) == 1
    assert len(sleeps.slept) == 1 and 15.0 <= sleeps.slept[0] <= 20.0


@respx.mock
async def test_client_errors_are_not_retried_because_of_the_error_rate_block() -> None:
    adapter, _, sleeps = rule_io()
    route = respx.get(LOOKUP).respond(422, json={"errors": {"identifier": [f"{EMAIL} is invalid"]}})
    with pytest.raises(PermanentFailure) as caught:
        await adapter.find(subject())
    assert route.call_count == 1 and sleeps.slept == []
    assert_no_personal_data(str(caught.value))
    # A 500 is not retried either: it would only add to the error rate.
    route.respond(500)
    with pytest.raises(PermanentFailure):
        await adapter.find(subject())
    assert route.call_count == 2


@respx.mock
async def test_rejected_key_names_the_setting() -> None:
    adapter, _, _ = rule_io()
    route = respx.get(f"{API}/v2/subscribers", params={"limit": "1"})
    await assert_auth_failure_named(route, adapter.check, "rule_io", "api_key")
    route.side_effect = None
    route.respond(200, json={"subscribers": []})
    await adapter.check()


@respx.mock
async def test_subscriber_is_erased_by_id_for_a_subject_without_an_address() -> None:
    adapter, _, _ = rule_io()
    delete = respx.delete(f"{API}/v3/subscribers/4711", params={"identified_by": "id"}).respond(204)
    nobody = Subject(shop_domain="butik-a.myshopify.com")
    holding = Holding("rule_io", Category.NEWSLETTER, "subscriber:4711", "Rule.io subscriber")
    assert (await adapter.erase(nobody, holding)).outcome is Outcome.ERASED and delete.called


def test_rule_io_offers_no_sweep() -> None:
    # Rule.io's subscriber list says `suppressed` but not since when, and suppressions cannot be
    # listed (only created and deleted).
    assert RuleIo.can_sweep is False


NOBODY = Subject(shop_domain="butik-a.myshopify.com")  # a swept holding: no address, only the id
SUBSCRIBED = Holding("rule_io", Category.NEWSLETTER, "subscriber:4711", "Rule.io subscriber")


MK1_FIELDS = ("name", "phone", "address", "profile_properties", "activity_history")


@respx.mock
async def test_reduce_suppresses_by_id_on_every_channel_and_names_what_rule_io_still_holds() -> None:
    adapter, _, _ = build(RuleIo, api_key="rk")
    lookup = respx.get(f"{API}/v2/subscribers/4711", params={"identified_by": "id"}).respond(
        200, json=SUBSCRIBER
    )
    suppress = respx.post(f"{API}/v3/suppressions/").respond(204)

    first = await adapter.reduce(NOBODY, SUBSCRIBED, MK1_FIELDS)
    again = await adapter.reduce(NOBODY, SUBSCRIBED, MK1_FIELDS)  # Rule.io skips the suppressed

    assert first == again and first.outcome is Outcome.SUPPRESSED
    assert lookup.call_count == 2 and suppress.call_count == 2
    # By id, no address, and no message_types: all marketing channels.
    assert json.loads(suppress.calls.last.request.content) == {"subscribers": [{"id": 4711}]}
    assert {c.request.method for c in respx.calls} == {"GET", "POST"}  # never DELETE
    assert first.removed == () and first.still_held == MK1_FIELDS
    assert "still held at the provider: name, phone, address, profile_properties, activity_history" in (
        first.detail
    )


@respx.mock
async def test_reduce_honours_throttling_and_names_a_rejected_key() -> None:
    adapter, _, sleeps = build(RuleIo, api_key="rk")
    respx.get(f"{API}/v2/subscribers/4711").respond(200, json=SUBSCRIBER)
    suppress = respx.post(f"{API}/v3/suppressions/")
    await assert_throttling_honoured(
        suppress, httpx.Response(204), lambda: adapter.reduce(NOBODY, SUBSCRIBED, MK1_FIELDS), sleeps
    )
    await assert_auth_failure_named(
        suppress, lambda: adapter.reduce(NOBODY, SUBSCRIBED, MK1_FIELDS), "rule_io", "api_key"
    )


@respx.mock
async def test_reduce_of_an_unknown_subscriber_is_already_absent_and_suppresses_nothing() -> None:
    adapter, _, _ = build(RuleIo, api_key="rk")
    respx.get(f"{API}/v2/subscribers/4711").respond(404, json={"error": "Subscriber not found"})
    suppress = respx.post(f"{API}/v3/suppressions/").respond(204)

    assert (await adapter.reduce(NOBODY, SUBSCRIBED, ())).outcome is Outcome.ALREADY_ABSENT
    assert not suppress.called and {c.request.method for c in respx.calls} == {"GET"}


async def test_reduce_rejects_a_foreign_ref() -> None:
    adapter, _, _ = build(RuleIo, api_key="rk")
    with pytest.raises(PermanentFailure):
        await adapter.reduce(NOBODY, Holding("rule_io", Category.NEWSLETTER, "contact:x", "x"), ())
