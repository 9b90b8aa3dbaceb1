"""One `check()` for every channel an adapter uses. The adapters that combine an API with the
e-mail channel used to check their API only: "connection OK" with no privacy address known or no
outbox, and then every e-mailed erasure failed. Each of the five now fails its check then, names
what to set, and still checks its API first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from adapters.base import Adapter, PermanentFailure
from adapters.budbee import Budbee
from adapters.dhl_parcel_de import DhlParcelDe
from adapters.email_request import EmailRequests
from adapters.nshift import NShift
from adapters.omnisend import Omnisend
from adapters.sendcloud import Sendcloud
from tests.adapters.support import build

# adapter, its least settings, the API call its check makes, the answer that means "accepted".
CASES: list[tuple[type[Adapter], dict[str, str], str, httpx.Response]] = [
    (
        Budbee,
        {"api_key": "k", "api_secret": "s"},
        "https://api.budbee.com/multiple/orders",
        httpx.Response(200, json=[]),
    ),
    (
        Sendcloud,
        {"public_key": "p", "secret_key": "s"},
        "https://panel.sendcloud.sc/api/v2/user",
        httpx.Response(200, json={}),
    ),
    (
        NShift,
        {"api_key_id": "k", "api_key_secret": "s"},
        "https://api.unifaun.com/rs-extapi/v1/stored-shipments",
        httpx.Response(200, json=[]),
    ),
    (
        DhlParcelDe,
        {"api_key": "k", "username": "u", "password": "p"},
        "https://api-eu.dhl.com/parcel/de/shipping/v2/orders",
        httpx.Response(400, json={"status": {"title": "Bad Request"}}),
    ),
    (
        Omnisend,
        {"api_key": "k"},
        "https://api.omnisend.com/api/contacts",
        httpx.Response(200, json={"contacts": []}),
    ),
]
IDS = [case[0].name for case in CASES]
ADDRESS = "privacy@provider.example"


@pytest.mark.parametrize(("cls", "settings", "url", "ok"), CASES, ids=IDS)
@respx.mock
async def test_check_passes_only_with_api_and_email_channel_both_usable(
    cls: type[Adapter], settings: dict[str, Any], url: str, ok: httpx.Response
) -> None:
    api = respx.get(url).mock(return_value=ok)
    adapter, _, _ = build(cls, **settings, privacy_email=ADDRESS)
    await adapter.check()
    assert api.call_count == 1


@pytest.mark.parametrize(("cls", "settings", "url", "ok"), CASES, ids=IDS)
@respx.mock
async def test_check_fails_without_an_outbox_though_the_api_answers(
    cls: type[Adapter], settings: dict[str, Any], url: str, ok: httpx.Response
) -> None:
    api = respx.get(url).mock(return_value=ok)
    adapter, _, _ = build(cls, email=False, **settings, privacy_email=ADDRESS)
    with pytest.raises(PermanentFailure, match="e-mail channel") as failed:
        await adapter.check()
    assert failed.value.summary.startswith(f"{cls.name}:") and api.call_count == 1


@pytest.mark.parametrize(("cls", "settings", "url", "ok"), CASES, ids=IDS)
@respx.mock
async def test_check_needs_a_privacy_address_the_shop_set_or_the_provider_published(
    cls: type[Adapter], settings: dict[str, Any], url: str, ok: httpx.Response
) -> None:
    respx.get(url).mock(return_value=ok)
    adapter, _, _ = build(cls, **settings)
    assert isinstance(cls.mail, EmailRequests)
    if cls.mail.address is None:  # Budbee and Sendcloud publish none
        with pytest.raises(PermanentFailure, match="privacy_email"):
            await adapter.check()
    else:
        await adapter.check()


@pytest.mark.parametrize(("cls", "settings", "url", "ok"), CASES, ids=IDS)
@respx.mock
async def test_an_api_failure_is_reported_before_the_email_channel(
    cls: type[Adapter], settings: dict[str, Any], url: str, ok: httpx.Response
) -> None:
    respx.get(url).respond(401, json={"error": "unauthorized"})
    adapter, _, _ = build(cls, email=False, **settings)
    with pytest.raises(PermanentFailure, match="rejected"):
        await adapter.check()
