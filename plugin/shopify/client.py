"""The Admin GraphQL client: one shop, one token source, Shopify's limits respected.

- Versioned endpoint `{SHOPIFY_ADMIN_URL with {shop}}/admin/api/{version}/graphql.json`; timeouts on
  every call (the shared `httpx.AsyncClient` of the runtime).
- Cost-based pacing per shop (`plugin.cost_throttle`), THROTTLED (HTTP 200) and 429 (Retry-After)
  waited out and retried; 5xx and network errors retried with backoff and jitter.
- `userErrors` raised as `UserErrors`; `MAX_COST_EXCEEDED` raised as `MaxCostExceeded`, never retried.
- Nothing from a response body that could carry personal data goes into a log or an error message.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.http import DEFAULT_TIMEOUT, backoff_delay, parse_retry_after
from plugin.cost_throttle import CostThrottle
from plugin.settings import Settings
from plugin.shopify.app_config import api_version

log = logging.getLogger("gallra.shopify")

TokenSource = Callable[[], Awaitable[str]]


class ShopifyError(Exception):
    """A call to the Admin API failed; messages name the shop and operation, never data or tokens."""


class ShopifyAuthError(ShopifyError):
    """401/403: the token is invalid, expired or revoked (the app was uninstalled)."""


class ShopifyUnavailable(ShopifyError):
    """5xx, network errors or throttling that outlasted the retries; try again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GraphQLErrors(ShopifyError):
    """Top-level `errors` of a response (an invalid document, access denied, ...)."""

    def __init__(self, operation: str, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        self.codes = [str((e.get("extensions") or {}).get("code", "")) for e in errors]
        first = safe_message(str(errors[0].get("message", ""))) if errors else ""
        super().__init__(f"{operation}: {len(errors)} GraphQL error(s): {first}")


class MaxCostExceeded(ShopifyError):
    """A single query may cost at most 1000 points; retrying cannot help."""

    def __init__(self, operation: str, cost: int | None, max_cost: int | None) -> None:
        self.cost, self.max_cost = cost, max_cost
        super().__init__(
            f"{operation}: query cost {cost} exceeds Shopify's single-query limit {max_cost}; "
            "ask for smaller pages (first: N) or use a bulk operation"
        )


def safe_message(message: str) -> str:
    """Shopify's error text describes the document, except where it echoes a variable's value
    ("... was provided invalid value ..."), which can be an e-mail address: that part is cut."""
    lowered = message.lower()
    cut = lowered.find("invalid value")
    if cut != -1:
        message = message[: cut + len("invalid value")] + " (value withheld)"
    return message[:300]


@dataclass(frozen=True)
class UserError:
    field: tuple[str, ...]
    message: str
    code: str | None


class UserErrors(ShopifyError):
    """A mutation answered HTTP 200 with `userErrors`."""

    def __init__(self, operation: str, errors: Sequence[UserError]) -> None:
        self.operation = operation
        self.errors = tuple(errors)
        # Field paths and codes only: a message may quote the input (an e-mail address).
        summary = ", ".join(f"{'.'.join(e.field) or '-'}:{e.code or 'ERROR'}" for e in self.errors)
        super().__init__(f"{operation}: user errors {summary}")

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors if e.code}


def graphql_url(settings: Settings, shop_domain: str) -> str:
    base = settings.shopify_admin_url.replace("{shop}", shop_domain).rstrip("/")
    return f"{base}/admin/api/{api_version(settings)}/graphql.json"


def operation_name(document: str) -> str:
    """`query CustomerOrders(...)` → "CustomerOrders", for logs and errors."""
    words = document.split("(", 1)[0].split("{", 1)[0].split()
    return words[1] if len(words) >= 2 and words[0] in {"query", "mutation"} else "anonymous"


class AdminClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        shop_domain: str,
        token: str | TokenSource,
        *,
        throttle: CostThrottle | None = None,
        max_attempts: int = 6,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.http = http
        self.settings = settings
        self.shop_domain = shop_domain
        self.url = graphql_url(settings, shop_domain)
        self._token = token
        self.throttle = throttle or CostThrottle()
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.throttled = 0  # THROTTLED/429 answers seen, for benchmarks and metrics

    async def _access_token(self) -> str:
        return self._token if isinstance(self._token, str) else await self._token()

    async def execute(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query or mutation and return its `data`."""
        name = operation_name(document)
        payload = {"query": document, "variables": variables or {}}
        last_wait: float | None = None
        for attempt in range(1, self.max_attempts + 1):
            reservation = await self.throttle.acquire(document)
            headers = {"X-Shopify-Access-Token": await self._access_token(), "Accept": "application/json"}
            try:
                response = await self.http.post(self.url, json=payload, headers=headers, timeout=self.timeout)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                self.throttle.release(reservation)
                last_wait = backoff_delay(attempt)
                log.warning(
                    "shopify %s %s: %s, retry %d", self.shop_domain, name, type(exc).__name__, attempt
                )
                await self._pause(attempt, last_wait)
                continue
            if response.status_code in (401, 403):
                self.throttle.release(reservation)
                raise ShopifyAuthError(
                    f"{self.shop_domain}: Shopify rejected the access token (HTTP {response.status_code})"
                )
            if response.status_code == 429 or response.status_code >= 500:
                self.throttle.release(reservation)
                if response.status_code == 429:
                    self.throttled += 1
                    last_wait = parse_retry_after(response.headers.get("Retry-After")) or backoff_delay(
                        attempt
                    )
                else:
                    last_wait = backoff_delay(attempt)
                log.warning(
                    "shopify %s %s: HTTP %d, retry %d", self.shop_domain, name, response.status_code, attempt
                )
                await self._pause(attempt, last_wait)
                continue
            if response.status_code != 200:
                self.throttle.release(reservation)
                raise ShopifyError(f"{self.shop_domain} {name}: unexpected HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                self.throttle.release(reservation)
                raise ShopifyError(f"{self.shop_domain} {name}: response is not JSON") from None
            cost = (body.get("extensions") or {}).get("cost")
            self.throttle.settle(reservation, document, cost)
            errors = body.get("errors")
            if isinstance(errors, str):  # REST-style error text, e.g. an unknown API version
                raise ShopifyError(f"{self.shop_domain} {name}: {safe_message(errors[:200])}")
            if errors:
                codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors}
                if "THROTTLED" in codes:
                    self.throttled += 1
                    requested = float(
                        (cost or {}).get("requestedQueryCost") or self.throttle.expected_cost(document)
                    )
                    last_wait = math.ceil(self.throttle.wait_for(requested) * 10) / 10 or 0.1
                    log.info("shopify %s %s: THROTTLED, waiting %.1fs", self.shop_domain, name, last_wait)
                    await self._pause(attempt, last_wait)
                    continue
                if "MAX_COST_EXCEEDED" in codes:
                    ext = next(e.get("extensions") or {} for e in errors)
                    raise MaxCostExceeded(name, ext.get("cost"), ext.get("maxCost"))
                if body.get("data") is None:
                    raise GraphQLErrors(name, errors)
                # Partial data (a field the token may not read): the caller still gets the rest.
                log.warning(
                    "shopify %s %s: partial data with %d error(s)", self.shop_domain, name, len(errors)
                )
            data = body.get("data")
            if not isinstance(data, dict):
                raise ShopifyError(f"{self.shop_domain} {name}: response has no data")
            return data
        raise ShopifyUnavailable(
            f"{self.shop_domain} {name}: no answer after {self.max_attempts} attempts", retry_after=last_wait
        )

    async def _pause(self, attempt: int, seconds: float) -> None:
        if attempt < self.max_attempts:
            await self.throttle.clock.sleep(seconds)

    async def mutate(self, document: str, variables: dict[str, Any], field: str) -> dict[str, Any]:
        """Run a mutation and return `data[field]`, raising `UserErrors` when it has any."""
        data = await self.execute(document, variables)
        result = data.get(field) or {}
        raise_user_errors(operation_name(document), result.get("userErrors"))
        return dict(result)

    async def paginate(
        self,
        document: str,
        variables: dict[str, Any] | None,
        path: Sequence[str],
        *,
        cursor_variable: str = "after",
    ) -> AsyncIterator[dict[str, Any]]:
        """Every node of the connection at `path` (e.g. ("customer", "orders")), page by page.
        The document takes `$after: String` and selects `pageInfo { hasNextPage endCursor }` and
        `nodes { ... }` on that connection."""
        values = dict(variables or {})
        values.pop(cursor_variable, None)
        while True:
            data: Any = await self.execute(document, values)
            for key in path:
                data = data.get(key) if isinstance(data, dict) else None
            if not isinstance(data, dict):
                return
            for node in data.get("nodes") or ():
                yield node
            page = data.get("pageInfo") or {}
            if not page.get("hasNextPage") or not page.get("endCursor"):
                return
            values[cursor_variable] = page["endCursor"]


def raise_user_errors(operation: str, errors: list[dict[str, Any]] | None) -> None:
    if errors:
        raise UserErrors(
            operation,
            [
                UserError(
                    tuple(str(f) for f in (e.get("field") or ())), str(e.get("message", "")), e.get("code")
                )
                for e in errors
            ],
        )
