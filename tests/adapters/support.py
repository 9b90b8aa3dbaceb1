"""Shared by the catalogue adapters' tests: a context with the recording e-mail channel and the
waits of `conftest.py`, a subject with shipments, and the contract checks every API adapter meets
(throttling honoured, auth failures named, personal data kept out of messages)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx
import pytest
import respx

from adapters.base import Adapter, AdapterContext, AuthFailed, RateLimited, ShopInfo
from adapters.http import ProviderHttp
from plugin.holdings import Shipment, Subject
from tests.adapters.conftest import RecordingChannel, Waits

SHOP = ShopInfo(domain="butik.myshopify.com", name="Butik Nord", contact_email="dpo@butik.se", country="SE")
EMAIL = "anna.svensson@example.se"


def context(*, email: bool = True) -> tuple[AdapterContext, RecordingChannel, Waits]:
    waits = Waits()
    http = ProviderHttp(httpx.AsyncClient(), max_attempts=3, max_wait=30.0, sleep=waits.sleep)
    outbox = RecordingChannel()
    return AdapterContext(shop=SHOP, http=http, email=outbox if email else None), outbox, waits


def subject(*shipments: tuple[str, str | None, str | None]) -> Subject:
    """A subject with shipments given as (order name, carrier as Shopify reports it, tracking)."""
    return Subject(
        shop_domain=SHOP.domain,
        customer_id=7001,
        email=EMAIL,
        phone="+46701234567",
        order_ids=tuple(1000 + i for i in range(len(shipments))),
        shipments=tuple(
            Shipment(1000 + i, name, carrier, tracking, delivered=date(2026, 3, 1 + i), country="SE")
            for i, (name, carrier, tracking) in enumerate(shipments)
        ),
    )


def build(cls: type[Adapter], *, email: bool = True, **config: Any) -> tuple[Any, RecordingChannel, Waits]:
    ctx, outbox, sleeps = context(email=email)
    return cls(cls.Config(**config), ctx), outbox, sleeps


async def assert_throttling_honoured(
    route: respx.Route, ok: httpx.Response, call: Callable[[], Awaitable[Any]], sleeps: Waits
) -> None:
    """A short Retry-After is slept and the call retried; a long one goes back to the executor."""
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "2"}), ok]
    await call()
    assert sleeps.slept == [2.0]
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "600"})]
    with pytest.raises(RateLimited) as caught:
        await call()
    assert caught.value.retryable and caught.value.retry_after == 600.0


async def assert_auth_failure_named(
    route: respx.Route, call: Callable[[], Awaitable[Any]], adapter: str, *settings: str
) -> None:
    route.side_effect = [httpx.Response(401, json={"error": "unauthorized"})]
    with pytest.raises(AuthFailed) as caught:
        await call()
    message = str(caught.value)
    assert message.startswith(f"{adapter}:") and not caught.value.retryable
    for setting in settings:
        assert f"`{setting}`" in message


def assert_no_personal_data(text: str) -> None:
    assert EMAIL not in text and "anna.svensson%40example.se" not in text.lower()
    assert "+46701234567" not in text
