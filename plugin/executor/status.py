"""A request's status, derived from its steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from plugin import evidence
from plugin.models import Request, Step, utcnow
from plugin.states import RequestStatus, StepState


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
    # The steps of a system erased last (`Adapter.erased_last`) are the finalising's own work.
    last = registry.erased_last()
    unsettled = Step.state.in_((StepState.PENDING, StepState.RUNNING))
    busy = and_(unsettled, Step.system.not_in(last))
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
        session, mine, and_(unsettled, Step.system.in_(last))
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
