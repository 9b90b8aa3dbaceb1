"""Claiming due work with a lease.

A claim is one short transaction: pick due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers
never wait on each other's picks), then a conditional UPDATE that re-checks the row is still
claimable and stamps owner and expiry. The conditional UPDATE is what makes a claim exclusive on
both databases: on SQLite writers are serialised and the second one finds the row already leased.

A lease that ends without its owner recording an outcome (the worker died) makes the row
claimable again; the attempt it used still counts, so a step that kills its worker every time ends
as `failed` instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters import registry
from plugin.executor import verify
from plugin.executor.context import ExecContext
from plugin.ledger import dialect_of
from plugin.models import Request, Step, utcnow
from plugin.states import RequestStatus, StepState

log = logging.getLogger("gallra.executor")

# on_hold: a request waiting for a condition (a shop/redact for its shop's uninstall), looked at
# again at its next_attempt_at.
REQUEST_WORK_STATUSES = (
    RequestStatus.RECEIVED,
    RequestStatus.PLANNING,
    RequestStatus.FINALIZING,
    RequestStatus.ON_HOLD,
)


def step_claimable(now: datetime) -> ColumnElement[bool]:
    # A pending step of a system erased last (`Adapter.erased_last`: Gallra's own data, which the
    # other steps' look-ups need) is claimed only when its request finalises (`claim_last_steps`).
    pending = and_(Step.state == StepState.PENDING, Step.next_attempt_at <= now)
    return or_(
        and_(pending, Step.system.not_in(registry.erased_last())),
        and_(Step.state.in_((StepState.HELD, StepState.VERIFYING)), Step.next_attempt_at <= now),
        and_(Step.state == StepState.RUNNING, Step.lease_expires_at < now),
    )


def request_claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        Request.status.in_(REQUEST_WORK_STATUSES),
        Request.next_attempt_at <= now,
        or_(Request.lease_expires_at.is_(None), Request.lease_expires_at < now),
    )


async def _claim(
    session: AsyncSession,
    model: type[Step] | type[Request],
    claimable: ColumnElement[bool],
    order: tuple[Any, ...],
    values: dict[str, Any],
    limit: int,
) -> list[int]:
    if limit <= 0:
        return []
    pick = select(model.id).where(claimable).order_by(*order).limit(limit)
    if dialect_of(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    ids = list((await session.execute(pick)).scalars())
    if not ids:
        return []
    claimed = await session.execute(
        update(model)
        .where(model.id.in_(ids), claimable)
        .values(**values, attempts=model.attempts + 1)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(claimed.scalars())


async def claim_steps(
    session: AsyncSession, owner: str, now: datetime, *, limit: int, lease_seconds: float
) -> list[int]:
    """Lease up to `limit` due steps to `owner`; the ids claimed. Call inside a transaction."""
    lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    order = (Step.next_attempt_at, Step.id)
    return await _claim(
        session, Step, step_claimable(now), order, {"state": StepState.RUNNING, **lease}, limit
    )


async def claim_last_steps(
    session: AsyncSession, request_id: int, owner: str, now: datetime, *, limit: int, lease_seconds: float
) -> list[int]:
    """Lease to `owner` the request's pending steps of systems erased last, now that every other
    step has settled (the request is finalising). Call inside a transaction."""
    lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    waiting = and_(
        Step.request_id == request_id,
        Step.state == StepState.PENDING,
        Step.system.in_(registry.erased_last()),
        Step.next_attempt_at <= now,
    )
    return await _claim(session, Step, waiting, (Step.id,), {"state": StepState.RUNNING, **lease}, limit)


async def claim_requests(
    session: AsyncSession, owner: str, now: datetime, *, limit: int, lease_seconds: float
) -> list[int]:
    """Lease up to `limit` requests that need planning or finalising. Call inside a transaction."""
    lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    order = (Request.next_attempt_at, Request.id)
    return await _claim(session, Request, request_claimable(now), order, lease, limit)


async def renew_step(session: AsyncSession, step_id: int, owner: str, until: datetime) -> bool:
    """Extend a lease this worker still holds; False if it was lost."""
    result = await session.execute(
        update(Step)
        .where(Step.id == step_id, Step.lease_owner == owner, Step.state == StepState.RUNNING)
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def renew_request(session: AsyncSession, request_id: int, owner: str, until: datetime) -> bool:
    result = await session.execute(
        update(Request)
        .where(Request.id == request_id, Request.lease_owner == owner)
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reclaim_expired(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """Put steps and requests whose worker died back in the queue at once (claims would take them
    anyway; this makes the state honest for the admin page). Returns (steps, requests)."""
    result = await session.execute(
        update(Step)
        .where(Step.state == StepState.RUNNING, Step.lease_expires_at < now)
        .values(state=_waiting_state(), lease_owner=None, lease_expires_at=None, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    steps = int(result.rowcount)  # type: ignore[attr-defined]
    requests = await session.execute(
        update(Request)
        .where(Request.lease_owner.is_not(None), Request.lease_expires_at < now)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return steps, int(requests.rowcount)  # type: ignore[attr-defined]


def _waiting_state() -> Any:
    """The state a running step goes back to when its worker lets go: a re-plan waits `held`, a
    look-up after an erasure (`plugin.executor.verify`) `verifying`, anything else `pending`."""
    return case(
        (Step.action == "keep", StepState.HELD),
        (and_(Step.verification == verify.PENDING, Step.outcome.is_not(None)), StepState.VERIFYING),
        else_=StepState.PENDING,
    )


async def release(session: AsyncSession, kind: str, row_id: int, owner: str, retry_at: datetime) -> None:
    """Hand work this worker holds back to the queue, due at `retry_at` (after a job crashed)."""
    if kind == "step":
        await session.execute(
            update(Step)
            .where(Step.id == row_id, Step.lease_owner == owner, Step.state == StepState.RUNNING)
            .values(
                state=_waiting_state(),
                lease_owner=None,
                lease_expires_at=None,
                next_attempt_at=retry_at,
            )
            .execution_options(synchronize_session=False)
        )
    else:
        await session.execute(
            update(Request)
            .where(Request.id == row_id, Request.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, next_attempt_at=retry_at)
            .execution_options(synchronize_session=False)
        )


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
