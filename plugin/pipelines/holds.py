"""A `keep until DATE` step comes due: re-plan its holding with today's policy and data.

The policy may have been lengthened, a legal hold may have been placed or released
(`plugin.legal_holds`), an order's dispute or return may have been settled, or the rule may simply
have run out. Before planning, the holding's hold flags are set from the customer's active holds,
and an order held for an open dispute or return is read again from Shopify (when Shopify cannot be
read, the flags it had stay: kept, asked again tomorrow). The result is either a new hold (the step
waits again, until the new date) or the held step is closed as `replanned` and the new decision is
queued as a fresh step of the same request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import AdapterError
from adapters.shopify_holdings import OPEN_CLAIM_FLAGS, order_holdings, shop_date
from plugin import evidence, legal_holds
from plugin.documents.gaps import ShopifyNotExamined
from plugin.executor.context import ExecContext
from plugin.executor.records import step_record, subject_of
from plugin.executor.status import refresh_request
from plugin.holdings import Holding, holding_from_dict
from plugin.ledger import load_shop
from plugin.models import LegalHold, Request, Shop, Step
from plugin.pipelines.enqueue import (
    action_name,
    decision_to_dict,
    due_on,
    enqueue_plan,
)
from plugin.retention import DecisionLike
from plugin.retention.planner import Decision
from plugin.states import RequestStatus, StepState


async def held_by(ctx: ExecContext, session: AsyncSession, request: Request) -> list[LegalHold]:
    """The shop's active legal holds on the request's customer (none for a sweep: it names nobody)."""
    if request.kind == "sweep":
        return []
    subject = subject_of(ctx.runtime.vault, request)
    return await legal_holds.holds_for_subject(
        session, ctx.runtime.vault, request.shop_domain, subject.customer_id, subject.email
    )


def hold_ends(decisions: Sequence[DecisionLike], held: Sequence[LegalHold]) -> list[DecisionLike]:
    """A holding kept by legal holds that all have an end date is kept until the last of them (the
    planner's flag rules know no dates); otherwise it keeps no date and is looked at daily."""
    until = legal_holds.end_of(held)
    if until is None:
        return list(decisions)
    return [
        d._replace(keep_until=until)
        if isinstance(d, Decision) and action_name(d.action) == "keep" and legal_holds.is_hold_rule(d.rule_id)
        else d
        for d in decisions
    ]


def _order_id(ref: str) -> int | None:
    """The Shopify order behind an order or shipment holding (`order:1`, `order:1:contact`,
    `shipment:1:RR1SE`)."""
    parts = ref.split(":")
    if len(parts) >= 2 and parts[0] in ("order", "shipment") and parts[1].isdigit():
        return int(parts[1])
    return None


async def _claims_now(ctx: ExecContext, shop: Shop, holding: Holding) -> Holding:
    """The holding with its dispute/return flags as Shopify says today."""
    order_id = _order_id(holding.ref)
    if order_id is None or not holding.flags & OPEN_CLAIM_FLAGS:
        return holding
    try:
        orders = await ctx.sources.shopify_orders(shop, [order_id])
    except (ShopifyNotExamined, AdapterError):
        return holding  # not known to be settled: stays kept
    fresh = next(
        (
            h
            for o in orders
            for h in order_holdings(o, shop.timezone)
            if h.ref == holding.ref and o.id == order_id
        ),
        None,
    )
    # An order Shopify no longer has has no open claim left.
    claims = fresh.flags & OPEN_CLAIM_FLAGS if fresh is not None else frozenset()
    return dataclasses.replace(holding, flags=(holding.flags - OPEN_CLAIM_FLAGS) | claims)


async def replan_hold(ctx: ExecContext, step_id: int) -> None:
    async with ctx.runtime.db.session() as session:
        step = (
            await session.execute(
                select(Step).where(Step.id == step_id, Step.lease_owner == ctx.config.owner)
            )
        ).scalar_one_or_none()
        shop = await load_shop(session, step.shop_domain) if step is not None else None
        holding = holding_from_dict(step.decision["holding"]) if step is not None else None
    if shop is not None and holding is not None:
        # Outside the transaction: Shopify may take a while to answer.
        holding = await _claims_now(ctx, shop, holding)
    # The worker's clock, as for claiming: a hold that came due by it is judged on the same day.
    now = ctx.config.clock()
    async with ctx.runtime.db.transaction() as session:
        if shop is not None:
            # Two held steps of one request re-plan at once (a released hold wakes them all): each
            # ends in an evidence append and the request's row lock, and one that took the row
            # first would deadlock with one that took the evidence lock first.
            await evidence.lock_chain(session, shop.domain)
        step = (await session.execute(select(Step).where(Step.id == step_id).with_for_update())).scalar_one()
        if step.state != StepState.RUNNING or step.lease_owner != ctx.config.owner:
            return
        request = (
            await session.execute(
                select(Request).where(Request.id == step.request_id, Request.shop_domain == step.shop_domain)
            )
        ).scalar_one()
        shop = await load_shop(session, step.shop_domain)
        step.lease_owner = step.lease_expires_at = None
        if shop is None:
            step.state, step.finished_at, step.last_error = (
                StepState.FAILED,
                now,
                "the shop is no longer installed",
            )
            await refresh_request(session, request.id, now)
            return
        today = shop_date(now, shop.timezone) or now.date()
        holding = holding or holding_from_dict(step.decision["holding"])
        held = await held_by(ctx, session, request)
        holding = legal_holds.apply([holding], held)[0]
        mode = "request" if request.kind != "sweep" else "sweep"
        decisions = hold_ends(
            [d for d in ctx.sources.plan(shop, [holding], today, mode) if d.holding.ref == holding.ref], held
        )
        if not decisions:
            step.state, step.outcome, step.finished_at = StepState.DONE, "no_longer_held", now
            await evidence.append(session, step.shop_domain, "hold_ended", step_record(step), request.id)
            await refresh_request(session, request.id, now)
            return
        decision = decisions[0]
        if action_name(decision.action) == "keep":
            until = decision.keep_until if decision.keep_until and decision.keep_until > today else None
            # A planner that keeps without a later date is asked again tomorrow, never erased by us.
            step.next_attempt_at = due_on(until) if until else due_on(today + timedelta(days=1))
            step.state, step.attempts = StepState.HELD, 0
            step.decision = decision_to_dict(decision)
            await evidence.append(session, step.shop_domain, "hold_extended", step_record(step), request.id)
            # Other steps of the request may have finished while this one ran: its status is
            # derived again now, as after any step (it said `in_progress` while this one ran).
            await refresh_request(session, request.id, now)
            return
        step.state, step.outcome, step.finished_at = StepState.DONE, "replanned", now
        await evidence.append(session, step.shop_domain, "hold_expired", step_record(step), request.id)
        if request.status == RequestStatus.DONE:
            request.status = RequestStatus.IN_PROGRESS
        await enqueue_plan(
            session,
            request,
            [decision],
            dry_run=shop.dry_run or request.dry_run,
            now=now,
            key_suffix=f"@{today}",
        )
        await refresh_request(session, request.id, now)
