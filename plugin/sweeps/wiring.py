"""The real stages behind a sweep's parts: Shopify's bulk stream, the retention planner, the pipeline
that turns decisions into steps. Imported by name so the sweep stays testable with doubles and the
stages stay free to grow without this package importing their internals."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from plugin.holdings import Holding
from plugin.models import Request
from plugin.runtime import Runtime
from plugin.shopify.records import CustomerRecord, OrderRecord
from plugin.sweeps.parts import Decision, SweepParts
from plugin.sweeps.runner import load_shop


def _module(name: str) -> Any:
    return importlib.import_module(name)


def shop_policy(policy_toml: str | None, country: str | None) -> Any:
    retention = _module("plugin.retention")
    if policy_toml:
        return retention.Policy.from_toml(policy_toml)
    return retention.default_policy_for(country)


def sweep_planner(policy: Any) -> Any:
    """`plan(holdings, today)` in sweep mode with one policy (compiled once by the planner)."""
    retention = _module("plugin.retention")
    mode = retention.Mode.SWEEP

    def plan(holdings: Sequence[Holding], today: date) -> Sequence[Decision]:
        result = retention.plan(list(holdings), policy, today, mode)
        decisions: Sequence[Decision] = getattr(result, "decisions", result)
        return decisions

    return plan


async def enqueue(session: AsyncSession, request: Request, decisions: Sequence[Decision]) -> object:
    steps = _module("plugin.pipelines.steps")
    return await steps.enqueue_plan(session, request, decisions, dry_run=False)


async def real_parts(runtime: Runtime, shop_domain: str) -> SweepParts:
    async with runtime.db.session() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None:
            raise LookupError(f"no shop {shop_domain!r}")
        policy = shop_policy(shop.policy_toml, shop.country)
    tokens = _module("plugin.shopify.tokens")
    bulk = _module("plugin.shopify.bulk")
    # One Admin client per sweep: its cost bucket is the shop's, shared with every other piece of
    # work for the same shop, so a sweep never starves a customer's request of API budget.
    client = await tokens.admin_client(runtime, shop_domain)

    def orders() -> AsyncIterator[OrderRecord]:
        stream: AsyncIterator[OrderRecord] = bulk.stream_orders(client)
        return stream

    def customers() -> AsyncIterator[CustomerRecord]:
        stream: AsyncIterator[CustomerRecord] = bulk.stream_customers(client)
        return stream

    async def tools() -> AsyncIterator[Holding]:
        """Holdings the shop's connected tools keep on their own, from every adapter that offers
        `sweep_holdings()` (an async iterator of holdings with their dates, refs its `erase` accepts
        without a subject: e.g. a newsletter tool's unsubscribed and bounced profiles)."""
        connections = _module("plugin.connections")
        async with runtime.db.session() as session:
            current = await load_shop(session, shop_domain)
            adapters = await connections.build_adapters(runtime, session, current) if current else []
        for adapter in adapters:
            offered = getattr(adapter, "sweep_holdings", None)
            if offered is not None:
                async for holding in offered():
                    yield holding

    return SweepParts(
        orders=orders,
        customers=customers,
        tools=tools,
        plan=sweep_planner(policy),
        enqueue=enqueue,
        policy_name=str(getattr(policy, "preset", "custom")),
    )
