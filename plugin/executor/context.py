"""What every part of the executor is handed: the runtime, where data comes from, and its tuning."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter
from plugin.holdings import Holding
from plugin.models import Shop, utcnow
from plugin.retention import DecisionLike
from plugin.runtime import Runtime
from plugin.shopify.records import OrderRecord


def worker_id() -> str:
    """Unique per worker, readable in the admin page: host, process and a random tail."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerConfig:
    owner: str = field(default_factory=worker_id)
    concurrency: int = 8  # claims in flight per worker (steps wait on provider rate limits)
    lease_seconds: float = 120.0  # renewed every third of it while a call runs
    poll_seconds: float = 5.0  # idle wait when nothing wakes the worker
    backoff_base: float = 30.0  # first retry after 15-30 s, doubling per attempt
    backoff_cap: float = 6 * 3600.0
    max_attempts: int = 8  # for planning a request; steps carry their own max_attempts
    # What time it is for claiming work and for time-gated decisions (a held shop/redact's 48 hours);
    # tests pass a fixed or advancing clock.
    clock: Callable[[], datetime] = field(default=utcnow)


class Sources(Protocol):
    async def adapters(
        self, session: AsyncSession, shop: Shop, *, step_id: int | None = None
    ) -> list[Adapter]:
        """Every enabled adapter of the shop, Shopify's included."""
        ...

    async def adapter(
        self, session: AsyncSession, shop: Shop, name: str, *, step_id: int | None = None
    ) -> Adapter | None:
        """The named adapter if the shop has it enabled, else None."""
        ...

    async def shopify_orders(self, shop: Shop, order_ids: Sequence[int]) -> list[OrderRecord]:
        """The orders (with fulfillments and tracking) that Shopify still has; missing ones left out.
        Raises `ShopifyNotExamined` when Shopify cannot be read for the shop (no token, the token
        refused), an `AdapterError` when it may answer later."""
        ...

    def plan(self, shop: Shop, holdings: Sequence[Holding], today: date, mode: str) -> Sequence[DecisionLike]:
        """The retention planner with the shop's policy, in `request` or `sweep` mode."""
        ...


@dataclass
class ExecContext:
    runtime: Runtime
    sources: Sources
    config: WorkerConfig
