"""Running one claimed step: its one adapter call, outside any transaction (a provider can take
seconds) while a heartbeat keeps the lease. What happened is recorded by `outcomes`."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from adapters.base import Adapter, AdapterError, ErasureCover, Outcome, PermanentFailure, Result
from adapters.registry import UnknownAdapter
from plugin.executor import verify
from plugin.executor.context import ExecContext
from plugin.executor.leases import heartbeat, renew_step
from plugin.executor.outcomes import record_check, record_failure, record_success, with_cover
from plugin.executor.own_data import own_context
from plugin.executor.records import subject_of
from plugin.executor.shipments import shipment_steps, shipments_of, siblings
from plugin.holdings import Subject, holding_from_dict
from plugin.ledger import load_shop
from plugin.models import Request, Shop, Step
from plugin.states import ShopStatus, StepState

log = logging.getLogger("gallra.executor")


async def _cover(session: AsyncSession, step: Step) -> tuple[Step, ErasureCover] | None:
    """The request's step whose erasure also erases this step's holding, when its adapter declares
    one (`Adapter.erasure_covers`: Shopify's customer erasure redacts the orders) and the request
    has it. One indexed lookup of that step, whatever the size of the request."""
    try:
        covers = registry.system(step.system).erasure_covers
    except UnknownAdapter:
        return None
    if covers is None or step.action not in ("erase", "reduce"):
        return None
    if not (step.holding_ref or "").startswith(covers.refs):
        return None
    account = siblings(
        step, Step.category == covers.by.value, Step.system == step.system, Step.action == "erase"
    )
    cover: Step | None = (await session.execute(account.limit(1))).scalar_one_or_none()
    return (cover, covers) if cover is not None else None


async def run_step(ctx: ExecContext, step_id: int) -> bool:
    """Run a step this worker has claimed. Never raises for the step's own failures. False for a
    `keep` step, whose coming due is no adapter call: its holding is planned again by the caller
    (`plugin.pipelines.holds.replan_hold`)."""
    owner = ctx.config.owner
    async with ctx.runtime.db.session() as session:
        step = await session.get(Step, step_id)
        if step is None or step.state != StepState.RUNNING or step.lease_owner != owner:
            return True
        if step.action == "keep":
            return False
        request = (
            await session.execute(
                select(Request).where(Request.id == step.request_id, Request.shop_domain == step.shop_domain)
            )
        ).scalar_one()
        shop = await load_shop(session, step.shop_domain)
        # A system no shop connects (Gallra's own records) is there whether the shop is or not.
        if registry.connected(step.system) and (shop is None or shop.status == ShopStatus.REDACTED):
            await record_failure(ctx, step_id, "the shop is no longer installed", retryable=False)
            return True
        if (shop is not None and shop.dry_run) or request.dry_run:
            await record_success(ctx, step_id, Result(Outcome.ALREADY_ABSENT), would=True)
            return True
        covered = await _cover(session, step)
        if covered is not None:
            cover, covers = covered
            now = ctx.config.clock()
            if step.verification == verify.PENDING:
                await record_check(ctx, step_id, with_cover(cover, now))
                return True
            detail = f"covered by step {cover.key}: {covers.why}"
            await record_success(
                ctx,
                step_id,
                Result(Outcome.ERASE_REQUESTED, cover.provider_ref, detail),
                check=with_cover(cover, now),
            )
            return True
        rechecking = step.verification == verify.PENDING and step.outcome is not None
        erased_at = step.finished_at
        carried = await shipment_steps(session, step, sweep=request.kind == "sweep")
        subject = subject_of(ctx.runtime.vault, request, shipments_of(carried))
        holding = holding_from_dict(step.decision["holding"]) if step.decision.get("holding") else None
        action = step.action
        fields = tuple(str(f) for f in step.decision.get("reduce_fields") or ())
        try:
            adapter = await _adapter(ctx, session, shop, step)
        except Exception as exc:  # a broken connection setting must not crash the worker
            await record_failure(
                ctx, step_id, f"{step.system}: cannot build the adapter ({type(exc).__name__})"
            )
            return True
    if adapter is None:
        await record_failure(
            ctx,
            step_id,
            f"no enabled adapter {step.system!r}: connect it (gallra adapters configure) and retry the step",
            retryable=False,
        )
        return True
    if rechecking and holding is not None:
        async with heartbeat(ctx, step_id, renew_step):
            check = await verify.recheck(adapter, subject, holding, erased_at, ctx.config.clock())
        await record_check(ctx, step_id, check)
        return True
    await _call(ctx, step_id, adapter, action, subject, holding, fields)
    return True


async def _adapter(ctx: ExecContext, session: AsyncSession, shop: Shop | None, step: Step) -> Adapter | None:
    """The step's adapter: the shop's connection (`Sources.adapter`), or for a system no shop
    connects (Gallra's own records) the built-in adapter on the executor's own context."""
    if not registry.connected(step.system):
        cls = registry.system(step.system)
        return cls(cls.Config(), own_context(ctx.runtime, step.shop_domain, shop))
    if shop is None:
        return None
    return await ctx.sources.adapter(session, shop, step.system, step_id=step.id)


async def _call(
    ctx: ExecContext,
    step_id: int,
    adapter: Adapter,
    action: str,
    subject: Subject,
    holding: Any,
    fields: tuple[str, ...] = (),
) -> None:
    try:
        async with heartbeat(ctx, step_id, renew_step):
            if action == "export":
                exported = await adapter.export(subject)
                result: Result | None = None
            elif holding is None:
                raise AdapterError(adapter.name, f"step has no holding to {action}")
            elif action == "reduce":
                # Never erase instead: erasing would also remove the suppression entry the rule keeps.
                if not adapter.can_reduce:
                    raise PermanentFailure(
                        adapter.name,
                        "cannot reduce (remove the rule's fields and keep only a suppression "
                        "entry); not erased instead, as that would remove the entry too",
                    )
                exported, result = None, await adapter.reduce(subject, holding, fields)
            else:
                exported, result = None, await adapter.erase(subject, holding)
            check = None
            if result is not None and holding is not None:
                check = await verify.after_call(adapter, subject, holding, result, ctx.config.clock())
    except AdapterError as exc:
        await record_failure(ctx, step_id, str(exc), retryable=exc.retryable, retry_after=exc.retry_after)
    except Exception as exc:
        # The message may quote provider data; only the type is kept and logged.
        log.error("step %d: unexpected %s from adapter %s", step_id, type(exc).__name__, adapter.name)
        await record_failure(ctx, step_id, f"{adapter.name}: unexpected {type(exc).__name__}")
    else:
        await record_success(ctx, step_id, result, exported=exported, check=check)
