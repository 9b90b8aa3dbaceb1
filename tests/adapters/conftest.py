"""Fixtures for adapter tests: the provider fakes, a local SMTP sink, and a way to build an adapter
with a context whose HTTP helper records waits instead of sleeping."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from adapters.base import Adapter, AdapterContext, EmailChannel, ShopInfo
from adapters.http import ProviderHttp, RateLimiter
from tests.fakes.klaviyo import KlaviyoFake
from tests.fakes.mailchimp import MailchimpFake
from tests.fakes.smtp import SmtpSink

SHOP = ShopInfo(
    domain="butik-a.myshopify.com",
    name="Butik A",
    contact_email="owner@butik-a.se",
    country="SE",
    locale="sv",
)


class RecordingChannel:
    """An in-memory `EmailChannel` with the outbox's idempotency rule for `dedupe_key`."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._by_key: dict[str, str] = {}

    async def send(
        self, *, to: str, subject: str, body: str, reply_to: str | None = None, dedupe_key: str | None = None
    ) -> str:
        if dedupe_key and dedupe_key in self._by_key:
            return self._by_key[dedupe_key]
        reference = f"GAL-{len(self.sent) + 1:04d}"
        self.sent.append(
            {"to": to, "subject": subject, "body": body, "reply_to": reply_to, "reference": reference}
        )
        if dedupe_key:
            self._by_key[dedupe_key] = reference
        return reference


class Waits:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def make_adapter(http_client: httpx.AsyncClient, waits: Waits) -> Any:
    def make(
        cls: type[Adapter], email: EmailChannel | None = None, shop: ShopInfo = SHOP, **settings: Any
    ) -> Adapter:
        http = ProviderHttp(http_client, RateLimiter(), sleep=waits.sleep)
        return cls(cls.Config.model_validate(settings), AdapterContext(shop=shop, http=http, email=email))

    return make


@pytest.fixture
def klaviyo_fake() -> Iterator[KlaviyoFake]:
    fake = KlaviyoFake()
    with fake.mocked():
        yield fake


@pytest.fixture
def mailchimp_fake() -> Iterator[MailchimpFake]:
    fake = MailchimpFake()
    with fake.mocked():
        yield fake


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink
