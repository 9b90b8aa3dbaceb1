"""The one way adapters talk HTTP: timeouts, per-provider rate limits, retries with backoff and
jitter, and Retry-After honoured.

Short waits are slept here; a wait longer than `max_wait` is raised as `RateLimited` /
`TemporaryFailure` with `retry_after`, so the executor reschedules the step instead of holding a
worker (likewise a wait for our own limiter longer than `max_limiter_wait`). The limiter is
`RateLimiter` within one process, or `plugin.rate_limits.SharedRateLimiter` (what `Runtime` gives
the app) across every process on one database. 401/403 become `AuthFailed`. Every other response
is returned for the adapter to map (404 → "already absent" is the adapter's call, because "not
found" means different things).

Where calls go is declared, not typed in: each provider adapter's Config names its provider's
documented https roots (`Endpoints`, by region), and a shop picks one. A URL of the shop's own
exists only when the server's operator allows it (`UrlPolicy`, from the server settings), and even
then never reaches a loopback, private, link-local or unspecified address unless the operator also
allows that: checked when the setting is saved, and again at each call against the address the
call connects to (a host name can resolve differently later).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import random
import re
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from adapters.errors import AdapterError, AuthFailed, RateLimited, SettingsInvalid, TemporaryFailure

log = logging.getLogger("gallra.adapters.http")

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What the app's limiter adds to every rate-limit window (`Runtime` uses it): calls reach the
# provider a little later and less evenly than they leave (connection set-up, scheduling), so an
# exact window would now and then look exceeded from the provider's side. 120 ms plus 2 % of the
# window: a 1-s burst allowance is used to about 88 %, a minute's to about 98 %.
WINDOW_MARGIN = 0.12
WINDOW_MARGIN_RATIO = 0.02
# The longest wait for our own limiter that a call sleeps through: a provider's minute window
# (with margins) fits, an hourly one (Brevo) is raised as `RateLimited` so the step is rescheduled
# instead of holding a worker for up to an hour.
MAX_LIMITER_WAIT = 120.0


class UrlRefused(ValueError):
    """A provider URL the server will not call. The message names what is allowed, never the URL
    (it is the shop's input, and a refused one may point into the operator's network)."""


@dataclass(frozen=True)
class UrlPolicy:
    """The operator's choice, never a shop's: whether a connection may name its own provider URL
    instead of a declared one (self-hosting, tests), and whether such a URL may reach loopback,
    private, link-local or unspecified addresses (local fakes)."""

    custom: bool = False
    private: bool = False
    # Whether validating a custom URL resolves its host (when a setting is saved); stored settings
    # are not resolved again when loaded, as every call checks the address it connects to.
    resolve: bool = True


HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def host_label(value: str) -> str:
    """One label of a host name (a tenant, a data centre), lower-cased; `UrlRefused` otherwise, so
    a value can never add a dot, a port or a path to a declared host."""
    label = value.strip().lower()
    if not HOST_LABEL.match(label):
        raise UrlRefused("must be one host name label: letters, digits and hyphens (no dots, no URL)")
    return label


class Endpoints:
    """A provider's documented API roots by region (or environment), https only; the first is the
    default. A root may name one of the Config's values in braces, e.g. `https://{tenant}.voyado.com`,
    filled with a single host name label."""

    def __init__(self, **regions: str) -> None:
        for root in regions.values():
            if not root.startswith("https://"):
                raise ValueError(f"provider roots are https only: {root}")
        self.regions: Mapping[str, str] = dict(regions)

    @property
    def default(self) -> str:
        return next(iter(self.regions))

    def choices(self) -> str:
        return ", ".join(self.regions)

    def check_region(self, region: str | None) -> str:
        name = (region or "").strip().lower() or self.default
        if name not in self.regions:
            raise UrlRefused(f"choose one of: {self.choices()}")
        return name

    def root(self, region: str | None, value: Callable[[str], object]) -> str:
        """The chosen region's root, placeholders filled from `value(name)`."""

        def fill(found: re.Match[str]) -> str:
            try:
                return host_label(str(value(found[1]) or ""))
            except UrlRefused as exc:
                raise UrlRefused(f"{found[1]}: {exc}") from None

        return _PLACEHOLDER.sub(fill, self.regions[self.check_region(region)])


