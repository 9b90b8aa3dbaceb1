"""What the shop owner does to steps (admin and CLI): retry a failed step or request, confirm an
e-mailed erasure."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from plugin import evidence
from plugin.crypto import Vault
from plugin.executor import verify
from plugin.executor.records import ERROR_LIMIT, step_record
from plugin.executor.shipments import shipment_steps, siblings
from plugin.executor.status import refresh_request
from plugin.models import Request, Step, utcnow
from plugin.outbox import mark_confirmed
from plugin.states import RequestStatus, StepState


class StepNotFound(LookupError):
    pass


class StepStateError(ValueError):
    pass


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
        siblings(
            step,
            Step.id.in_(candidates),
            Step.provider_ref == reference,
            Step.state == StepState.AWAITING_CONFIRMATION,
        ).with_for_update()
    )
    return list(locked.scalars())
