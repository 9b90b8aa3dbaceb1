"""`customers/redact`: gather what every system holds about the customer, plan in `request` mode,
queue the steps. Newsletter subscriptions go (and are suppressed where the provider can), shipping
data goes where no rule keeps it, orders are kept for bookkeeping until their date, and Gallra's
own copy of the request is erased or kept encrypted until its rule ends. Finalising writes the
certificate of erasure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.shopify_holdings import shop_date
from plugin import evidence, legal_holds
from plugin.documents.certificate import issue_certificate
from plugin.executor.context import ExecContext
from plugin.models import Request, Shop, utcnow
from plugin.pipelines.enqueue import action_name, enqueue_plan
from plugin.pipelines.gather import gather
from plugin.pipelines.holds import held_by, hold_ends

Apply = Callable[[AsyncSession, Request], Awaitable[None]]


def subject_entry(request: Request) -> dict[str, Any]:
    return evidence.subject_ref(request.email_hash, request.phone_hash, request.customer_id)


async def prepare(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop) -> Apply:
    gathered = await gather(ctx, session, request, shop)
    now = utcnow()
    today = shop_date(now, shop.timezone) or now.date()
    held = await held_by(ctx, session, request)
    holdings = legal_holds.apply(gathered.holdings, held)
    decisions = hold_ends(list(ctx.sources.plan(shop, holdings, today, "request")), held)

    async def apply(session: AsyncSession, request: Request) -> None:
        dry_run = shop.dry_run or request.dry_run
        request.dry_run = dry_run
        await enqueue_plan(session, request, decisions, dry_run=dry_run, now=now)
        summary: dict[str, int] = {}
        for decision in decisions:
            name = action_name(decision.action)
            summary[name] = summary.get(name, 0) + 1
        await evidence.append(
            session,
            request.shop_domain,
            "planned",
            {
                evidence.SUBJECT: subject_entry(request),
                "mode": "request",
                "dry_run": dry_run,
                "systems": gathered.systems,
                "holdings": len(gathered.holdings),
                "orders_found": gathered.orders_found,
                "orders_missing": gathered.orders_missing,
                "actions": summary,
                "not_examined": [g.as_dict() for g in gathered.not_examined],
                "legal_holds": sorted(h.id for h in held),
            },
            request.id,
        )

    return apply


async def finalize(ctx: ExecContext, session: AsyncSession, request: Request, shop: Shop | None) -> None:
    await issue_certificate(ctx.runtime.vault, session, request, shop)
