"""Shipmondo against its bundled OpenAPI (shipmondo-cli): sales orders by ship-to/bill-to e-mail
and order number, DELETE → 204, a second DELETE → 404 `Resource not found`."""

from __future__ import annotations

import base64

import httpx
import respx

from adapters.base import Outcome
from adapters.shipmondo import Shipmondo
from plugin.holdings import Category, Holding
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://app.shipmondo.com/api/public/v3"
ORDER = {"id": 9001, "order_id": "1001", "ship_to": {"name": "Anna", "email": EMAIL}, "order_status": "open"}
NOT_FOUND = {"error": "Resource not found"}


def shipmondo() -> tuple[Shipmondo, RecordingChannel, Waits]:
    return build(Shipmondo, api_user="3b1c-user", api_key="9f2d-key")


@respx.mock
async def test_finds_sales_orders_by_email_and_order_number_and_deletes_them() -> None:
    adapter, _, _ = shipmondo()
    by_ship_to = respx.get(f"{API}/sales_orders", params={"ship_to_email": EMAIL}).respond(200, json=[ORDER])
    respx.get(f"{API}/sales_orders", params={"bill_to_email": EMAIL}).respond(200, json=[ORDER])
    by_number = respx.get(f"{API}/sales_orders", params={"order_id": "1001"}).respond(200, json=[ORDER])
    delete = respx.delete(f"{API}/sales_orders/9001").respond(204)
    [holding] = await adapter.find(subject(("#1001", "PostNord", "00370712345678901234")))
    assert holding.ref == "sales_order:9001" and by_number.called
    expected = "Basic " + base64.b64encode(b"3b1c-user:9f2d-key").decode()
    assert by_ship_to.calls.last.request.headers["Authorization"] == expected
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED and delete.called


@respx.mock
async def test_nothing_found_and_repeated_erase_is_already_absent() -> None:
    adapter, _, _ = shipmondo()
    respx.get(f"{API}/sales_orders").respond(200, json=[])
    assert await adapter.find(subject()) == [] and await adapter.export(subject()) == {}
    respx.delete(f"{API}/sales_orders/9001").mock(
        side_effect=[httpx.Response(204), httpx.Response(404, json=NOT_FOUND)]
    )
    holding = Holding("shipmondo", Category.SHIPMENT, "sales_order:9001", "Shipmondo sales order 1001")
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ERASED
    assert (await adapter.erase(subject(), holding)).outcome is Outcome.ALREADY_ABSENT


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = shipmondo()
    route = respx.delete(f"{API}/sales_orders/9001")
    holding = Holding("shipmondo", Category.SHIPMENT, "sales_order:9001", "Shipmondo sales order 1001")
    await assert_throttling_honoured(
        route, httpx.Response(204), lambda: adapter.erase(subject(), holding), sleeps
    )


@respx.mock
async def test_rejected_credentials_name_the_settings() -> None:
    adapter, _, _ = shipmondo()
    route = respx.get(f"{API}/sales_orders", params={"per_page": "1"})
    await assert_auth_failure_named(route, adapter.check, "shipmondo", "api_user", "api_key")
