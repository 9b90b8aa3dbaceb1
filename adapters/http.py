"""The one way adapters talk HTTP: timeouts, per-provider rate limits, retries with backoff and
jitter, and Retry-After honoured.

Short waits are slept here; a wait longer than `max_wait` is raised as `RateLimited` /
`TemporaryFailure` with `retry_after`, so the executor reschedules the step instead of holding a
worker. 401/403 become `AuthFailed`. Every other response is returned for the adapter to map
(404 → "already absent" is the adapter's call, because "not found" means different things).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx

if TYPE_CHECKING:
    from adapters.base import AdapterError

log = logging.getLogger("gallra.adapters.http")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What the process's limiter adds to every rate-limit window (`Runtime` uses it): calls reach the
# provider a little later and less evenly than they leave (connection set-up, scheduling), so an
# exact window would now and then look exceeded from the provider's side. 120 ms plus 2 % of the
# window: a 1-s burst allowance is used to about 88 %, a minute's to about 98 %.
WINDOW_MARGIN = 0.12
WINDOW_MARGIN_RATIO = 0.02


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls per `per_seconds`, counted per provider, credential and scope."""

    requests: int
    per_seconds: float
    scope: str = "all"  # "all" applies to every call; other scopes only to calls that name them


class RateLimiter:
    """Sliding-window logs keyed by (provider, credential, scope, window), shared by everything in
    the process: a call goes ahead when fewer than `requests` calls went ahead in the last
    `per_seconds`, for every limit that applies. Exact for each window, so a provider's burst and
    steady limits both hold (a token bucket lets up to twice its limit through in the first window).
    Also keeps connection pools for providers that cap concurrency instead of rate."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin: float = 0.0,
        margin_ratio: float = 0.0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._margin_ratio = margin_ratio
        self._logs: dict[tuple[str, str, str, int, float], deque[float]] = {}
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._pools: dict[tuple[str, str], asyncio.Semaphore] = {}

    async def acquire(self, provider: str, credential: str, limits: Sequence[RateLimit], scope: str) -> None:
        applicable = [limit for limit in limits if limit.scope in {"all", scope}]
        if not applicable:
            return
        logs = [
            self._logs.setdefault((provider, credential, lim.scope, lim.requests, lim.per_seconds), deque())
            for lim in applicable
        ]
        # The lock only queues callers of one scope fairly; checking and recording below happen
        # without an await in between, so scopes sharing an "all" limit cannot both take its last slot.
        async with self._locks.setdefault((provider, credential, scope), asyncio.Lock()):
            while True:
                now = self._clock()
                wait = 0.0
                for limit, log in zip(applicable, logs, strict=True):
                    window = limit.per_seconds * (1 + self._margin_ratio) + self._margin
                    while log and log[0] <= now - window:
                        log.popleft()
                    if len(log) >= limit.requests:
                        wait = max(wait, log[0] + window - now)
                if wait <= 0:
                    for log in logs:
                        log.append(now)
                    return
                await self._sleep(wait)

    def pool(self, provider: str, credential: str, size: int) -> asyncio.Semaphore:
        """At most `size` calls in flight per provider and credential (the first caller sets it)."""
        return self._pools.setdefault((provider, credential), asyncio.Semaphore(size))


def credential_fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds, an HTTP-date, or Rule.io's
    `YYYY-MM-DD HH:MM:SS` in Stockholm time."""
    if not value:
        return None
    value = value.strip()
    now = now or datetime.now(UTC)
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError, IndexError):
        pass
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/Stockholm"))
        return max(0.0, (local - now).total_seconds())
    except ValueError:
        return None


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter; `attempt` counts from 1."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class ProviderHttp:
    """Wraps the process's shared `httpx.AsyncClient` for adapters."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        limiter: RateLimiter | None = None,
        *,
        max_attempts: int = 4,
        max_wait: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.limiter = limiter or RateLimiter()
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self._sleep = sleep

    async def request(
        self,
        adapter: str,
        method: str,
        url: str,
        *,
        credential: str = "default",
        limits: Sequence[RateLimit] = (),
        scope: str = "all",
        retry_statuses: frozenset[int] = RETRY_STATUSES,
        auth_hint: str = "the credentials",
        retry_after: Callable[[httpx.Response], float | None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        from adapters.base import AuthFailed, RateLimited, TemporaryFailure

        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        last_error: AdapterError | None = None
        for attempt in range(1, self.max_attempts + 1):
            await self.limiter.acquire(adapter, credential, limits, scope)
            try:
                response = await self.client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                last_error = TemporaryFailure(
                    adapter, f"{type(exc).__name__} calling {method} {safe_path(url)}"
                )
                wait = backoff_delay(attempt)
            else:
                if response.status_code in (401, 403):
                    raise AuthFailed(
                        adapter, f"the provider rejected {auth_hint} (HTTP {response.status_code})"
                    )
                if response.status_code not in retry_statuses:
                    return response
                # Some providers put the wait in the body only (Omnisend's `retryAfter`).
                delay = parse_retry_after(response.headers.get("Retry-After"))
                if delay is None and retry_after is not None:
                    delay = retry_after(response)
                cls = RateLimited if response.status_code == 429 else TemporaryFailure
                wait = delay if delay is not None else backoff_delay(attempt)
                last_error = cls(
                    adapter, f"HTTP {response.status_code} from {method} {safe_path(url)}", retry_after=wait
                )
            if wait > self.max_wait or attempt == self.max_attempts:
                last_error.retry_after = max(wait, last_error.retry_after or 0.0)
                raise last_error
            log.info("retrying %s %s in %.1fs (attempt %d)", adapter, method, wait, attempt)
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def safe_path(url: str) -> str:
    """The URL without its query, which can carry an e-mail address or an API key, and with any
    path segment holding an e-mail address (Rule.io and Brevo look contacts up by it) masked."""
    path = httpx.URL(url).copy_with(query=None).path
    return "/".join("…" if "@" in part or "%40" in part.lower() else part for part in path.split("/"))
