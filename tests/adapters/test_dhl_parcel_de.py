"""DHL Parcel DE against the Shipping API v2 (OAS 2.1.8): cancel by shipment number before the
manifest; "Unknown shipment number" as already absent; manifested shipments asked for by e-mail."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime

import httpx
import respx

from adapters.base import Outcome
from adapters.dhl_parcel_de import DhlParcelDe
from adapters.shopify_holdings import order_holdings
from plugin.holdings import Shipment
from plugin.shopify.records import FulfillmentRecord, OrderRecord, TrackingInfo
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import assert_auth_failure_named, assert_throttling_honoured, build, subject

API = "https://api-eu.dhl.com/parcel/de/shipping/v2"
NUMBER = "340434310428091700"
CUSTOMER = subject(("#1001", "DHL Paket", NUMBER), ("#1002", "PostNord", "00370712345678901234"))
QUERY = {"profile": "STANDARD_GRUPPENPROFIL", "shipment": NUMBER}


def reply(status: int, title: str) -> httpx.Response:
    item = {"shipmentNo": NUMBER, "sstatus": {"title": title, "status": status}}
    return httpx.Response(status, json={"status": {"title": title, "status": status}, "items": [item]})


def dhl() -> tuple[DhlParcelDe, RecordingChannel, Waits]:
    return build(DhlParcelDe, api_key="app-key", username="user-1", password="pw")


@respx.mock
async def test_shipments_come_from_shopify_and_are_cancelled_before_the_manifest() -> None:
    adapter, outbox, _ = dhl()
    route = respx.delete(f"{API}/orders", params=QUERY).mock(return_value=reply(200, "OK"))
    [holding] = await adapter.find(CUSTOMER)  # the PostNord shipment is not DHL's
    assert holding.ref == f"shipment:1000:{NUMBER}"  # the ref Shopify's order holdings give it
    result = await adapter.erase(CUSTOMER, holding)
    assert result.outcome is Outcome.CANCELLED and outbox.sent == []
    request = route.calls.last.request
    assert request.headers["dhl-api-key"] == "app-key"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"user-1:pw").decode()


@respx.mock
async def test_repeated_cancel_is_already_absent() -> None:
    adapter, _, _ = dhl()
    respx.delete(f"{API}/orders").mock(side_effect=[reply(200, "OK"), reply(400, "Unknown shipment number")])
    [holding] = await adapter.find(CUSTOMER)
    assert (await adapter.erase(CUSTOMER, holding)).outcome is Outcome.CANCELLED
    assert (await adapter.erase(CUSTOMER, holding)).outcome is Outcome.ALREADY_ABSENT
    assert await adapter.find(subject(("#1003", "GLS", "123"))) == []


@respx.mock
async def test_manifested_shipment_is_asked_for_by_email_in_german() -> None:
    adapter, outbox, _ = dhl()
    respx.delete(f"{API}/orders").mock(return_value=reply(400, "Shipment is already manifested"))
    [holding] = await adapter.find(CUSTOMER)
    result = await adapter.erase(CUSTOMER, holding)
    assert result.outcome is Outcome.REQUEST_SENT
    [mail] = outbox.sent
    assert mail["to"] == "datenschutz@dpdhl.com" and mail["subject"].startswith("Antrag auf Löschung")
    assert NUMBER in mail["body"]


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = dhl()
    [holding] = await adapter.find(CUSTOMER)
    route = respx.delete(f"{API}/orders")
    await assert_throttling_honoured(
        route, reply(200, "OK"), lambda: adapter.erase(CUSTOMER, holding), sleeps
    )


@respx.mock
async def test_rejected_credentials_name_the_settings() -> None:
    adapter, _, _ = dhl()
    route = respx.get(f"{API}/orders", params={"shipment": "0"})
    await assert_auth_failure_named(route, adapter.check, "dhl_parcel_de", "api_key", "username", "password")
    route.side_effect = None
    route.respond(400, json={"status": {"title": "Bad Request", "status": 400}})
    await adapter.check()


@respx.mock
async def test_erases_the_holding_shopify_gave_with_the_subject_the_executor_rebuilds() -> None:
    adapter, outbox, _ = dhl()
    order = OrderRecord(
        id=5550001,
        name="#1001",
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        fulfillments=(
            FulfillmentRecord(
                1, "SUCCESS", datetime(2026, 3, 2, tzinfo=UTC), None, (TrackingInfo("DHL Paket", NUMBER),)
            ),
        ),
    )
    [holding] = [h for h in order_holdings(order, "Europe/Berlin") if h.system == "dhl_parcel_de"]
    # What the executor hands over at erase time: shipments rebuilt from the steps, no dates.
    rebuilt = dataclasses.replace(CUSTOMER, shipments=(Shipment(5550001, "#1001", "dhl_parcel_de", NUMBER),))
    route = respx.delete(f"{API}/orders", params=QUERY).mock(
        return_value=reply(400, "Shipment already closed")
    )
    assert (await adapter.erase(rebuilt, holding)).outcome is Outcome.REQUEST_SENT and route.called
    assert NUMBER in outbox.sent[0]["body"] and "#1001" in outbox.sent[0]["body"]
    assert {h.ref for h in await adapter.find(rebuilt)} == {holding.ref}


async def test_export_lists_the_shipments_dhl_received() -> None:
    adapter, _, _ = dhl()
    exported = await adapter.export(CUSTOMER)
    assert exported["channel"] == "email" and exported["processor"] == DhlParcelDe.title
    assert [(s["order"], s["tracking_number"]) for s in exported["shipments"]] == [("#1001", NUMBER)]
