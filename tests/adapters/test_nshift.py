"""nShift Delivery against the Unifaun REST API: stored shipments searched by order number and
deleted (204, then 404); printed shipments, which the API cannot delete, asked for by e-mail."""

from __future__ import annotations

import httpx
import respx

from adapters.base import Outcome
from adapters.nshift import NShift
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import (
    EMAIL,
    assert_auth_failure_named,
    assert_throttling_honoured,
    build,
    subject,
)

API = "https://api.unifaun.com/rs-extapi/v1"
STORED = [
    {"id": "4127538", "orderNo": "1002", "status": "READY", "rcvName": "Anna Svensson", "parcelCount": 1}
]
SEARCH = {"searchField": "orderNo", "searchOp": "equals"}
CUSTOMER = subject(("#1001", "PostNord", "00370712345678901234"), ("#1002", None, None))


def nshift() -> tuple[NShift, RecordingChannel, Waits]:
    return build(NShift, api_key_id="KEYID", api_key_secret="SECRET")


@respx.mock
async def test_stored_shipments_are_deleted_and_printed_ones_requested_by_email() -> None:
    adapter, outbox, _ = nshift()
    printed = respx.get(f"{API}/stored-shipments", params={**SEARCH, "searchValue": "1001"}).respond(
        200, json=[]
    )
    respx.get(f"{API}/stored-shipments", params={**SEARCH, "searchValue": "1002"}).respond(200, json=STORED)
    delete = respx.delete(f"{API}/stored-shipments/4127538").respond(204)
    stored, printed_holding = await adapter.find(CUSTOMER)
    assert printed.calls.last.request.headers["Authorization"] == "Bearer KEYID-SECRET"
    assert (stored.ref, printed_holding.ref) == ("stored:4127538", "printed:1001")
    assert (await adapter.erase(CUSTOMER, stored)).outcome is Outcome.ERASED and delete.called
    result = await adapter.erase(CUSTOMER, printed_holding)
    assert result.outcome is Outcome.REQUEST_SENT
    [mail] = outbox.sent
    # nShift is Swedish: the request is in Swedish, to its DPO, citing the printed shipment.
    assert mail["to"] == "dpo@unifaun.com" and mail["subject"].startswith("Begäran om radering")
    assert "00370712345678901234" in mail["body"] and EMAIL in mail["body"]
    assert (await adapter.export(CUSTOMER))["stored_shipments"] == STORED


@respx.mock
async def test_nothing_stored_and_repeated_erase() -> None:
    adapter, outbox, _ = nshift()
    respx.get(f"{API}/stored-shipments", params={"searchValue": "1002"}).respond(200, json=STORED)
    respx.get(f"{API}/stored-shipments").respond(200, json=[])
    assert await adapter.find(subject(("#1003", None, None))) == []
    route = respx.delete(f"{API}/stored-shipments/4127538")
    route.side_effect = [httpx.Response(204), httpx.Response(404)]
    stored, printed = await adapter.find(CUSTOMER)
    assert (await adapter.erase(CUSTOMER, stored)).outcome is Outcome.ERASED
    assert (await adapter.erase(CUSTOMER, stored)).outcome is Outcome.ALREADY_ABSENT
    first, again = await adapter.erase(CUSTOMER, printed), await adapter.erase(CUSTOMER, printed)
    assert first.provider_ref == again.provider_ref and len(outbox.sent) == 1


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = nshift()
    route = respx.get(f"{API}/stored-shipments")
    one_order = subject(("#1002", None, None))
    ok = httpx.Response(200, json=STORED)
    await assert_throttling_honoured(route, ok, lambda: adapter.find(one_order), sleeps)


@respx.mock
async def test_rejected_key_names_the_settings() -> None:
    adapter, _, _ = nshift()
    route = respx.get(f"{API}/stored-shipments")
    await assert_auth_failure_named(route, adapter.check, "nshift", "api_key_id", "api_key_secret")
