"""Running one claimed step and recording what happened.

A step is one adapter call. It runs outside any transaction (a provider can take seconds), while a
heartbeat keeps its lease; its outcome and the evidence entry are written in one transaction, and
only then is the step `done`. Failures are retried with backoff (never before Retry-After) until the
step's `max_attempts`, then the step is `failed`: visible, and retryable by the shop owner with
`retry_step`, which resumes from that step; steps already done are never run again.

Interfaces for the admin UI and CLI:
    retry_step(session, shop_domain, step_id) -> Step          # failed → pending
    retry_request(session, shop_domain, request_id) -> Request # every failed step, or re-planning
    confirm_step(session, shop_domain, step_id, note, *, vault=None) -> Step
    refresh_request(session, request_id) -> str                # the request's status from its steps
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Adapter, AdapterError, Outcome, PermanentFailure, Result
from plugin import evidence
from plugin.crypto import Vault
from plugin.executor import verify
from plugin.executor.backoff import next_attempt_at
from plugin.executor.context import ExecContext
from plugin.executor.leases import OWN_SYSTEM, renew_step
from plugin.executor.verify import Check
from plugin.holdings import Category, Shipment, Subject, holding_from_dict, shipments_of_holdings
from plugin.ledger import load_shop
from plugin.models import (
    AdapterConnection,
    Artifact,
    Delivery,
    Request,
    Step,
    StepGroup,
    artifact_cell,
    cell_of,
    delivery_cell,
    utcnow,
)
from plugin.shopify import erasures
from plugin.states import RequestStatus, ShopStatus, StepState

log = logging.getLogger("gallra.executor")

EXPORT_PART = "export_part"  # an adapter's export, kept encrypted until the extract is built
EXPORT_PART_LIFETIME = timedelta(days=45)
ERROR_LIMIT = 500


class StepNotFound(LookupError):
    pass


class StepStateError(ValueError):
    pass


def shipments_of(steps: list[Step]) -> tuple[Shipment, ...]:
    """The subject's shipments, rebuilt from the request's shipment steps: the carrier adapters
    erase by tracking number."""
    holdings = [holding_from_dict(s.decision["holding"]) for s in steps if s.decision.get("holding")]
    # An export step carries the shipments its system was found to hold (`holdings`).
    holdings += [holding_from_dict(h) for s in steps for h in s.decision.get("holdings") or ()]
    return shipments_of_holdings(holdings)


def _siblings(step: Step, *conditions: ColumnElement[bool]) -> Select[Any]:
    """The step's siblings in its request that meet `conditions` (by the request's indexes)."""
    mine = (Step.request_id == step.request_id, Step.shop_domain == step.shop_domain)
    return select(Step).where(*mine, *conditions).order_by(Step.id)


async def shipment_steps(session: AsyncSession, step: Step, *, sweep: bool) -> list[Step]:
    """The shipment steps whose shipments the step's subject carries, the only siblings
    `shipments_of` reads. A customer's request: its shipment steps, one indexed query (request,
    category). A sweep names no one: its carrier step carries its group's shipments (`StepGroup`,
    an id range fixed when the sweep queued them), found by that range, so a step reads at most
    its group's rows however large the day's request grows; an ungrouped one only its own, and
    the sweep's other steps none."""
    if not sweep:
        shipments = _siblings(step, Step.category == Category.SHIPMENT.value)
        return list((await session.execute(shipments)).scalars())
    if step.category != Category.SHIPMENT.value:
        return []
    group = (
        await session.execute(
            select(StepGroup.first_step_id, StepGroup.last_step_id)
            .where(
                StepGroup.request_id == step.request_id,
                StepGroup.system == step.system,
                StepGroup.last_step_id >= step.id,
            )
            .order_by(StepGroup.last_step_id)
            .limit(1)
        )
    ).first()
    if group is None or group.first_step_id > step.id:
        return [step]
    members = _siblings(
        step,
        Step.category == Category.SHIPMENT.value,
        Step.system == step.system,
        Step.action == "erase",
        Step.id.between(group.first_step_id, group.last_step_id),
    )
    return list((await session.execute(members)).scalars())


