"""A subject's holdings: Shopify's orders (with shipments at carriers), what each enabled adapter
finds, and Gallra's own working copy of the request."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter, AdapterError
from adapters.gallra import request_holding
from adapters.shopify_holdings import order_holdings, shop_date
from plugin.documents.gaps import (
    NotExamined,
    NothingExamined,
    ShopifyNotExamined,
    nothing_examined,
    shopify_gap,
    tool_gap,
)
from plugin.executor.context import ExecContext
from plugin.executor.records import subject_of
from plugin.holdings import SHOPIFY, Category, Holding, Subject, shipments_of_holdings
from plugin.models import Request, Shop


@dataclass(frozen=True)
class Gathered:
    subject: Subject
    holdings: list[Holding]
    orders_found: int
    orders_missing: int
    systems: list[str]  # adapters asked
    # Sources that could not be examined, and why; `examined` the ones that answered.
    not_examined: list[NotExamined] = dataclasses.field(default_factory=list)
    examined: list[str] = dataclasses.field(default_factory=list)


def own_holding(request: Request, shop: Shop) -> Holding:
    return request_holding(request.id, shop_date(request.received_at, shop.timezone))


async def gather(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop) -> Gathered:
    """Shopify first (its orders carry the shipments the carriers' adapters need), then every other
    adapter's `find` with the shipments in the subject. Without a Shopify connection (no token),
    the requested orders come from `Sources.shopify_orders`.

    A source that cannot be read (no token, the token refused, a connection failing) is recorded
    as not examined (`plugin.documents.gaps`) and the others are still asked with what the request
    gives. A failure that may pass is raised instead while planning has attempts left, so it is
    tried again; if no source could be examined at all, `NothingExamined` is raised."""
    order_ids = [int(o) for o in request.order_ids or ()]
    subject = subject_of(ctx.runtime.vault, request)
    adapters = await ctx.sources.adapters(session, shop)
    shopify = next((a for a in adapters if a.name == SHOPIFY), None)
    last_attempt = request.attempts >= ctx.config.max_attempts
    holdings: list[Holding] = []
    gaps: list[NotExamined] = []
    examined: list[str] = []
    failed: set[str] = set()

    def failure(adapter: Adapter, error: AdapterError) -> None:
        if error.retryable and not last_attempt:
            raise error
        gaps.append(tool_gap(adapter.name, adapter.title, error, order_ids))
        failed.add(adapter.name)

    if shopify is not None:
        try:
            holdings.extend(await shopify.find(subject))
            examined.append(SHOPIFY)
        except AdapterError as exc:
            failure(shopify, exc)
    else:
        try:
            for order in await ctx.sources.shopify_orders(shop, order_ids):
                holdings.extend(order_holdings(order, shop.timezone))
            examined.append(SHOPIFY)
        except ShopifyNotExamined as exc:
            gaps.append(shopify_gap(exc.reason, order_ids))
        except AdapterError as exc:
            if exc.retryable and not last_attempt:
                raise
            gaps.append(tool_gap(SHOPIFY, "Shopify", exc, order_ids))
    shipments = shipments_of_holdings(holdings)
    subject = dataclasses.replace(subject, shipments=shipments)
    for adapter in adapters:
        if adapter is not shopify and adapter.can_find:
            try:
                holdings.extend(await adapter.find(subject))
                examined.append(adapter.name)
            except AdapterError as exc:
                failure(adapter, exc)
    if nothing_examined(gaps, examined):
        raise NothingExamined(gaps, retryable=any(g.retryable for g in gaps))
    holdings.append(own_holding(request, shop))
    unique: dict[tuple[str, str], Holding] = {}
    for holding in holdings:
        unique.setdefault((holding.system, holding.ref), holding)
    found = {int(h.ref.split(":")[1]) for h in unique.values() if h.category == Category.ACCOUNTING_RECORD}
    return Gathered(
        subject=subject,
        holdings=list(unique.values()),
        orders_found=len(found),
        orders_missing=len(set(order_ids) - found),
        systems=sorted(a.name for a in adapters if a.name not in failed),
        not_examined=gaps,
        examined=sorted(examined),
    )
