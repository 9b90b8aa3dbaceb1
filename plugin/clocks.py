"""Clocks: APScheduler 3.x (not the 4.0 alphas, see DESIGN.md) only wakes things up.

`background(runtime)` is the async context manager `gallra serve` (when `run_workers`) and
`gallra worker` enter: it runs one executor `Worker` and a scheduler with the `JOBS` below. Every
job's effect is claimed through the database, so any number of instances firing the same clock do
the work once: either by a `ClockClaim` row with a unique key per period (`claim_once`), or by the
row leases of the work itself (steps, requests, sweeps, outbox messages).

Other stages add a job with `register_job(Job("name", my_coroutine, {"trigger": "interval",
"seconds": 600}))`, where `my_coroutine(runtime)` is awaited on each tick.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import String, cast, delete, exists, literal, or_, select

from plugin import evidence, legal_holds, notifications
from plugin.executor.context import Sources, WorkerConfig
from plugin.executor.leases import reclaim_expired
from plugin.ledger import OPEN_STATUSES, days_left, dialect_of, insert_ignoring_conflicts, local_zone
from plugin.minimise import minimise_due
from plugin.models import ClockClaim, Notification, Request, Shop, Step, utcnow
from plugin.outbox import deliver_queued, send_reminders
from plugin.pipelines.merges import apply_received_merges
from plugin.pipelines.uninstall import confirm_uninstalls
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify.details import refresh_stale_details
from plugin.states import RequestStatus, StepState
from plugin.sweeps.schedule import PREVIEW_TICK_SECONDS, TICK_SECONDS, run_due_sweeps, run_queued_previews

log = logging.getLogger("gallra.clocks")

DEADLINE_WARNING = timedelta(days=7)


@dataclass(frozen=True)
class Job:
    name: str
    func: Callable[[Runtime], Awaitable[Any]]
    trigger: dict[str, Any] = field(default_factory=lambda: {"trigger": "interval", "seconds": 60})


async def claim_once(runtime: Runtime, key: str, owner: str = "clock") -> bool:
    """True for exactly one caller per key, across every instance and process."""
    async with runtime.db.transaction() as session:
        statement = insert_ignoring_conflicts(dialect_of(session), ClockClaim).values(
            key=key, owner=owner, claimed_at=utcnow()
        )
        result = await session.execute(statement)
        return bool(result.rowcount)  # type: ignore[attr-defined]


def period_key(name: str, now: datetime, seconds: int) -> str:
    """One key per `seconds`-long period (aligned to the epoch), e.g. `deadline:2026-11-22T14`."""
    start = int(now.timestamp()) // seconds * seconds
    return f"{name}:{datetime.fromtimestamp(start, UTC).strftime('%Y-%m-%dT%H:%M')}"


async def wake_workers(runtime: Runtime) -> None:
    """Drain due steps: wakes this instance's worker (intake also does, right after a commit)."""
    runtime.work_available.set()


async def reclaim_leases(runtime: Runtime) -> tuple[int, int]:
    if not await claim_once(runtime, period_key("reclaim", utcnow(), 60)):
        return (0, 0)
    async with runtime.db.transaction() as session:
        counts = await reclaim_expired(session, utcnow())
    if any(counts):
        log.info("reclaimed %d steps and %d requests whose worker stopped", *counts)
        runtime.work_available.set()
    return counts


async def watch_deadlines(runtime: Runtime, now: datetime | None = None) -> int:
    """Tell each shop owner about open requests due within 7 days, and again when they are overdue
    (`plugin.notifications`, once per request and event), with an evidence entry the first time a
    request is flagged. Returns the number of notifications recorded."""
    now = now or utcnow()
    if not await claim_once(runtime, period_key("deadline", now, 3600)):
        return 0
    events: list[tuple[str, str, str, dict[str, Any]]] = []  # shop, kind, key, context
    told_overdue = (Notification.shop_domain == Request.shop_domain) & (
        Notification.event_key == literal("overdue:") + cast(Request.id, String)
    )
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                select(Request, Shop.timezone)
                .outerjoin(Shop, Shop.domain == Request.shop_domain)
                .where(
                    Request.status.in_((*OPEN_STATUSES, RequestStatus.FINALIZING, RequestStatus.FAILED)),
                    Request.due_at <= now + DEADLINE_WARNING,
                    Request.kind != "sweep",
                    # Not yet flagged, or overdue and not yet told so: the hourly run reads only
                    # the requests it has something to say about.
                    or_(
                        Request.deadline_flagged_at.is_(None),
                        (Request.due_at < now) & ~exists().where(told_overdue),
                    ),
                )
                .with_for_update(of=Request)
            )
        ).all()
        for request, timezone in rows:
            days = days_left(request.due_at, now, timezone)
            if request.deadline_flagged_at is None:
                request.deadline_flagged_at = now
                await evidence.append(
                    session,
                    request.shop_domain,
                    "deadline_warning",
                    {"days_left": days, "status": request.status},
                    request.id,
                )
            overdue = request.due_at < now
            context: dict[str, Any] = {
                "request_id": request.id,
                "request_kind": request.kind,
                "due": request.due_at.astimezone(local_zone(timezone)).date().isoformat(),
            }
            if overdue:
                context["days_overdue"] = max(-days, 0)
            else:
                context["days_left"] = days
            kind = "overdue" if overdue else "deadline_near"
            events.append((request.shop_domain, kind, f"{kind}:{request.id}", context))
    told = 0
    for domain, kind, key, context in events:
        told += await notifications.notify(runtime, domain, kind, key, context, now=now)
    return told


