"""The real stages behind a sweep's parts: Shopify's bulk stream, the retention planner, the pipeline
that turns decisions into steps. The runner sees only `SweepParts`, so it is tested with doubles."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter, AdapterError, AuthFailed, TemporaryFailure
from plugin import connections, retention
from plugin.holdings import Holding
from plugin.ledger import load_shop
from plugin.models import Request
from plugin.pipelines.enqueue import enqueue_plan_ids
from plugin.runtime import Runtime
from plugin.shopify import bulk, tokens
from plugin.shopify.records import CustomerRecord, OrderRecord
from plugin.sweeps import groups
from plugin.sweeps.parts import Decision, SweepParts, ToolRecord, ToolUnreadable

log = logging.getLogger("gallra.sweeps")


def sweep_planner(policy: retention.Policy) -> Callable[[Sequence[Holding], date], Sequence[Decision]]:
    """`plan(holdings, today)` in sweep mode with one policy (compiled once by the planner)."""
    mode = retention.Mode.SWEEP

    def plan(holdings: Sequence[Holding], today: date) -> Sequence[Decision]:
        return retention.plan(list(holdings), policy, today, mode).decisions

    return plan


async def enqueue(session: AsyncSession, request: Request, decisions: Sequence[Decision]) -> object:
    # The runner hands back what `sweep_planner` produced: the retention engine's decisions.
    planned = cast(Sequence[retention.Decision], decisions)
    created = await enqueue_plan_ids(session, request, planned, dry_run=False)
    # In the same transaction: a carrier's group is fixed before any worker sees its steps.
    await groups.group_carrier_steps(session, request.id, created)
    return created


async def tool_holdings(adapters: Sequence[Adapter]) -> AsyncIterator[ToolRecord]:
    """Holdings the shop's connected tools keep on their own, from every adapter that offers
    `sweep_holdings()` (an async iterator of holdings with their dates, refs its `erase` accepts
    without a subject: e.g. a newsletter tool's unsubscribed and bounced profiles). Each tool is
    read on its own: one that fails (auth, 5xx after the HTTP helper's retries) becomes a
    `ToolUnreadable` in the stream and the others are still read."""
    for adapter in adapters:
        if not adapter.can_sweep:
            continue
        try:
            async for holding in adapter.sweep_holdings():
                yield holding
        except Exception as exc:
            # The class only: a provider's message may quote what it holds about someone.
            log.warning("sweep: could not read %s (%s)", adapter.name, type(exc).__name__)
            yield ToolUnreadable(adapter.name, unreadable_reason(exc))


def unreadable_reason(exc: Exception) -> str:
    """Why a tool could not be read, for the shop owner, without anything the provider said."""
    if isinstance(exc, AuthFailed):
        why = "its credentials were refused"
    elif isinstance(exc, TemporaryFailure):
        why = "it kept failing after retries"
    elif isinstance(exc, AdapterError):
        why = "it refused the listing"
    else:
        why = "unexpected error"
    return f"{why} ({type(exc).__name__})"


async def real_parts(runtime: Runtime, shop_domain: str) -> SweepParts:
    async with runtime.db.session() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            raise LookupError(f"no shop {shop_domain!r}")
        policy = retention.shop_policy(shop)
    # One Admin client per sweep: its cost bucket is the shop's, shared with every other piece of
    # work for the same shop, so a sweep never starves a customer's request of API budget.
    client = await tokens.admin_client(runtime, shop_domain)

    def orders() -> AsyncIterator[OrderRecord]:
        stream: AsyncIterator[OrderRecord] = bulk.stream_orders(client)
        return stream

    def customers() -> AsyncIterator[CustomerRecord]:
        stream: AsyncIterator[CustomerRecord] = bulk.stream_customers(client)
        return stream

    async def tools() -> AsyncIterator[ToolRecord]:
        async with runtime.db.session() as session:
            current = await load_shop(session, shop_domain)
            adapters = await connections.build_adapters(runtime, session, current) if current else []
        async for record in tool_holdings(adapters):
            yield record

    return SweepParts(
        orders=orders,
        customers=customers,
        tools=tools,
        plan=sweep_planner(policy),
        enqueue=enqueue,
        policy_name=policy.preset,
    )
