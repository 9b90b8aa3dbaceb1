"""A subject's holdings: Shopify's orders (with shipments at carriers), what each enabled adapter
finds, and Gallra's own working copy of the request."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from plugin.executor.context import ExecContext
from plugin.executor.steps import subject_of
from plugin.holdings import Category, Holding, Subject
from plugin.models import Request, Shop
from plugin.shopify.holdings import order_holdings, order_shipments, shop_date


@dataclass(frozen=True)
class Gathered:
    subject: Subject
    holdings: list[Holding]
    orders_found: int
    orders_missing: int
    systems: list[str]  # adapters asked


def own_holding(request: Request, shop: Shop) -> Holding:
    return Holding(
        system="gallra",
        category=Category.APP_REQUEST_DATA,
        ref=f"request:{request.id}",
        label=f"Gallra's working data of request {request.id}",
        last_activity=shop_date(request.received_at, shop.timezone),
    )


async def gather(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop) -> Gathered:
    order_ids = [int(o) for o in request.order_ids or ()]
    orders = await ctx.sources.shopify_orders(shop, order_ids)
    holdings: list[Holding] = []
    for order in orders:
        holdings.extend(order_holdings(order, shop.timezone))
    shipments = tuple(s for order in orders for s in order_shipments(order, shop.timezone))
    subject = dataclasses.replace(subject_of(ctx.runtime.vault, request), shipments=shipments)
    adapters = await ctx.sources.adapters(session, shop)
    for adapter in adapters:
        if adapter.can_find:
            holdings.extend(await adapter.find(subject))
    holdings.append(own_holding(request, shop))
    unique: dict[tuple[str, str], Holding] = {}
    for holding in holdings:
        unique.setdefault((holding.system, holding.ref), holding)
    found = {o.id for o in orders}
    return Gathered(
        subject=subject,
        holdings=list(unique.values()),
        orders_found=len(found),
        orders_missing=len(set(order_ids) - found),
        systems=sorted(a.name for a in adapters),
    )
