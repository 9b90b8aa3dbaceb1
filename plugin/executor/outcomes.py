"""Recording what a step's call did, with its evidence, in one transaction: success (and the
verification look-up), failure (retried with backoff, never before Retry-After, until the step's
`max_attempts`; then `failed` and retryable by the shop owner), and later look-ups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Outcome, Result
from plugin import evidence
from plugin.executor import verify
from plugin.executor.backoff import next_attempt_at
from plugin.executor.context import ExecContext
from plugin.executor.records import ERROR_LIMIT, EXPORT_PART, EXPORT_PART_LIFETIME, step_record
from plugin.executor.shipments import siblings
from plugin.executor.status import refresh_request
from plugin.executor.verify import Check
from plugin.models import AdapterConnection, Artifact, Step, artifact_cell, utcnow
from plugin.shopify import erasures
from plugin.states import StepState


def with_cover(cover: Step, now: datetime) -> Check:
    """A covered step is verified when the step covering it is; until then it looks again when
    that step is next looked at (the covering step also settles it at once, `_settle_followers`)."""
    if cover.verification == verify.ABSENT:
        return Check(verify.ABSENT, verify.follows(cover.key), now)
    due = cover.next_attempt_at if cover.state == StepState.VERIFYING and cover.next_attempt_at else None
    later = max(due, now) if due is not None else now + verify.LOOKUP_RETRY
    return Check(verify.PENDING, verify.follows(cover.key), later, cover_id=cover.id)


async def _lock_cover(session: AsyncSession, check: Check | None) -> None:
    """Lock the covering step before the covered one: the order `_settle_followers` takes them in,
    so the two never wait on each other."""
    if check is not None and check.cover_id is not None:
        await locked_step(session, check.cover_id)


async def _catch_up_with_cover(
    ctx: ExecContext, session: AsyncSession, step: Step, check: Check | None, now: datetime
) -> None:
    """A covered step just recorded as waiting for its cover, while the cover was being verified:
    read the cover again once this transaction writes (on SQLite the write lock comes with the
    first write, so the cover's commit is either seen here or sees this step), so the step is
    never left waiting for a cover that has settled."""
    if check is None or check.cover_id is None or step.verification != verify.PENDING:
        return
    await session.flush()
    cover = (
        await session.execute(select(Step.verification, Step.verified_at).where(Step.id == check.cover_id))
    ).first()
    if cover is not None and cover.verification == verify.ABSENT:
        await _apply_check(ctx, session, step, Check(verify.ABSENT, check.detail, cover.verified_at), now)


async def locked_step(session: AsyncSession, step_id: int) -> Step | None:
    return (
        await session.execute(select(Step).where(Step.id == step_id).with_for_update())
    ).scalar_one_or_none()


async def count_connection_outcome(session: AsyncSession, step: Step, ok: bool, now: datetime) -> None:
    """Keep the step's connection's run of failures (`plugin.notifications` tells the shop owner
    when a connection keeps failing); a step that worked ends the run. A system no shop connects
    has no connection row: nothing to count."""
    connection = update(AdapterConnection).where(
        AdapterConnection.shop_domain == step.shop_domain, AdapterConnection.adapter == step.system
    )
    if ok:
        await session.execute(
            connection.where(AdapterConnection.failures > 0).values(failures=0, failing_since=None)
        )
        return
    await session.execute(
        connection.values(failures=AdapterConnection.failures + 1, last_error=(step.last_error or "")[:500])
    )
    await session.execute(
        connection.where(AdapterConnection.failing_since.is_(None)).values(failing_since=now)
    )


async def record_success(
    ctx: ExecContext,
    step_id: int,
    result: Result | None,
    *,
    exported: dict[str, Any] | None = None,
    would: bool = False,
    check: Check | None = None,
) -> None:
    now = utcnow()
    async with ctx.runtime.db.transaction() as session:
        await _lock_cover(session, check)
        step = await locked_step(session, step_id)
        # A step already finished (another worker took over after our lease ran out and got there
        # first) keeps its first outcome; otherwise the outcome is recorded even if our lease ended,
        # because the call did happen.
        if step is None or step.state not in (StepState.RUNNING, StepState.PENDING):
            return
        if exported is not None:
            session.add(
                Artifact(
                    shop_domain=step.shop_domain,
                    request_id=step.request_id,
                    kind=EXPORT_PART,
                    content_type="application/json",
                    content_enc=ctx.runtime.vault.encrypt_json(
                        {"system": step.system, "data": exported},
                        artifact_cell(step.shop_domain, step.request_id, EXPORT_PART),
                    ),
                    created_at=now,
                    expires_at=now + EXPORT_PART_LIFETIME,
                )
            )
        if would:
            step.state, step.outcome = StepState.SKIPPED, f"would_{step.action}"
        elif result is None:
            step.state, step.outcome = StepState.DONE, "exported"
        else:
            step.outcome, step.provider_ref = result.outcome.value, result.provider_ref
            step.state = (
                StepState.AWAITING_CONFIRMATION if result.outcome == Outcome.REQUEST_SENT else StepState.DONE
            )
            if step.action == "reduce":
                # Kept with the step, so the certificate can say what went and what the provider holds.
                step.decision = {
                    **(step.decision or {}),
                    "removed": list(result.removed),
                    "still_held": list(result.still_held),
                    "result_detail": result.detail[:ERROR_LIMIT],
                }
        step.finished_at = now if step.state != StepState.AWAITING_CONFIRMATION else None
        step.lease_owner = step.lease_expires_at = None
        step.last_error = None
        if not would:
            await count_connection_outcome(session, step, True, now)
            await erasures.track_step(session, step, step.outcome, now)
        record = step_record(step)
        if result is not None and result.detail:
            record["detail"] = result.detail[:ERROR_LIMIT]
        await evidence.append(session, step.shop_domain, f"step_{step.state}", record, step.request_id)
        if check is not None and step.state == StepState.DONE:
            await _apply_check(ctx, session, step, check, now)
            await _catch_up_with_cover(ctx, session, step, check, now)
        await refresh_request(session, step.request_id, now)


async def record_check(ctx: ExecContext, step_id: int, check: Check) -> None:
    """Record a look-up made for a step this worker claimed to verify (`verifying` → `running`)."""
    now = utcnow()
    async with ctx.runtime.db.transaction() as session:
        await _lock_cover(session, check)
        step = await locked_step(session, step_id)
        if step is None or step.state != StepState.RUNNING or step.lease_owner != ctx.config.owner:
            return
        step.lease_owner = step.lease_expires_at = None
        # A look-up is not an attempt at the erasure: the claim's count is given back.
        step.attempts = max(0, step.attempts - 1)
        await _apply_check(ctx, session, step, check, now)
        await _catch_up_with_cover(ctx, session, step, check, now)
        await refresh_request(session, step.request_id, now)


async def _apply_check(
    ctx: ExecContext, session: AsyncSession, step: Step, check: Check, now: datetime
) -> None:
    """Keep a verification result with the step (an erasure call that succeeded) and log it.
    Pending: the step waits `verifying` until `check.at`. Still present: the erasure is retried
    with the executor's backoff, and fails visibly once the attempts are used up."""
    step.verification, step.verification_detail = check.state, check.detail[:ERROR_LIMIT]
    if check.state == verify.PENDING:
        step.state, step.verify_after = StepState.VERIFYING, check.at
        step.next_attempt_at = check.at
        step.verified_at = None
    elif check.state == verify.PRESENT:
        step.verified_at, step.verify_after = check.at or now, None
        step.last_error = check.detail[:ERROR_LIMIT]
        if step.attempts < step.max_attempts:
            step.state = StepState.PENDING
            # Due again by the worker's clock, the one claims are judged on.
            step.next_attempt_at = next_attempt_at(
                ctx.config.clock(), step.attempts, base=ctx.config.backoff_base, cap=ctx.config.backoff_cap
            )
        else:
            step.state, step.finished_at = StepState.FAILED, now
            await count_connection_outcome(session, step, False, now)
    else:
        step.state, step.verified_at, step.verify_after = StepState.DONE, check.at or now, None
    kind = "step_verifying" if check.state == verify.PENDING else f"step_{check.state}"
    await evidence.append(session, step.shop_domain, kind, step_record(step), step.request_id)
    if step.state == StepState.FAILED:
        record = step_record(step) | {"error": step.last_error}
        await evidence.append(session, step.shop_domain, "step_failed", record, step.request_id)
    if check.state == verify.ABSENT:
        await _settle_followers(session, step, now)
        await erasures.verified_step(session, step, step.verified_at or now)


async def _settle_followers(session: AsyncSession, step: Step, now: datetime) -> None:
    """The steps this one's erasure covers are verified with it."""
    followers = await session.execute(
        siblings(
            step,
            Step.state == StepState.VERIFYING,
            Step.system == step.system,
            Step.verification_detail == verify.follows(step.key),
        ).with_for_update()
    )
    for follower in followers.scalars():
        follower.state, follower.verification = StepState.DONE, verify.ABSENT
        follower.verified_at, follower.verify_after = step.verified_at or now, None
        await evidence.append(
            session, follower.shop_domain, f"step_{verify.ABSENT}", step_record(follower), follower.request_id
        )


async def record_failure(
    ctx: ExecContext,
    step_id: int,
    message: str,
    *,
    retryable: bool = True,
    retry_after: float | None = None,
) -> None:
    now = utcnow()
    async with ctx.runtime.db.transaction() as session:
        step = await locked_step(session, step_id)
        if step is None or step.state != StepState.RUNNING or step.lease_owner != ctx.config.owner:
            return
        step.last_error = message[:ERROR_LIMIT]
        step.lease_owner = step.lease_expires_at = None
        if retryable and step.attempts < step.max_attempts:
            step.state = StepState.PENDING
            step.next_attempt_at = next_attempt_at(
                ctx.config.clock(),  # the clock claims are judged on
                step.attempts,
                base=ctx.config.backoff_base,
                cap=ctx.config.backoff_cap,
                retry_after=retry_after,
            )
            return
        step.state, step.finished_at = StepState.FAILED, now
        await count_connection_outcome(session, step, False, now)
        record = step_record(step) | {"error": step.last_error}
        await evidence.append(session, step.shop_domain, "step_failed", record, step.request_id)
        await refresh_request(session, step.request_id, now)