async def _shopify_cover(session: AsyncSession, step: Step) -> Step | None:
    """Shopify cannot erase an order's personal data on its own: its customer data erasure
    redacts it on every order of the customer. So an order holding planned for erasure (or
    reduction) is fulfilled by the request's erasure of the customer account, when there is one.
    One indexed lookup of that step, whatever the size of the request."""
    if step.system != "shopify" or step.action not in ("erase", "reduce"):
        return None
    if (step.holding_ref or "").startswith("customer:"):
        return None
    account = _siblings(
        step,
        Step.category == Category.CUSTOMER_ACCOUNT.value,
        Step.system == "shopify",
        Step.action == "erase",
    )
    cover: Step | None = (await session.execute(account.limit(1))).scalar_one_or_none()
    return cover


def subject_of(vault: Vault, request: Request, shipments: tuple[Shipment, ...] = ()) -> Subject:
    return Subject(
        shop_domain=request.shop_domain,
        customer_id=request.customer_id,
        email=vault.decrypt(request.email_enc, cell_of(request, "email_enc")),
        phone=vault.decrypt(request.phone_enc, cell_of(request, "phone_enc")),
        order_ids=tuple(int(o) for o in request.order_ids or ()),
        shipments=shipments,
    )


def step_record(step: Step) -> dict[str, Any]:
    """A step as evidence and certificates name it: no personal data."""
    decision = step.decision or {}
    holding = decision.get("holding", {})
    record = {
        "step": step.key,
        "system": step.system,
        "action": step.action,
        "category": step.category,
        "holding": step.holding_ref,
        "label": holding.get("label"),
        "rule_id": decision.get("rule_id"),
        "reference": decision.get("reference"),
        "keep_until": decision.get("keep_until"),
        "outcome": step.outcome,
        "provider_ref": step.provider_ref,
        "attempts": step.attempts,
    }
    if step.verification is not None:
        record["verification"] = step.verification
        record["verification_detail"] = step.verification_detail
    if step.action == "reduce":
        # What the rule asked to remove, and what the provider says went and still holds.
        record["reduce_fields"] = decision.get("reduce_fields") or []
        record["removed"] = decision.get("removed") or []
        record["still_held"] = decision.get("still_held") or []
    return record