async def watch_notifications(runtime: Runtime, now: datetime | None = None) -> int:
    """The scanning notification triggers: unconfirmed e-mail-channel requests, failing connections.
    Each event is told once (`plugin.notifications`), so every instance may scan."""
    now = now or utcnow()
    return await notifications.watch_unconfirmed(runtime, now) + await notifications.watch_connections(
        runtime, now
    )


async def expire_holds(runtime: Runtime, now: datetime | None = None) -> int:
    """Holds whose keep-until date has come are re-planned by the workers; wake them if any."""
    now = now or utcnow()
    async with runtime.db.session() as session:
        due = (
            await session.execute(
                select(Step.id).where(Step.state == StepState.HELD, Step.next_attempt_at <= now).limit(1)
            )
        ).first()
    if due is not None:
        runtime.work_available.set()
    return 0 if due is None else 1


async def release_legal_holds(runtime: Runtime, now: datetime | None = None) -> int:
    """Legal holds past their end date are released (`plugin.legal_holds`); the steps they kept are
    woken, and re-plan on the workers. Returns how many were released."""
    async with runtime.db.transaction() as session:
        released = await legal_holds.release_expired(session, runtime.vault, now)
    if released:
        runtime.work_available.set()
    return released


async def minimise_requests(runtime: Runtime, now: datetime | None = None) -> int:
    """Once a day: finished requests past their shop's minimisation period drop their subject's
    data (`plugin.minimise`), in batches. Returns how many were minimised."""
    now = now or utcnow()
    if not await claim_once(runtime, period_key("minimise", now, 86400)):
        return 0
    total, batch = 0, 500
    while True:
        async with runtime.db.transaction() as session:
            done = await minimise_due(session, runtime.vault, now, limit=batch)
        total += done
        if done < batch:
            return total


async def check_uninstalls(runtime: Runtime) -> int:
    """Confirm or dismiss `app/uninstalled` claims by asking Shopify (one instance per minute)."""
    if not await claim_once(runtime, period_key("uninstalls", utcnow(), 60)):
        return 0
    return await confirm_uninstalls(runtime)


async def refresh_shop_details(runtime: Runtime) -> int:
    """Read again the details of shops a `shop/update` delivery marked (one instance per minute)."""
    if not await claim_once(runtime, period_key("shop-details", utcnow(), 60)):
        return 0
    return await refresh_stale_details(runtime)


async def apply_merges(runtime: Runtime) -> int:
    """Let open requests and pending erasures follow merged customers (one instance per minute)."""
    if not await claim_once(runtime, period_key("merges", utcnow(), 60)):
        return 0
    return await apply_received_merges(runtime)


async def purge_claims(runtime: Runtime) -> None:
    """Old clock claims are only needed while their period can still fire."""
    if not await claim_once(runtime, period_key("purge-claims", utcnow(), 86400)):
        return

    async with runtime.db.transaction() as session:
        await session.execute(delete(ClockClaim).where(ClockClaim.claimed_at < utcnow() - timedelta(days=7)))


JOBS: list[Job] = [
    Job("drain", wake_workers, {"trigger": "interval", "seconds": 30}),
    Job("reclaim", reclaim_leases, {"trigger": "interval", "seconds": 60}),
    Job("deadlines", watch_deadlines, {"trigger": "interval", "minutes": 60}),
    Job("holds", expire_holds, {"trigger": "interval", "minutes": 60}),
    Job("legal-holds", release_legal_holds, {"trigger": "interval", "minutes": 60}),
    Job("uninstalls", check_uninstalls, {"trigger": "interval", "seconds": 60}),
    Job("shop-details", refresh_shop_details, {"trigger": "interval", "seconds": 60}),
    Job("merges", apply_merges, {"trigger": "interval", "seconds": 60}),
    Job("purge-claims", purge_claims, {"trigger": "interval", "hours": 24}),
    Job("minimise", minimise_requests, {"trigger": "interval", "hours": 24}),
    Job("sweeps", run_due_sweeps, {"trigger": "interval", "seconds": TICK_SECONDS}),
    Job("previews", run_queued_previews, {"trigger": "interval", "seconds": PREVIEW_TICK_SECONDS}),
    Job("outbox", deliver_queued, {"trigger": "interval", "seconds": 60}),
    Job("reminders", send_reminders, {"trigger": "interval", "hours": 6}),
    Job("notifications", watch_notifications, {"trigger": "interval", "minutes": 60}),
]


def register_job(job: Job) -> None:
    if any(existing.name == job.name for existing in JOBS):
        raise ValueError(f"a clock job named {job.name!r} exists")
    JOBS.append(job)


def _guarded(job: Job, runtime: Runtime) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            await job.func(runtime)
        except Exception as exc:  # one failing job must not stop the others; it fires again
            # Where it failed, without the message (it may quote values or URLs with personal data).
            trace = "".join(traceback.format_tb(exc.__traceback__))
            log.error("clock job %s failed with %s\n%s", job.name, type(exc).__name__, trace)

    return run


@asynccontextmanager
async def background(
    runtime: Runtime,
    *,
    config: WorkerConfig | None = None,
    sources: Sources | None = None,
    jobs: list[Job] | None = None,
) -> AsyncIterator[Worker]:
    """Run a worker and the clocks until the block ends; in-flight steps finish first."""
    worker = Worker(runtime, config, sources)
    stop = asyncio.Event()
    scheduler = AsyncIOScheduler(timezone=UTC)
    for job in JOBS if jobs is None else jobs:
        scheduler.add_job(
            _guarded(job, runtime),
            id=job.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=60,
            **job.trigger,
        )
    task = asyncio.create_task(worker.run(stop))
    scheduler.start()
    runtime.work_available.set()
    try:
        yield worker
    finally:
        scheduler.shutdown(wait=False)
        stop.set()
        await task


__all__ = ["JOBS", "Job", "background", "claim_once", "register_job"]
