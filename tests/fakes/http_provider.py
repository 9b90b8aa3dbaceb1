"""What every stateful respx fake of an HTTP provider shares: its own respx router, an API-key
check, optional latency, forced failures, the provider's documented rate limits enforced (a call
over a limit is answered 429 and counted), in-flight concurrency, and a log of calls.

A provider fake subclasses `ProviderFake`, registers routes with `self.route(...)` and implements
`authorized(request)`. Use it as a context manager (`with fake.mocked(): ...`); several fakes (and
the Shopify fake) can be active at once.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import respx

Handler = Callable[..., httpx.Response]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    scope: str
    status: int
    request: httpx.Request


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    times: int
    network: bool
    path: str  # only calls whose path ends with this ("" = every call)
    body: Any


class ProviderFake(ABC):
    # scope → [(requests, per_seconds)], the limits the provider documents
    limits: ClassVar[dict[str, list[tuple[int, float]]]] = {}
    max_connections: int | None = None  # answered 429 above this many calls in flight

    def __init__(
        self,
        base_url: str,
        *,
        latency: float = 0.0,
        enforce_limits: bool = True,
        slack: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        router: respx.MockRouter | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.latency = latency
        self.enforce_limits = enforce_limits
        # Sliding windows shortened by `slack`, so scheduling jitter between a client's limiter and
        # this fake is not counted as a violation.
        self.slack = slack
        self.clock = clock
        self.router = router or respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.calls: list[Call] = []
        self.over_limit: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: deque[_Failure] = deque()
        self._seen: dict[tuple[str, float], deque[float]] = {}

    @contextmanager
    def mocked(self) -> Iterator[Any]:
        with self.router:
            yield self

    # ----- knobs --------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 503,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        network: bool = False,
        path: str = "",
        body: Any = None,
    ) -> None:
        """The next `times` calls (to paths ending with `path`) fail with `status`, `headers` and a JSON
        `body`, or with a connection error."""
        self._failures.append(_Failure(status, headers or {}, times, network, path, body))

    def count(self, method: str, path_suffix: str = "") -> int:
        return sum(1 for c in self.calls if c.method == method and c.path.endswith(path_suffix))

    # ----- for subclasses -------------------------------------------------------------------------

    @abstractmethod
    def authorized(self, request: httpx.Request) -> bool:
        """Whether the request carries this provider's credentials."""

    def unauthorized(self) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized"})

    def route(self, method: str, path_regex: str, handler: Handler, *, scope: str = "all") -> None:
        pattern = "^" + self.base_url.replace(".", r"\.") + path_regex + r"(\?.*)?$"
        self.router.route(method=method, url__regex=pattern).mock(side_effect=self._wrap(handler, scope))

    def _wrap(self, handler: Handler, scope: str) -> Callable[..., Awaitable[httpx.Response]]:
        async def effect(request: httpx.Request, **params: Any) -> httpx.Response:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.latency:
                    await asyncio.sleep(self.latency)
                response = self._answer(request, handler, scope, params)
            finally:
                self.in_flight -= 1
            self.calls.append(Call(request.method, request.url.path, scope, response.status_code, request))
            return response

        return effect

    def _answer(
        self, request: httpx.Request, handler: Handler, scope: str, params: dict[str, Any]
    ) -> httpx.Response:
        failure = next((f for f in self._failures if request.url.path.endswith(f.path)), None)
        if failure is not None:
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            if failure.network:
                raise httpx.ConnectError("connection refused (fake)", request=request)
            body = failure.body if failure.body is not None else {"error": "forced"}
            return httpx.Response(failure.status, headers=failure.headers, json=body)
        if not self.authorized(request):
            return self.unauthorized()
        if self.max_connections is not None and self.in_flight > self.max_connections:
            self.over_limit["connections"] += 1
            return httpx.Response(429, json={"title": "Too Many Requests", "status": 429})
        wait = self._over(scope)
        if wait is not None:
            self.over_limit[scope] += 1
            return httpx.Response(429, headers={"Retry-After": str(max(1, round(wait)))}, json={"errors": []})
        return handler(request, **params)

    def _over(self, scope: str) -> float | None:
        """Seconds until the call would have been allowed, or None when it is within every limit."""
        if not self.enforce_limits:
            return None
        now = self.clock()
        applicable = [(scope, w) for w in self.limits.get(scope, [])] + [
            ("all", w) for w in self.limits.get("all", []) if scope != "all"
        ]
        for name, (requests, seconds) in applicable:
            seen = self._seen.setdefault((name, seconds), deque())
            while seen and seen[0] <= now - (seconds - self.slack):
                seen.popleft()
            if len(seen) >= requests:
                return seen[0] + seconds - now
        for name, (_requests, seconds) in applicable:
            self._seen[(name, seconds)].append(now)
        return None
