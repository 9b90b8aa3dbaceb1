"""A `keep until DATE` step comes due: re-plan its holding with today's policy and data.

The policy may have been lengthened, a legal hold may have been added, or the rule may simply have
run out. The result is either a new hold (the step waits again, until the new date) or the held
step is closed as `replanned` and the new decision is queued as a fresh step of the same request.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin import evidence
from plugin.executor.context import ExecContext
from plugin.executor.steps import load_shop, refresh_request, step_record
from plugin.models import Request, Step
from plugin.pipelines.steps import action_name, decision_to_dict, due_on, enqueue_plan, holding_from_dict
from plugin.shopify.holdings import shop_date


async def replan_hold(ctx: ExecContext, step_id: int) -> None:
    # The worker's clock, as for claiming: a hold that came due by it is judged on the same day.
    now = ctx.config.clock()
    async with ctx.runtime.db.transaction() as session:
        step = (await session.execute(select(Step).where(Step.id == step_id).with_for_update())).scalar_one()
        if step.state != "running" or step.lease_owner != ctx.config.owner:
            return
        request = (
            await session.execute(
                select(Request).where(Request.id == step.request_id, Request.shop_domain == step.shop_domain)
            )
        ).scalar_one()
        shop = await load_shop(session, step.shop_domain)
        step.lease_owner = step.lease_expires_at = None
        if shop is None:
            step.state, step.finished_at, step.last_error = "failed", now, "the shop is no longer installed"
            await refresh_request(session, request.id, now)
            return
        today = shop_date(now, shop.timezone) or now.date()
        holding = holding_from_dict(step.decision["holding"])
        mode = "request" if request.kind != "sweep" else "sweep"
        decisions = [
            d for d in ctx.sources.plan(shop, [holding], today, mode) if d.holding.ref == holding.ref
        ]
        if not decisions:
            step.state, step.outcome, step.finished_at = "done", "no_longer_held", now
            await evidence.append(session, step.shop_domain, "hold_ended", step_record(step), request.id)
            await refresh_request(session, request.id, now)
            return
        decision = decisions[0]
        if action_name(decision.action) == "keep":
            until = decision.keep_until if decision.keep_until and decision.keep_until > today else None
            # A planner that keeps without a later date is asked again tomorrow, never erased by us.
            step.next_attempt_at = due_on(until) if until else due_on(today + timedelta(days=1))
            step.state, step.attempts = "held", 0
            step.decision = decision_to_dict(decision)
            await evidence.append(session, step.shop_domain, "hold_extended", step_record(step), request.id)
            return
        step.state, step.outcome, step.finished_at = "done", "replanned", now
        await evidence.append(session, step.shop_domain, "hold_expired", step_record(step), request.id)
        if request.status == "done":
            request.status = "in_progress"
        await enqueue_plan(
            session,
            request,
            [decision],
            dry_run=shop.dry_run or request.dry_run,
            now=now,
            key_suffix=f"@{today}",
        )
        await refresh_request(session, request.id, now)
