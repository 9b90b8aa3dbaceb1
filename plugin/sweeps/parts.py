"""What a sweep needs from the other stages, as small typed contracts.

The runner only sees these callables, so it is tested with the real retention planner and the
Shopify fake and also with tiny doubles. `real_parts` wires the real stages: the Shopify bulk
stream (through the shop's Admin client, whose per-shop cost bucket is shared with all other work
for that shop), the retention planner in `sweep` mode with the shop's policy, and the pipeline
that turns decisions into steps of a ledger request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Holding
from plugin.models import Request
from plugin.shopify.records import CustomerRecord, OrderRecord


class Decision(Protocol):
    """One planner decision, as the sweep reads it (the retention engine's Decision fits)."""

    @property
    def holding(self) -> Holding: ...

    @property
    def action(self) -> str: ...  # "erase" | "keep" | "reduce" (a StrEnum is a str)

    @property
    def keep_until(self) -> date | None: ...


@dataclass(frozen=True, slots=True)
class ToolUnreadable:
    """In the tools stream in place of a tool's holdings: that connected tool could not be read
    (credentials refused, the service kept failing after retries). The sweep goes on with the
    other tools and reports it; the next sweep asks the tool again. `reason` holds no personal data."""

    adapter: str
    reason: str

    @property
    def ref(self) -> str:  # what a checkpoint records of the last record read
        return f"unreadable:{self.adapter}"


ToolRecord = Holding | ToolUnreadable

# One decision per holding, in the order given.
Planner = Callable[[Sequence[Holding], date], Sequence[Decision]]
# Queue the decisions (erase/reduce only) as steps of the request; idempotent by step key.
Enqueuer = Callable[[AsyncSession, Request, Sequence[Decision]], Awaitable[object]]


def no_tools() -> AsyncIterator[ToolRecord]:
    async def nothing() -> AsyncIterator[ToolRecord]:
        return
        yield  # noqa: V201 - makes this an async generator

    return nothing()


@dataclass(frozen=True)
class SweepParts:
    orders: Callable[[], AsyncIterator[OrderRecord]]  # a new stream each call (resume re-opens it)
    customers: Callable[[], AsyncIterator[CustomerRecord]]
    plan: Planner
    enqueue: Enqueuer
    policy_name: str = "custom"
    # What the shop's connected tools hold on their own (a newsletter tool's unsubscribed and
    # bounced addresses, with their dates): adapters offering `sweep_holdings()` (see wiring), a
    # `ToolUnreadable` for each tool that failed.
    tools: Callable[[], AsyncIterator[ToolRecord]] = no_tools