def lookup(host: str, port: int) -> list[str]:
    """Every address `host` resolves to. Resolved as the connection would be, so every spelling of
    an address counts: 127.1, 2130706433, 0x7f.1, localhost, [::ffff:127.0.0.1]."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address in IPv6 clothing (::ffff:127.0.0.1, 6to4 2002:7f00:1::) is judged as IPv4.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """The host's addresses when every one is public; `UrlRefused` otherwise."""
    try:
        addresses = lookup(host, port)
    except (OSError, UnicodeError, ValueError):
        raise UrlRefused("its host does not resolve") from None
    if not addresses or not all(is_public(address) for address in addresses):
        raise UrlRefused("its host is a loopback, private, link-local or unspecified address")
    return addresses


def custom_root(value: str, policy: UrlPolicy, choices: str) -> str:
    """A shop's own API root, as far as the operator's `policy` allows it."""
    if not policy.custom:
        raise UrlRefused(
            f"this server does not allow custom provider URLs; leave it empty and choose a region ({choices})"
        )
    try:
        url = httpx.URL(value.strip())
    except httpx.InvalidURL:
        raise UrlRefused("not a URL") from None
    # Plain http only towards addresses the operator allowed as private (local fakes): personal
    # data travels in these calls.
    schemes = ("https", "http") if policy.private else ("https",)
    if url.scheme not in schemes:
        raise UrlRefused(f"must start with {' or '.join(s + '://' for s in schemes)}")
    if not url.host or url.userinfo:
        raise UrlRefused("needs a host and no user name or password")
    if not policy.private and policy.resolve:
        public_addresses(url.host, url.port or 443)
    return str(url).rstrip("/")


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls per `per_seconds`, counted per provider, credential and scope."""

    requests: int
    per_seconds: float
    scope: str = "all"  # "all" applies to every call; other scopes only to calls that name them


class Limiter(ABC):
    """Sliding windows per provider, credential and scope: a call goes ahead when fewer than
    `requests` calls went ahead in the last `per_seconds` (plus the margins), for every limit that
    applies. Exact for each window, so a provider's burst and steady limits both hold (a token
    bucket lets up to twice its limit through in the first window). Also connection pools for
    providers that cap concurrency instead of rate. `RateLimiter` counts within this process,
    `plugin.rate_limits.SharedRateLimiter` across every process on one database."""

    def __init__(
        self,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin: float = 0.0,
        margin_ratio: float = 0.0,
    ) -> None:
        self._sleep = sleep
        self._margin = margin
        self._margin_ratio = margin_ratio
        # One caller per scope checks at a time, the others queue here in order.
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def acquire(
        self,
        provider: str,
        credential: str,
        limits: Sequence[RateLimit],
        scope: str,
        max_wait: float | None = None,
    ) -> None:
        """Return when a call may go ahead (recorded as made now); raise `RateLimited` with
        `retry_after` instead of waiting longer than `max_wait`."""
        applicable = [limit for limit in limits if limit.scope in {"all", scope}]
        if not applicable:
            return
        async with self._locks.setdefault((provider, credential, scope), asyncio.Lock()):
            while True:
                wait = await self.try_record(provider, credential, applicable)
                if wait <= 0:
                    return
                if max_wait is not None and wait > max_wait:
                    raise RateLimited(
                        provider, f"rate limit: next call allowed in {wait:.0f} s", retry_after=wait
                    )
                await self._sleep(wait)

    @abstractmethod
    async def close(self) -> None:
        """Release what the limiter holds (its database connections)."""

    def window(self, limit: RateLimit) -> float:
        return limit.per_seconds * (1 + self._margin_ratio) + self._margin

    @abstractmethod
    async def try_record(self, provider: str, credential: str, limits: list[RateLimit]) -> float:
        """Record one call if every window has room (0.0), else the seconds until they all have."""

    @abstractmethod
    def pool(self, provider: str, credential: str, size: int) -> AbstractAsyncContextManager[Any]:
        """At most `size` calls inside it at once per provider and credential (the first caller
        sets it)."""


class RateLimiter(Limiter):
    """Sliding-window logs kept in this process, keyed by (provider, credential, scope, window)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        margin: float = 0.0,
        margin_ratio: float = 0.0,
    ) -> None:
        super().__init__(sleep, margin, margin_ratio)
        self._clock = clock
        self._logs: dict[tuple[str, str, str, int, float], deque[float]] = {}
        self._pools: dict[tuple[str, str], asyncio.Semaphore] = {}

    async def close(self) -> None:
        pass  # nothing held outside memory

    async def try_record(self, provider: str, credential: str, limits: list[RateLimit]) -> float:
        # No await between checking and recording, so scopes sharing an "all" limit cannot both
        # take its last place.
        logs = [
            self._logs.setdefault((provider, credential, lim.scope, lim.requests, lim.per_seconds), deque())
            for lim in limits
        ]
        now = self._clock()
        wait = 0.0
        for limit, log in zip(limits, logs, strict=True):
            window = self.window(limit)
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) >= limit.requests:
                wait = max(wait, log[0] + window - now)
        if wait <= 0:
            for log in logs:
                log.append(now)
        return wait

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
        limiter: Limiter | None = None,
        *,
        max_attempts: int = 4,
        max_wait: float = 30.0,
        max_limiter_wait: float = MAX_LIMITER_WAIT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        policy: UrlPolicy | None = None,
    ) -> None:
        self.client = client
        self.limiter: Limiter = limiter or RateLimiter()
        self.policy = policy or UrlPolicy()
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.max_limiter_wait = max_limiter_wait
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
        custom: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call with retries. `custom`: the URL is the shop's own (see `UrlPolicy`), not one
        of the provider's declared roots, so it is checked against the policy at every attempt."""
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        last_error: AdapterError | None = None
        for attempt in range(1, self.max_attempts + 1):
            await self.limiter.acquire(adapter, credential, limits, scope, self.max_limiter_wait)
            try:
                target, extra = (url, {}) if not custom else await self._pinned(adapter, url, kwargs)
                response = await self.client.request(method, target, **{**kwargs, **extra})
            except (httpx.UnsupportedProtocol, httpx.InvalidURL):
                # Only a URL that slipped past the settings' validation gets here.
                raise SettingsInvalid(
                    adapter, "the provider URL cannot be used; check the connection"
                ) from None
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

    async def _pinned(self, adapter: str, url: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The URL to connect to for a shop's own root: unchanged where the operator allows private
        addresses; otherwise the host is resolved now, every address must be public, and the call
        goes to the first of them by address, with the host name kept for the Host header and for
        TLS (name and certificate), so a resolver cannot answer differently between check and
        connect (DNS rebinding)."""
        if not self.policy.custom:
            raise SettingsInvalid(
                adapter, "this server no longer allows custom provider URLs; choose a region"
            )
        if self.policy.private:
            return url, {}
        parsed = httpx.URL(url)
        if parsed.scheme != "https" or not parsed.host:
            raise SettingsInvalid(adapter, "a custom provider URL must start with https://")
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, public_addresses, parsed.host, parsed.port or 443)
        except UrlRefused as exc:
            raise SettingsInvalid(adapter, f"base_url: {exc}") from None
        headers = httpx.Headers(kwargs.get("headers"))
        headers["Host"] = parsed.netloc.decode("ascii")
        extensions = {**kwargs.get("extensions", {}), "sni_hostname": parsed.host}
        return str(parsed.copy_with(host=addresses[0])), {"headers": headers, "extensions": extensions}


def safe_path(url: str) -> str:
    """The URL without its query, which can carry an e-mail address or an API key, and with any
    path segment holding an e-mail address (Rule.io and Brevo look contacts up by it) masked."""
    path = httpx.URL(url).copy_with(query=None).path
    return "/".join("…" if "@" in part or "%40" in part.lower() else part for part in path.split("/"))
