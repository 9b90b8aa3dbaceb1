"""Cost-based pacing for the Admin GraphQL API: a leaky bucket per shop mirroring Shopify's.

Shopify charges each query its calculated cost against a per-app, per-shop bucket that refills at
`restoreRate` points/s (Standard plan 100/s; shopify-platform.md §4.6). Every response reports
`extensions.cost.throttleStatus`, so the bucket is re-synchronised from the server after each call
and never hard-coded. Before a call we reserve its expected cost (last seen cost of the same
document) and wait until the local estimate has room, counting calls still in flight, so THROTTLED
answers almost never happen even with several workers on one shop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from plugin.timing import SYSTEM_CLOCK, Clock

# Until the first response tells us otherwise (older shops report 1000/50, newer 2000/100).
DEFAULT_MAXIMUM = 1000.0
DEFAULT_RESTORE_RATE = 50.0
DEFAULT_COST = 50.0
MIN_WAIT = 0.001


@dataclass
class Reservation:
    cost: float


class CostThrottle:
    """One shop's bucket, shared by every client of that shop in this process."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        # Also the clock the shop's clients wait on after THROTTLED, 429 and network errors.
        self.clock = clock
        self.maximum = DEFAULT_MAXIMUM
        self.restore_rate = DEFAULT_RESTORE_RATE
        self.available = DEFAULT_MAXIMUM
        self._updated = clock.monotonic()
        self._reserved: dict[int, float] = {}
        self._lock = asyncio.Lock()
        self._costs: dict[str, float] = {}  # document → last requested cost

    def expected_cost(self, document: str) -> float:
        return self._costs.get(document, DEFAULT_COST)

    def _refill(self) -> None:
        now = self.clock.monotonic()
        self.available = min(self.maximum, self.available + (now - self._updated) * self.restore_rate)
        self._updated = now

    async def acquire(self, document: str) -> Reservation:
        cost = min(self.expected_cost(document), self.maximum)
        async with self._lock:  # one waiter at a time keeps the order fair and the arithmetic simple
            while True:
                self._refill()
                if self.available >= cost:
                    self.available -= cost
                    reservation = Reservation(cost)
                    self._reserved[id(reservation)] = cost
                    return reservation
                # At least a millisecond, so float rounding can never spin on a zero-length wait.
                await self.clock.sleep(max(MIN_WAIT, (cost - self.available) / self.restore_rate))

    def settle(self, reservation: Reservation, document: str, cost: dict[str, Any] | None) -> None:
        """Take Shopify's view of the bucket from a response's `extensions.cost`."""
        self._reserved.pop(id(reservation), None)
        if not cost:
            return
        requested = cost.get("requestedQueryCost")
        if isinstance(requested, int | float):
            self._costs[document] = float(requested)
        status = cost.get("throttleStatus") or {}
        try:
            self.maximum = float(status["maximumAvailable"])
            self.restore_rate = float(status["restoreRate"]) or self.restore_rate
            server_available = float(status["currentlyAvailable"])
        except (KeyError, TypeError, ValueError):
            return
        # The server's figure does not yet include calls that are still in flight.
        self.available = max(0.0, server_available - sum(self._reserved.values()))
        self._updated = self.clock.monotonic()

    def release(self, reservation: Reservation) -> None:
        """A call that never reached Shopify (network error) costs nothing."""
        if self._reserved.pop(id(reservation), None) is not None:
            self.available = min(self.maximum, self.available + reservation.cost)

    def wait_for(self, requested: float) -> float:
        """Seconds until `requested` points are available again (after a THROTTLED answer)."""
        self._refill()
        return max(0.0, (requested - self.available) / self.restore_rate)


class ShopThrottles:
    """The process's buckets, one per shop."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._by_shop: dict[str, CostThrottle] = {}

    def for_shop(self, shop_domain: str) -> CostThrottle:
        found = self._by_shop.get(shop_domain)
        if found is None:
            found = self._by_shop[shop_domain] = CostThrottle(self._clock)
        return found