@contextlib.asynccontextmanager
async def heartbeat(
    ctx: ExecContext, row_id: int, renew: Callable[[AsyncSession, int, str, datetime], Awaitable[bool]]
) -> AsyncIterator[None]:
    """Renew a lease (a step's or a request's) every third of its length while work runs."""
    interval = ctx.config.lease_seconds / 3

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            async with ctx.runtime.db.transaction() as session:
                until = utcnow() + timedelta(seconds=ctx.config.lease_seconds)
                if not await renew(session, row_id, ctx.config.owner, until):
                    log.warning("lease on %d lost while working", row_id)
                    return

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        if shop is None or shop.status == ShopStatus.REDACTED:
            await record_failure(ctx, step_id, "the shop is no longer installed", retryable=False)
            return True
        if shop.dry_run or request.dry_run:
            await record_success(ctx, step_id, Result(Outcome.ALREADY_ABSENT), would=True)
            return True
        if step.system == OWN_SYSTEM:
            await session.close()
            await run_own_step(ctx, step_id)
            return True
        cover = await _shopify_cover(session, step)
        if cover is not None:
            now = ctx.config.clock()
            if step.verification == verify.PENDING:
                await record_check(ctx, step_id, _with_cover(cover, now))
                return True
            detail = f"covered by step {cover.key}: Shopify's customer data erasure redacts the orders"
            await record_success(
                ctx,
                step_id,
                Result(Outcome.ERASE_REQUESTED, cover.provider_ref, detail),
                check=_with_cover(cover, now),
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
            adapter = await ctx.sources.adapter(session, shop, step.system, step_id=step.id)
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


def _with_cover(cover: Step, now: datetime) -> Check:
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
        await _locked_step(session, check.cover_id)


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


async def _locked_step(session: AsyncSession, step_id: int) -> Step | None:
    return (
        await session.execute(select(Step).where(Step.id == step_id).with_for_update())
    ).scalar_one_or_none()


async def _count_connection_outcome(session: AsyncSession, step: Step, ok: bool, now: datetime) -> None:
    """Keep the step's connection's run of failures (`plugin.notifications` tells the shop owner
    when a connection keeps failing); a step that worked ends the run."""
    if step.system == OWN_SYSTEM:
        return
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
        step = await _locked_step(session, step_id)
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
            await _count_connection_outcome(session, step, True, now)
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
        step = await _locked_step(session, step_id)
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
            step.next_attempt_at = next_attempt_at(
                now, step.attempts, base=ctx.config.backoff_base, cap=ctx.config.backoff_cap
            )
        else:
            step.state, step.finished_at = StepState.FAILED, now
            await _count_connection_outcome(session, step, False, now)
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
        _siblings(
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
        step = await _locked_step(session, step_id)
        if step is None or step.state != StepState.RUNNING or step.lease_owner != ctx.config.owner:
            return
        step.last_error = message[:ERROR_LIMIT]
        step.lease_owner = step.lease_expires_at = None
        if retryable and step.attempts < step.max_attempts:
            step.state = StepState.PENDING
            step.next_attempt_at = next_attempt_at(
                now,
                step.attempts,
                base=ctx.config.backoff_base,
                cap=ctx.config.backoff_cap,
                retry_after=retry_after,
            )
            return
        step.state, step.finished_at = StepState.FAILED, now
        await _count_connection_outcome(session, step, False, now)
        record = step_record(step) | {"error": step.last_error}
        await evidence.append(session, step.shop_domain, "step_failed", record, step.request_id)
        await refresh_request(session, step.request_id, now)


async def refresh_request(session: AsyncSession, request_id: int, now: datetime | None = None) -> str:
    """Derive the request's status from its steps (under a row lock, so two steps finishing at
    once cannot both miss the last one): `in_progress` while any step is pending or running,
    `failed` if a step failed, `awaiting` while an e-mail erasure waits for its confirmation,
    `verifying` while an erasure is still to be seen taking effect, and otherwise `finalizing`
    (the worker then erases the app's own data and writes the certificate)."""
    now = now or utcnow()
    # populate_existing: the caller may have loaded the request earlier in this transaction, and
    # another step's transaction may have changed its status since; the locked row is the truth
    # (a stale status that equals the derived one would otherwise leave the row as it was).
    request = (
        await session.execute(
            select(Request)
            .where(Request.id == request_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if request.status in (RequestStatus.RECEIVED, RequestStatus.PLANNING):
        return request.status
    # Indexed existence checks (request, state, system), not a tally of every step: a step
    # finishing in a sweep of 100,000 steps costs what it costs in a request of three.
    mine = and_(Step.request_id == request_id, Step.shop_domain == request.shop_domain)
    busy = or_(
        Step.state == StepState.RUNNING, and_(Step.state == StepState.PENDING, Step.system != OWN_SYSTEM)
    )
    if await _any_step(session, mine, busy):
        status = RequestStatus.IN_PROGRESS
    elif failed := await _count_steps(session, mine, Step.state == StepState.FAILED):
        status = RequestStatus.FAILED
        request.last_error = f"{failed} step(s) failed; retry them once the cause is fixed"
    elif await _any_step(session, mine, Step.state == StepState.AWAITING_CONFIRMATION):
        status = RequestStatus.AWAITING
    elif await _any_step(session, mine, Step.state == StepState.VERIFYING):
        # Every erasure call is made; some are still to be seen taking effect. Not late: the
        # deadline is judged on the calls. The app's own data (the identifiers the look-ups
        # need) goes only once they are settled, when the request finalises.
        status = RequestStatus.VERIFYING
    elif request.status == RequestStatus.DONE and not await _any_step(
        session, mine, and_(Step.state == StepState.PENDING, Step.system == OWN_SYSTEM)
    ):
        status = RequestStatus.DONE
    else:
        status = RequestStatus.FINALIZING
        request.next_attempt_at = now
    if status != request.status:
        request.status = status
        if status == RequestStatus.FAILED:
            await evidence.append(
                session, request.shop_domain, "request_failed", {"failed_steps": failed}, request.id
            )
    return status


async def _any_step(session: AsyncSession, *conditions: ColumnElement[bool]) -> bool:
    found = await session.execute(select(Step.id).where(*conditions).limit(1))
    return found.first() is not None


async def _count_steps(session: AsyncSession, *conditions: ColumnElement[bool]) -> int:
    counted = await session.execute(select(func.count()).select_from(Step).where(*conditions))
    return int(counted.scalar_one())


async def erase_own_data(session: AsyncSession, vault: Vault, shop_domain: str, ref: str) -> str:
    """Erase Gallra's own personal data behind a `request:<id>` holding: the request's encrypted
    e-mail and phone, the raw webhook bodies, unfinished export parts. Keyed hashes stay (the
    evidence names the subject by them). Returns the outcome."""
    kind, _, ident = ref.partition(":")
    if kind != "request" or not ident.isdigit():
        raise ValueError(f"unknown own holding {ref!r}")
    request_id = int(ident)
    found = await session.execute(
        update(Request)
        .where(Request.id == request_id, Request.shop_domain == shop_domain)
        .values(email_enc=None, phone_enc=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.request_id == request_id, Delivery.shop_domain == shop_domain)
        .values(body_enc=vault.encrypt('{"redacted": true}', delivery_cell(shop_domain)))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(Artifact).where(
            Artifact.request_id == request_id,
            Artifact.shop_domain == shop_domain,
            Artifact.kind == EXPORT_PART,
        )
    )
    return Outcome.ERASED.value if found.rowcount else Outcome.ALREADY_ABSENT.value  # type: ignore[attr-defined]


async def run_own_step(ctx: ExecContext, step_id: int) -> None:
    """Erase one holding of Gallra's own data (in one transaction with its outcome and evidence)."""
    now = utcnow()
    async with ctx.runtime.db.transaction() as session:
        step = await _locked_step(session, step_id)
        if (
            step is None
            or step.state not in (StepState.PENDING, StepState.RUNNING)
            or step.system != OWN_SYSTEM
        ):
            return
        request = await session.get(Request, step.request_id)
        shop = await load_shop(session, step.shop_domain)
        if (shop is not None and shop.dry_run) or (request is not None and request.dry_run):
            step.state, step.outcome = StepState.SKIPPED, f"would_{step.action}"
        else:
            step.outcome = await erase_own_data(
                session, ctx.runtime.vault, step.shop_domain, step.holding_ref or ""
            )
            step.state = StepState.DONE
            step.verification, step.verified_at = verify.ABSENT, now
            step.verification_detail = verify.OWN_DATA
        step.finished_at = now
        step.lease_owner = step.lease_expires_at = None
        await evidence.append(
            session, step.shop_domain, f"step_{step.state}", step_record(step), step.request_id
        )


async def _scoped_step(session: AsyncSession, shop_domain: str, step_id: int) -> Step:
    step = (
        await session.execute(
            select(Step).where(Step.id == step_id, Step.shop_domain == shop_domain).with_for_update()
        )
    ).scalar_one_or_none()
    if step is None:
        raise StepNotFound(f"no step {step_id} in shop {shop_domain}")
    return step


async def retry_step(session: AsyncSession, shop_domain: str, step_id: int) -> Step:
    """The shop owner retries a failed step: it runs again from scratch (fresh attempts), and the
    request resumes from it. Steps already done are untouched."""
    step = await _scoped_step(session, shop_domain, step_id)
    if step.state != StepState.FAILED:
        raise StepStateError(f"step {step_id} is {step.state}; only a failed step can be retried")
    now = utcnow()
    step.state, step.attempts, step.next_attempt_at = StepState.PENDING, 0, now
    step.finished_at = step.outcome = None
    step.verification = step.verified_at = step.verify_after = step.verification_detail = None
    await evidence.append(session, shop_domain, "step_retried", step_record(step), step.request_id)
    await refresh_request(session, step.request_id, now)
    return step


async def retry_request(session: AsyncSession, shop_domain: str, request_id: int) -> Request:
    """Retry every failed step of the request, or its planning if it failed before having steps."""
    request = (
        await session.execute(
            select(Request)
            .where(Request.id == request_id, Request.shop_domain == shop_domain)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if request is None:
        raise LookupError(f"no request {request_id} in shop {shop_domain}")
    failed = list(
        (
            await session.execute(
                select(Step.id).where(
                    Step.request_id == request_id,
                    Step.shop_domain == shop_domain,
                    Step.state == StepState.FAILED,
                )
            )
        ).scalars()
    )
    for step_id in failed:
        await retry_step(session, shop_domain, step_id)
    if not failed and request.status == RequestStatus.FAILED:
        request.status, request.attempts, request.next_attempt_at = RequestStatus.RECEIVED, 0, utcnow()
        request.last_error = None
        await evidence.append(session, shop_domain, "request_retried", {}, request.id)
    return request


async def confirm_step(
    session: AsyncSession,
    shop_domain: str,
    step_id: int,
    note: str | None = None,
    *,
    vault: Vault | None = None,
) -> Step:
    """The processor confirmed an e-mailed erasure request: the step is done, and so is every other
    step awaiting the same message (one e-mail covers a customer's shipments with a carrier, or a
    sweep group's): the processor answered the message, not one line of it. The note (it may name
    people) is kept encrypted with the outbox message when `vault` is given, never in evidence."""
    step = await _scoped_step(session, shop_domain, step_id)
    if step.state == StepState.DONE and step.outcome == "confirmed":
        return step
    if step.state != StepState.AWAITING_CONFIRMATION:
        raise StepStateError(
            f"step {step_id} is {step.state}; only an awaiting e-mail request can be confirmed"
        )
    from plugin.outbox import mark_confirmed

    now = utcnow()
    message = await mark_confirmed(
        session, shop_domain, step_id, note if vault else None, vault=vault, now=now
    )
    reference = message.reference if message is not None else step.provider_ref
    # Not verifiable by a look-up: what stands instead is who confirmed and when. The note naming
    # the person stays encrypted with the e-mail; the public detail names the role and the message.
    how = "the processor confirmed in answer to Gallra's e-mail; recorded by the shop owner"
    if note:
        how += "; who confirmed is in the note kept encrypted with the e-mail"
    for confirmed in [step, *await _awaiting_same_message(session, step, reference)]:
        confirmed.state, confirmed.outcome, confirmed.finished_at = StepState.DONE, "confirmed", now
        confirmed.verification, confirmed.verified_at = verify.NOT_VERIFIABLE, now
        confirmed.verification_detail = how[:ERROR_LIMIT]
        record = step_record(confirmed) | {"note_given": bool(note)}
        if confirmed is not step:
            record["confirmed_with"] = step.key
        await evidence.append(session, shop_domain, "step_confirmed", record, confirmed.request_id)
    await refresh_request(session, step.request_id, now)
    return step


async def _awaiting_same_message(session: AsyncSession, step: Step, reference: str | None) -> list[Step]:
    """The other steps whose e-mail is `reference`, locked: they are among the steps whose
    shipments that e-mail named (`shipment_steps`), so the look-up stays within the group."""
    if not reference:
        return []
    kind = await session.scalar(select(Request.kind).where(Request.id == step.request_id))
    candidates = [
        s.id
        for s in await shipment_steps(session, step, sweep=kind == "sweep")
        if s.id != step.id and s.provider_ref == reference and s.state == StepState.AWAITING_CONFIRMATION
    ]
    if not candidates:
        return []
    locked = await session.execute(
        _siblings(
            step,
            Step.id.in_(candidates),
            Step.provider_ref == reference,
            Step.state == StepState.AWAITING_CONFIRMATION,
        ).with_for_update()
    )
    return list(locked.scalars())
