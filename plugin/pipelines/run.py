"""What the worker does with what it claimed. For a request it has leased: `plan_request` (gather
and plan outside any transaction, then persist the steps in one) and `finalize_request` (the steps
of systems erased last, i.e. the app's own data, then the request's documents, then `done`). For a
step: `run_claimed_step`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from adapters.base import AdapterError
from plugin import evidence
from plugin.documents.gaps import NothingExamined, planned_gaps
from plugin.executor.backoff import next_attempt_at
from plugin.executor.context import ExecContext
from plugin.executor.dispatch import run_step
from plugin.executor.leases import claim_last_steps, heartbeat, renew_request
from plugin.executor.status import refresh_request
from plugin.ledger import load_shop
from plugin.models import Request, Shop, Step, utcnow
from plugin.pipelines import customer_redact, data_request, shop_redact
from plugin.pipelines.holds import replan_hold
from plugin.states import RequestStatus, ShopStatus, StepState

log = logging.getLogger("gallra.pipelines")

Apply = Callable[[AsyncSession, Request], Awaitable[None]]
Prepare = Callable[[ExecContext, AsyncSession, Request, Shop], Awaitable[Apply]]
Finalize = Callable[[ExecContext, AsyncSession, Request, Shop | None], Awaitable[None]]

PREPARE: dict[str, Prepare] = {
    "customer_redact": customer_redact.prepare,
    "data_request": data_request.prepare,
}
FINALIZE: dict[str, Finalize] = {
    "customer_redact": customer_redact.finalize,
    "data_request": data_request.finalize,
}


class PlanningFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


async def _leased(session: AsyncSession, ctx: ExecContext, request_id: int) -> Request | None:
    request = (
        await session.execute(select(Request).where(Request.id == request_id).with_for_update())
    ).scalar_one_or_none()
    if request is None or request.lease_owner != ctx.config.owner:
        return None
    return request


async def work_on_request(ctx: ExecContext, request_id: int) -> None:
    """Plan or finalise a leased request, whichever it needs."""
    async with ctx.runtime.db.session() as session:
        request = await session.get(Request, request_id)
        if request is None or request.lease_owner != ctx.config.owner:
            return
        status = request.status
    async with heartbeat(ctx, request_id, renew_request):
        if status == RequestStatus.FINALIZING:
            await finalize_request(ctx, request_id)
        else:
            await plan_request(ctx, request_id)


async def plan_request(ctx: ExecContext, request_id: int) -> None:
    try:
        async with ctx.runtime.db.session() as session:
            request = await session.get(Request, request_id)
            if request is None:
                return
            shop = await load_shop(session, request.shop_domain)
            kind = request.kind
            if kind not in ("shop_redact", "sweep"):
                if shop is None:
                    # Not installed here (yet): no connections and no Shopify token, so only
                    # Gallra's own data about the subject is planned, with the default policy.
                    shop = Shop(domain=request.shop_domain, status=ShopStatus.UNKNOWN, dry_run=False)
                prepare = PREPARE.get(kind)
                if prepare is None:
                    raise PlanningFailed(f"no pipeline for requests of kind {kind!r}", retryable=False)
                apply = await prepare(ctx, session, request, shop)
    except PlanningFailed as exc:
        await _planning_failed(ctx, request_id, str(exc), exc.retryable, exc.retry_after)
        return
    except AdapterError as exc:
        await _planning_failed(ctx, request_id, str(exc), exc.retryable, exc.retry_after)
        return
    except NothingExamined as exc:
        # Not one source could be looked at: failed (visibly, retryable by the operator once the
        # cause is fixed), never a `done` that says nothing.
        await _planning_failed(ctx, request_id, str(exc), exc.retryable, None)
        return
    except Exception as exc:
        # Messages of unexpected errors may quote data; only the type is kept.
        log.error("request %d: planning failed with %s", request_id, type(exc).__name__)
        await _planning_failed(ctx, request_id, f"planning failed: {type(exc).__name__}", True, None)
        return
    async with ctx.runtime.db.transaction() as session:
        request = await _leased(session, ctx, request_id)
        if request is None:
            return
        if kind == "shop_redact":
            await shop_redact.apply(session, ctx.runtime.vault, request, ctx.config.clock())
        elif kind == "sweep":
            request.status = RequestStatus.IN_PROGRESS
        else:
            request.status = RequestStatus.PLANNING
            await apply(session, request)
            if request.status == RequestStatus.PLANNING:
                request.status = RequestStatus.IN_PROGRESS
        request.lease_owner = request.lease_expires_at = None
        request.attempts = 0
        request.last_error = None
        await session.flush()
        if request.status not in (RequestStatus.FINALIZING, RequestStatus.ON_HOLD):
            await refresh_request(session, request.id)


async def _planning_failed(
    ctx: ExecContext, request_id: int, message: str, retryable: bool, retry_after: float | None
) -> None:
    async with ctx.runtime.db.transaction() as session:
        request = await _leased(session, ctx, request_id)
        if request is None:
            return
        request.lease_owner = request.lease_expires_at = None
        request.last_error = message[:500]
        if retryable and request.attempts < ctx.config.max_attempts:
            request.status = RequestStatus.PLANNING
            request.next_attempt_at = next_attempt_at(
                ctx.config.clock(),  # the clock claims are judged on
                request.attempts,
                base=ctx.config.backoff_base,
                cap=ctx.config.backoff_cap,
                retry_after=retry_after,
            )
            return
        request.status = RequestStatus.FAILED
        await evidence.append(
            session, request.shop_domain, "request_failed", {"error": request.last_error}, request.id
        )


async def finalize_request(ctx: ExecContext, request_id: int) -> None:
    async with ctx.runtime.db.session() as session:
        request = await session.get(Request, request_id)
        if request is None:
            return
        kind = request.kind
    finalize = FINALIZE.get(kind)
    if kind == "data_request" and finalize is not None:
        # The extract includes the exports, which erasing the app's own data would delete.
        await _documents(ctx, request_id, finalize)
        finalize = None
    await _last_steps(ctx, request_id)
    async with ctx.runtime.db.transaction() as session:
        request = await _leased(session, ctx, request_id)
        if request is None:
            return
        request.lease_owner = request.lease_expires_at = None
        if request.status != RequestStatus.FINALIZING:
            # A hold came due meanwhile and queued new work: finalise again once that is done.
            return
        if waiting := await _last_steps_waiting(session, request):
            # A step erased last is not settled yet: finalise again then.
            request.next_attempt_at = waiting
            return
        shop = await load_shop(session, request.shop_domain)
        if finalize is not None:
            await finalize(ctx, session, request, shop)
        request.status, request.completed_at = RequestStatus.DONE, utcnow()
        done: dict[str, object] = {"kind": kind}
        if gaps := await planned_gaps(session, request):
            # Done with gaps: what could not be examined is named with the completion too.
            done["not_examined"] = sorted({str(g.get("system")) for g in gaps})
        await evidence.append(session, request.shop_domain, "request_done", done, request.id)
    if kind == "data_request":
        async with ctx.runtime.db.session() as session:
            shop = await load_shop(session, request.shop_domain)
        await data_request.notify_owner(ctx, shop, request)


async def _last_steps(ctx: ExecContext, request_id: int) -> None:
    """Run the request's steps of systems erased last (`Adapter.erased_last`: Gallra's own data,
    which the other steps' look-ups and the extract needed until now), each the way every step
    runs (`plugin.executor.dispatch.run_step`)."""
    while True:
        async with ctx.runtime.db.transaction() as session:
            claimed = await claim_last_steps(
                session,
                request_id,
                ctx.config.owner,
                ctx.config.clock(),
                limit=ctx.config.concurrency * 16,
                lease_seconds=ctx.config.lease_seconds,
            )
        if not claimed:
            return
        for step_id in claimed:
            await run_claimed_step(ctx, step_id)


async def run_claimed_step(ctx: ExecContext, step_id: int) -> None:
    """A step this worker claimed: its adapter call (`plugin.executor.dispatch.run_step`), or, for
    a `keep` step that came due, its holding planned again."""
    if not await run_step(ctx, step_id):
        await replan_hold(ctx, step_id)


async def _last_steps_waiting(session: AsyncSession, request: Request) -> datetime | None:
    """When to look again if a step of a system erased last is unsettled: a pending one (its call
    failed) when it is due, a running one (its worker may have died after the erasure and before
    recording it) when its lease ends and another worker takes it over."""
    due = await session.execute(
        select(
            func.min(
                case((Step.state == StepState.RUNNING, Step.lease_expires_at), else_=Step.next_attempt_at)
            )
        ).where(
            Step.request_id == request.id,
            Step.shop_domain == request.shop_domain,
            Step.state.in_((StepState.PENDING, StepState.RUNNING)),
            Step.system.in_(registry.erased_last()),
        )
    )
    waiting: datetime | None = due.scalar_one_or_none()
    return waiting


async def _documents(ctx: ExecContext, request_id: int, finalize: Finalize) -> None:
    async with ctx.runtime.db.transaction() as session:
        request = await _leased(session, ctx, request_id)
        if request is None:
            return
        shop = await load_shop(session, request.shop_domain)
        await finalize(ctx, session, request, shop)
