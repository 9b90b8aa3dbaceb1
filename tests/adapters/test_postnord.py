"""PostNord through the e-mail channel (provider-apis.md §2.1), and its optional tracking API."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import respx

from adapters.base import Adapter, AuthFailed, Outcome, PermanentFailure
from adapters.email_request import EmailRequestConfig, EmailRequests
from adapters.postnord import PostNord
from adapters.shopify_holdings import order_holdings
from plugin.holdings import Category, Shipment, Subject
from plugin.shopify.records import FulfillmentRecord, OrderRecord, TrackingInfo
from tests.adapters.conftest import RecordingChannel, Waits

TRACKING_URL = "https://api2.postnord.com/rest/shipment/v5/trackandtrace/findByIdentifier.json"

SHIPMENTS = (
    Shipment(1001, "#1001", "PostNord Sverige AB", "RR123456789SE", created=date(2025, 3, 4)),
    Shipment(
        1002, "#1002", "Postnord DK", "00370730253", created=date(2025, 5, 6), delivered=date(2025, 5, 8)
    ),
    Shipment(1003, "#1003", "DHL Express", "JD0001"),
)
ANNA = Subject(
    shop_domain="butik-a.myshopify.com",
    customer_id=7,
    email="anna@example.se",
    phone="+46701234567",
    shipments=SHIPMENTS,
)


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
def postnord(make_adapter: Any, channel: RecordingChannel) -> PostNord:
    adapter = make_adapter(PostNord, email=channel)
    assert isinstance(adapter, PostNord)
    return adapter


async def test_find_takes_the_subjects_postnord_shipments_whatever_the_spelling(postnord: PostNord) -> None:
    held = await postnord.find(ANNA)

    assert [(h.system, h.category, h.ref) for h in held] == [
        ("postnord", Category.SHIPMENT, "shipment:1001:RR123456789SE"),
        ("postnord", Category.SHIPMENT, "shipment:1002:00370730253"),
    ]
    assert held[1].delivered == date(2025, 5, 8)


async def test_holdings_meet_the_ones_shopify_orders_give(postnord: PostNord) -> None:
    order = OrderRecord(
        id=1001,
        name="#1001",
        created_at=datetime(2025, 3, 1, tzinfo=UTC),
        fulfillments=(
            FulfillmentRecord(
                1,
                "SUCCESS",
                datetime(2025, 3, 4, tzinfo=UTC),
                None,
                (TrackingInfo("PostNord", "RR123456789SE"),),
            ),
        ),
    )
    from_shopify = {
        (h.system, h.ref) for h in order_holdings(order, "Europe/Stockholm") if h.system == "postnord"
    }

    from_adapter = {(h.system, h.ref) for h in await postnord.find(ANNA)}

    assert from_shopify <= from_adapter


async def test_erase_e_mails_one_swedish_art_17_request_for_all_shipments(
    postnord: PostNord, channel: RecordingChannel
) -> None:
    held = await postnord.find(ANNA)

    results = [await postnord.erase(ANNA, h) for h in held]

    assert {r.outcome for r in results} == {Outcome.REQUEST_SENT}
    assert {r.provider_ref for r in results} == {"GAL-0001"}  # one e-mail for both shipments
    (sent,) = channel.sent
    assert sent["to"] == "dataprotectionofficer@postnord.com"
    assert sent["reply_to"] == "owner@butik-a.se"
    assert sent["subject"].startswith("Begäran om radering av personuppgifter (GDPR art. 17)")
    assert "{reference}" in sent["subject"] and "{reference}" in sent["body"]  # the outbox fills it in
    body = sent["body"]
    assert "artikel 17" in body and "Butik A (butik-a.myshopify.com)" in body
    assert "RR123456789SE" in body and "00370730253" in body and "JD0001" not in body
    # The delivery date the shipment holding keeps (the executor rebuilds shipments from holdings).
    assert "levererad 2025-05-08" in body and "levererad okänt datum" in body and "#1002" in body
    assert "anna@example.se" in body and "+46701234567" in body
    assert "owner@butik-a.se" in body
    assert "anna" not in results[0].detail  # certificate text holds no personal data


async def test_repeated_erase_does_not_send_again(postnord: PostNord, channel: RecordingChannel) -> None:
    (holding, _) = await postnord.find(ANNA)

    first = await postnord.erase(ANNA, holding)
    second = await postnord.erase(ANNA, holding)

    assert first == second and len(channel.sent) == 1


async def test_shop_can_override_address_and_language(make_adapter: Any, channel: RecordingChannel) -> None:
    adapter = make_adapter(PostNord, email=channel, privacy_email="kundservice@postnord.se", language="en")
    (holding, _) = await adapter.find(ANNA)

    await adapter.erase(ANNA, holding)

    (sent,) = channel.sent
    assert sent["to"] == "kundservice@postnord.se"
    assert sent["subject"].startswith("Request for erasure of personal data (GDPR Art. 17)")
    assert "Article 17" in sent["body"]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        PostNord.Config.model_validate({"privacy_email": "postnord"})
    with pytest.raises(ValueError, match="available"):
        PostNord.Config.model_validate({"language": "xx"})


def test_language_follows_the_carriers_country() -> None:
    class Elsewhere(Adapter[EmailRequestConfig]):
        name = "test_elsewhere_carrier"
        title = "Test"
        category = Category.SHIPMENT
        mail = EmailRequests(country="ZZ", address=None)  # no template for its language: English

    adapter = Elsewhere(EmailRequestConfig(), None)  # type: ignore[arg-type]
    assert adapter.mail.language(adapter) == "en"


async def test_holding_missing_from_the_subject_is_still_named(
    postnord: PostNord, channel: RecordingChannel
) -> None:
    bare = Subject(shop_domain="butik-a.myshopify.com", email="anna@example.se")
    (holding, _) = await postnord.find(ANNA)

    result = await postnord.erase(bare, holding)

    assert result.outcome is Outcome.REQUEST_SENT
    assert "RR123456789SE" in channel.sent[0]["body"]


async def test_nothing_to_identify_the_recipient_is_refused(postnord: PostNord) -> None:
    from plugin.holdings import Holding

    with pytest.raises(PermanentFailure):
        await postnord.erase(
            Subject(shop_domain="s"), Holding("postnord", Category.SHIPMENT, "something-else", "x")
        )


async def test_no_e_mail_channel_is_a_clear_failure(make_adapter: Any) -> None:
    adapter = make_adapter(PostNord)
    (holding, _) = await adapter.find(ANNA)

    with pytest.raises(PermanentFailure, match="e-mail channel"):
        await adapter.erase(ANNA, holding)
    with pytest.raises(PermanentFailure):
        await adapter.check()


async def test_find_nothing_for_other_carriers(postnord: PostNord) -> None:
    assert await postnord.find(Subject(shop_domain="s", shipments=(SHIPMENTS[2],))) == []


async def test_export_without_api_key_lists_what_postnord_received(postnord: PostNord) -> None:
    exported = await postnord.export(ANNA)

    assert exported["privacy_address"] == "dataprotectionofficer@postnord.com"
    assert [s["tracking_number"] for s in exported["shipments"]] == ["RR123456789SE", "00370730253"]
    assert "postnord_tracking" not in exported["shipments"][0]


async def test_export_is_empty_when_postnord_received_nothing(postnord: PostNord) -> None:
    """No shipment of the subject's went by PostNord: it knows nothing of them, and the register
    extract must not list it as a recipient."""
    assert await postnord.export(Subject(shop_domain="s", shipments=(SHIPMENTS[2],))) == {}


async def test_export_with_api_key_adds_tracking_and_survives_throttling_and_not_found(
    make_adapter: Any, channel: RecordingChannel, waits: Waits
) -> None:
    adapter = make_adapter(PostNord, email=channel, api_key="nord-key")
    with respx.mock:
        route = respx.get(TRACKING_URL).mock(
            side_effect=[
                respx.MockResponse(429, headers={"Retry-After": "1"}),
                respx.MockResponse(200, json={"TrackingInformationResponse": {"shipments": [{"id": "x"}]}}),
                respx.MockResponse(404),
            ]
        )
        exported = await adapter.export(ANNA)

    first, second = exported["shipments"]
    assert first["postnord_tracking"] == {"TrackingInformationResponse": {"shipments": [{"id": "x"}]}}
    assert second["postnord_tracking"] is None  # unknown at PostNord
    assert waits.slept == [1.0]
    assert route.calls[0].request.url.params["apikey"] == "nord-key"
    assert route.calls[1].request.url.params["id"] == "RR123456789SE"


async def test_bad_api_key_names_the_setting(make_adapter: Any, channel: RecordingChannel) -> None:
    adapter = make_adapter(PostNord, email=channel, api_key="nord-bad")
    with respx.mock:
        respx.get(TRACKING_URL).respond(401)
        with pytest.raises(AuthFailed) as raised:
            await adapter.check()

    assert "postnord" in str(raised.value) and "api_key" in str(raised.value)
    assert "nord-bad" not in str(raised.value)


# A retention sweep's request names no one: its "subject" carries only the group's shipments.
SWEPT = Subject(shop_domain="butik-a.myshopify.com", shipments=SHIPMENTS)
# What each language's customer template says about a customer asking, and its storage-limitation
# citation: a sweep's e-mail must have the second and none of the first.
ASKED = {
    "sv": ("kund", "begärt"),
    "en": ("customer", "asked"),
    "fi": ("asiakk", "pyytänyt"),
    "no": ("kunde", "bedt om"),
    "da": ("kunde", "bedt om"),
    "de": ("kund", "verlangt"),
}
STORAGE_LIMITATION = {
    "sv": "artikel 5.1 e",
    "en": "Article 5(1)(e)",
    "fi": "5 artiklan 1 kohdan e alakohta",
    "no": "artikkel 5 nr. 1 bokstav e",
    "da": "artikel 5, stk. 1, litra e",
    "de": "Art. 5 Abs. 1 lit. e",
}


@pytest.mark.parametrize("language", sorted(ASKED))
async def test_a_sweep_request_says_the_retention_period_ended_in_every_language(
    make_adapter: Any, channel: RecordingChannel, language: str
) -> None:
    adapter = make_adapter(PostNord, email=channel, language=language)
    held = await adapter.find(SWEPT)

    results = [await adapter.erase(SWEPT, h) for h in held]

    assert {r.provider_ref for r in results} == {"GAL-0001"}  # one e-mail for the group
    (sent,) = channel.sent
    body, subject = sent["body"], sent["subject"]
    assert not any(word in (subject + body).lower() for word in ASKED[language])
    assert STORAGE_LIMITATION[language] in body and "17" in subject and "{reference}" in subject
    assert "RR123456789SE" in body and "00370730253" in body and "JD0001" not in body
    assert "(2)" in body and "{reference}" in body and "owner@butik-a.se" in body
    # The customer wording is untouched for a customer's request in the same language.
    await adapter.erase(ANNA, held[0])
    assert any(word in channel.sent[-1]["body"].lower() for word in ASKED[language])
