"""Sendcloud against its v2 shapes: parcels by order and tracking number; cancel deletes a parcel
without a label, and only cancels a labelled one, whose erasure is then requested by e-mail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from adapters.base import Outcome, PermanentFailure
from adapters.sendcloud import Sendcloud
from tests.adapters.conftest import RecordingChannel, Waits
from tests.adapters.support import assert_auth_failure_named, assert_throttling_honoured, build, subject

API = "https://panel.sendcloud.sc/api/v2"
UNANNOUNCED = {
    "id": 11,
    "order_number": "1001",
    "tracking_number": "",
    "status": {"id": 999, "message": "No label"},
}
LABELLED = {"id": 12, "order_number": "1002", "tracking_number": "3SABCD0123456", "status": {"id": 1000}}
CUSTOMER = subject(("#1001", "Sendcloud", None), ("#1002", "DHL Express", "3SABCD0123456"))
PRIVACY = "privacy@sendcloud.example"


def sendcloud(**extra: Any) -> tuple[Sendcloud, RecordingChannel, Waits]:
    return build(Sendcloud, public_key="pub", secret_key="sec", **extra)


def mock_parcels() -> None:
    respx.get(f"{API}/parcels", params={"order_number": "1001"}).respond(200, json={"parcels": [UNANNOUNCED]})
    respx.get(f"{API}/parcels").respond(200, json={"parcels": [LABELLED]})


@respx.mock
async def test_unlabelled_parcel_is_deleted_labelled_one_cancelled_and_requested_by_email() -> None:
    adapter, outbox, _ = sendcloud(privacy_email=PRIVACY)
    mock_parcels()
    deleted = respx.post(f"{API}/parcels/11/cancel").respond(
        200, json={"status": "deleted", "message": "Parcel has been deleted"}
    )
    respx.post(f"{API}/parcels/12/cancel").respond(202)  # ready to send: cancellation queued
    unannounced, labelled = sorted(await adapter.find(CUSTOMER), key=lambda h: h.ref)
    assert deleted.calls == [] and unannounced.ref.startswith("parcel:11:")
    assert (await adapter.erase(CUSTOMER, unannounced)).outcome is Outcome.ERASED
    result = await adapter.erase(CUSTOMER, labelled)
    assert result.outcome is Outcome.REQUEST_SENT and "cancellation queued" in result.detail
    [mail] = outbox.sent
    assert mail["to"] == PRIVACY and "3SABCD0123456" in mail["body"] and mail["subject"].startswith("Request")
    assert {p["id"] for p in (await adapter.export(CUSTOMER))["parcels"]} == {11, 12}


@respx.mock
async def test_too_late_to_cancel_still_asks_and_unknown_parcel_is_absent() -> None:
    adapter, outbox, _ = sendcloud(privacy_email=PRIVACY)
    mock_parcels()
    _, labelled = sorted(await adapter.find(CUSTOMER), key=lambda h: h.ref)
    respx.post(f"{API}/parcels/12/cancel").mock(
        side_effect=[
            httpx.Response(400, json={"error": {"code": 400, "message": "Cancellation rejected"}}),
            httpx.Response(404),
        ]
    )
    assert (await adapter.erase(CUSTOMER, labelled)).outcome is Outcome.REQUEST_SENT and len(outbox.sent) == 1
    assert (await adapter.erase(CUSTOMER, labelled)).outcome is Outcome.ALREADY_ABSENT


@respx.mock
async def test_labelled_parcel_needs_a_privacy_address_before_anything_is_cancelled() -> None:
    adapter, _, _ = sendcloud()
    mock_parcels()
    cancel = respx.post(f"{API}/parcels/12/cancel").respond(200, json={"status": "cancelled"})
    _, labelled = sorted(await adapter.find(CUSTOMER), key=lambda h: h.ref)
    with pytest.raises(PermanentFailure, match="privacy_email"):
        await adapter.erase(CUSTOMER, labelled)
    assert not cancel.called
    adapter.ctx.email = None  # a shop without the e-mail channel: the cancel is all there is
    result = await adapter.erase(CUSTOMER, labelled)
    assert result.outcome is Outcome.CANCELLED and result.detail == "label cancelled" and cancel.called


@respx.mock
async def test_repeated_erase_of_a_deleted_parcel_is_already_absent() -> None:
    adapter, outbox, _ = sendcloud()
    mock_parcels()
    respx.post(f"{API}/parcels/11/cancel").mock(
        side_effect=[httpx.Response(200, json={"status": "deleted"}), httpx.Response(404)]
    )
    # 410: the labelled parcel's announcement had failed, so cancelling deleted it.
    respx.post(f"{API}/parcels/12/cancel").respond(410)
    unannounced, failed = sorted(await adapter.find(CUSTOMER), key=lambda h: h.ref)
    assert (await adapter.erase(CUSTOMER, unannounced)).outcome is Outcome.ERASED
    assert (await adapter.erase(CUSTOMER, unannounced)).outcome is Outcome.ALREADY_ABSENT
    with pytest.raises(PermanentFailure, match="privacy_email"):
        await adapter.erase(CUSTOMER, failed)  # without an address nothing is attempted
    adapter.ctx.email = None
    assert (await adapter.erase(CUSTOMER, failed)).outcome is Outcome.ERASED and outbox.sent == []


@respx.mock
async def test_throttling_honours_retry_after() -> None:
    adapter, _, sleeps = sendcloud()
    route = respx.get(f"{API}/parcels")
    ok = httpx.Response(200, json={"parcels": []})
    await assert_throttling_honoured(route, ok, lambda: adapter.find(subject(("#1", None, None))), sleeps)


@respx.mock
async def test_rejected_keys_name_the_settings() -> None:
    adapter, _, _ = sendcloud()
    await assert_auth_failure_named(
        respx.get(f"{API}/user"), adapter.check, "sendcloud", "public_key", "secret_key"
    )
