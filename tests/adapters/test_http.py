"""ProviderHttp and RateLimiter: retries, Retry-After in its three forms, jitter bounds, limits keyed
by provider and credential, exact windows, 401/403 → AuthFailed, long waits raised not slept."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx

from adapters.base import AuthFailed, RateLimited, TemporaryFailure
from adapters.http import (
    ProviderHttp,
    RateLimit,
    RateLimiter,
    backoff_delay,
    credential_fingerprint,
    parse_retry_after,
    safe_path,
)
from tests.adapters.conftest import Waits

URL = "https://api.example.test/v1/things"


@pytest.fixture
async def http(waits: Waits) -> AsyncIterator[ProviderHttp]:
    async with httpx.AsyncClient() as client:
        yield ProviderHttp(client, RateLimiter(), sleep=waits.sleep)


# ----- Retry-After -------------------------------------------------------------------------------


def test_retry_after_delta_seconds() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5


def test_retry_after_http_date() -> None:
    now = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0


def test_retry_after_rule_io_stockholm_local_time() -> None:
    now = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)  # 12:00 in Stockholm (CEST, UTC+2)
    assert parse_retry_after("2026-06-01 12:00:45", now) == 45.0
    winter = datetime(2026, 1, 15, 10, 0, 0, tzinfo=UTC)  # 11:00 in Stockholm (CET, UTC+1)
    assert parse_retry_after("2026-01-15 11:01:00", winter) == 60.0


def test_retry_after_in_the_past_or_garbage() -> None:
    now = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None


# ----- backoff -------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_within_exponential_bounds() -> None:
    random.seed(5)
    for attempt in range(1, 10):
        bound = min(60.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff_delay(attempt) for _ in range(200)]
        assert all(0.0 <= s <= bound for s in samples)
        assert max(samples) > 0.8 * bound and min(samples) < 0.2 * bound  # spread, not a constant


async def test_5xx_is_retried_with_jittered_backoff(http: ProviderHttp, waits: Waits) -> None:
    with respx.mock:
        route = respx.get(URL).mock(
            side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200)]
        )
        response = await http.request("prov", "GET", URL)

    assert response.status_code == 200 and route.call_count == 3
    assert 0 <= waits.slept[0] <= 0.5 and 0 <= waits.slept[1] <= 1.0


async def test_network_errors_are_retried(http: ProviderHttp, waits: Waits) -> None:
    with respx.mock:
        respx.get(URL).mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200)])
        response = await http.request("prov", "GET", URL)

    assert response.status_code == 200 and len(waits.slept) == 1


@pytest.mark.parametrize(
    "header",
    ["3", "HTTP-DATE", "STOCKHOLM"],
    ids=["delta-seconds", "http-date", "rule-io-local-time"],
)
async def test_429_waits_what_retry_after_says_in_each_form(
    http: ProviderHttp, waits: Waits, header: str
) -> None:
    target = datetime.now(UTC) + timedelta(seconds=4)
    if header == "HTTP-DATE":
        header = format_datetime(target, usegmt=True)
    elif header == "STOCKHOLM":
        from zoneinfo import ZoneInfo

        header = target.astimezone(ZoneInfo("Europe/Stockholm")).strftime("%Y-%m-%d %H:%M:%S")
    with respx.mock:
        respx.get(URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200)]
        )
        response = await http.request("prov", "GET", URL)

    assert response.status_code == 200
    (slept,) = waits.slept
    assert 2.0 <= slept <= 4.0  # whole seconds in the header forms, measured from a moment later


async def test_long_retry_after_is_raised_not_slept(http: ProviderHttp, waits: Waits) -> None:
    with respx.mock:
        route = respx.get(URL).respond(429, headers={"Retry-After": "600"})
        with pytest.raises(RateLimited) as raised:
            await http.request("prov", "GET", URL)

    assert route.call_count == 1 and waits.slept == []
    assert raised.value.retry_after == 600.0 and raised.value.retryable


async def test_attempts_exhausted_raise_a_temporary_failure_with_a_delay(
    http: ProviderHttp, waits: Waits
) -> None:
    with respx.mock:
        route = respx.get(URL).respond(503)
        with pytest.raises(TemporaryFailure) as raised:
            await http.request("prov", "GET", URL)

    assert route.call_count == http.max_attempts
    assert len(waits.slept) == http.max_attempts - 1
    assert raised.value.retry_after is not None


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_auth_failures_naming_adapter_and_setting(
    http: ProviderHttp, waits: Waits, status: int
) -> None:
    with respx.mock:
        route = respx.get(URL).respond(status)
        with pytest.raises(AuthFailed) as raised:
            await http.request("klaviyo", "GET", URL, auth_hint="the setting `api_key`")

    assert route.call_count == 1 and waits.slept == []  # never retried
    assert str(raised.value).startswith("klaviyo:") and "`api_key`" in str(raised.value)
    assert not raised.value.retryable


async def test_other_statuses_are_returned_for_the_adapter_to_map(http: ProviderHttp) -> None:
    with respx.mock:
        respx.get(URL).respond(404)
        assert (await http.request("prov", "GET", URL)).status_code == 404


async def test_error_messages_hold_no_query_and_no_e_mail(http: ProviderHttp) -> None:
    url = "https://api.example.test/v3/subscribers/anna%40example.se"
    with respx.mock:
        respx.get(url).respond(503)
        with pytest.raises(TemporaryFailure) as raised:
            await http.request("prov", "GET", url, params={"apikey": "SECRET"})

    assert "SECRET" not in str(raised.value) and "anna" not in str(raised.value)
    assert safe_path("https://x.test/a/b@c.se/d?apikey=1") == "/a/…/d"


async def test_every_call_has_a_timeout(http: ProviderHttp) -> None:
    with respx.mock:
        route = respx.get(URL).respond(200)
        await http.request("prov", "GET", URL)

    assert route.calls[0].request.extensions["timeout"]["read"] == 10.0


# ----- rate limits ---------------------------------------------------------------------------------


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_limits_are_keyed_by_provider_and_credential() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limit = (RateLimit(2, 1.0),)

    for _ in range(2):
        await limiter.acquire("klaviyo", "key-a", limit, "all")
    await limiter.acquire("klaviyo", "key-b", limit, "all")  # another shop's key: its own window
    await limiter.acquire("mailchimp", "key-a", limit, "all")  # another provider: its own window
    assert time.now == 0.0

    await limiter.acquire("klaviyo", "key-a", limit, "all")  # the third call on key-a waits
    assert time.now == 1.0


async def test_scoped_limits_apply_only_to_their_scope() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limits = (RateLimit(1, 1.0, "deletion"), RateLimit(100, 1.0))

    await limiter.acquire("k", "c", limits, "deletion")
    for _ in range(5):
        await limiter.acquire("k", "c", limits, "profiles")
    assert time.now == 0.0
    await limiter.acquire("k", "c", limits, "deletion")
    assert time.now == 1.0


async def test_burst_and_steady_windows_both_hold_exactly() -> None:
    """3/s burst and 5/10 s steady: no 1 s window ever sees more than 3 calls, no 10 s window more
    than 5, and the limiter is not slower than the limits (the 6th call goes at exactly 10 s)."""
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limits = (RateLimit(3, 1.0), RateLimit(5, 10.0))
    times = []
    for _ in range(12):
        await limiter.acquire("k", "c", limits, "all")
        times.append(time.now)

    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 3
        assert sum(1 for t in times[i:] if t < start + 10.0) <= 5
    assert times[:5] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert times[5] == 10.0


async def test_concurrent_callers_share_one_window() -> None:
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limits = (RateLimit(2, 1.0),)
    done: list[float] = []

    async def call() -> None:
        await limiter.acquire("k", "c", limits, "all")
        done.append(time.now)

    await asyncio.gather(*(call() for _ in range(6)))

    assert sorted(done) == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_credential_fingerprint_is_stable_and_not_the_secret() -> None:
    assert credential_fingerprint("pk_secret") == credential_fingerprint("pk_secret")
    assert "pk_secret" not in credential_fingerprint("pk_secret")
    assert credential_fingerprint("a") != credential_fingerprint("b")


async def test_a_limiter_wait_longer_than_max_wait_is_raised_not_slept() -> None:
    """An hourly window that is full: the call is refused with the wait as retry_after (the
    executor reschedules the step) instead of holding a worker for up to an hour."""
    time = VirtualTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    limits = (RateLimit(1, 3600.0),)
    await limiter.acquire("brevo", "c", limits, "all", max_wait=120.0)

    with pytest.raises(RateLimited) as raised:
        await limiter.acquire("brevo", "c", limits, "all", max_wait=120.0)
    assert raised.value.retry_after == 3600.0 and time.now == 0.0
    await limiter.acquire("brevo", "c", (RateLimit(1, 60.0),), "all", max_wait=120.0)  # another window
    await limiter.acquire("brevo", "c", (RateLimit(1, 60.0),), "all", max_wait=120.0)  # slept
    assert time.now == 60.0


@respx.mock
async def test_provider_http_passes_its_limiter_wait_bound() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200))
    time = VirtualTime()
    async with httpx.AsyncClient() as client:
        http = ProviderHttp(client, RateLimiter(clock=time.clock, sleep=time.sleep), max_limiter_wait=5.0)
        limits = (RateLimit(1, 10.0),)
        await http.request("k", "GET", URL, limits=limits)
        with pytest.raises(RateLimited) as raised:
            await http.request("k", "GET", URL, limits=limits)
    assert raised.value.retry_after == 10.0
    assert respx.calls.call_count == 1
