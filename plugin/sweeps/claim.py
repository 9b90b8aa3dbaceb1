"""Claiming a sweep through the database: one sweep per shop, day and mode, whatever the number of
instances. The unique row (shop, day, dry_run) is the claim; a lease says who is running it now, so
a sweep whose instance died is taken over (and resumed) once its lease has run out.

Only conditional single-statement writes are used, which behave the same on SQLite (one writer)
and on PostgreSQL (row locks), so no `SKIP LOCKED` is needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Insert, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.models import Sweep
from plugin.states import SweepStatus

# Long enough for a slow batch (a bulk download stalls, PostgreSQL is busy); every committed batch
# renews it, so a live sweep never loses its claim and a dead one is taken over within minutes.
LEASE = timedelta(minutes=5)
# A preview the shop owner asked for, waiting for the sweep clock (no lease, nothing done yet).
QUEUED = SweepStatus.QUEUED


def shop_day(now: datetime, timezone: str | None) -> date:
    """The calendar day in the shop's time zone: a sweep belongs to the shop's day, not UTC's."""
    return now.astimezone(ZoneInfo(timezone or "UTC")).date()


@dataclass(frozen=True, slots=True)
class Claim:
    sweep_id: int
    resumed: bool  # the row existed: continue from its recorded progress
    progress: dict[str, Any]
    request_id: int | None


async def claim(
    session: AsyncSession,
    shop_domain: str,
    day: date,
    *,
    dry_run: bool,
    owner: str,
    now: datetime,
    fresh: bool = False,
) -> Claim | None:
    """Take the sweep of `shop_domain` for `day`, or None when it is finished or running elsewhere.

    `fresh` restarts a finished *dry* run (a preview asked for again shows today's data); a finished
    live sweep is never restarted the same day, because its steps are already in the ledger. A
    queued preview (`queue_preview`) is taken by whoever claims it first.
    """
    lease_until = now + LEASE
    start = {
        "status": SweepStatus.RUNNING,
        "lease_owner": owner,
        "lease_expires_at": lease_until,
        "progress": {},
        "report": {},
        "started_at": now,
    }
    inserted = (
        await session.execute(
            _insert_unless_exists(session)
            .values(shop_domain=shop_domain, day=day.isoformat(), dry_run=dry_run, **start)
            .returning(Sweep.id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return Claim(inserted, resumed=False, progress={}, request_id=None)

    same = (Sweep.shop_domain == shop_domain, Sweep.day == day.isoformat(), Sweep.dry_run == dry_run)
    if fresh and dry_run:
        restarted = (
            await session.execute(
                update(Sweep)
                .where(*same, or_(Sweep.status != SweepStatus.RUNNING, Sweep.lease_expires_at < now))
                .values(finished_at=None, **start)
                .returning(Sweep.id)
            )
        ).scalar_one_or_none()
        if restarted is not None:
            return Claim(restarted, resumed=False, progress={}, request_id=None)

    queued = (
        await session.execute(
            update(Sweep).where(*same, Sweep.status == QUEUED).values(**start).returning(Sweep.id)
        )
    ).scalar_one_or_none()
    if queued is not None:
        return Claim(queued, resumed=False, progress={}, request_id=None)

    taken = (
        await session.execute(
            update(Sweep)
            .where(
                *same,
                Sweep.status == SweepStatus.RUNNING,
                or_(Sweep.lease_expires_at < now, Sweep.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_expires_at=lease_until)
            .returning(Sweep.id, Sweep.progress, Sweep.request_id)
        )
    ).one_or_none()
    if taken is None:
        return None
    return Claim(taken.id, resumed=True, progress=dict(taken.progress or {}), request_id=taken.request_id)


async def queue_preview(session: AsyncSession, shop_domain: str, day: date, *, now: datetime) -> bool:
    """Queue today's dry run for the sweep clock (the admin's "preview now"): a new queued row, or
    today's finished one queued again. False when one is already queued or running."""
    queued: dict[str, Any] = {
        "status": QUEUED,
        "lease_owner": None,
        "lease_expires_at": None,
        "progress": {},
        "report": {},
    }
    inserted = (
        await session.execute(
            _insert_unless_exists(session)
            .values(shop_domain=shop_domain, day=day.isoformat(), dry_run=True, started_at=now, **queued)
            .returning(Sweep.id)
        )
    ).scalar_one_or_none()
    if inserted is not None:
        return True
    again = (
        await session.execute(
            update(Sweep)
            .where(
                Sweep.shop_domain == shop_domain,
                Sweep.day == day.isoformat(),
                Sweep.dry_run.is_(True),
                Sweep.status.not_in((QUEUED, SweepStatus.RUNNING)),
            )
            .values(started_at=now, finished_at=None, **queued)
            .returning(Sweep.id)
        )
    ).scalar_one_or_none()
    return again is not None


async def queued_previews(session: AsyncSession) -> list[tuple[str, str]]:
    """(shop, day) of every queued preview, oldest first."""
    rows = await session.execute(
        select(Sweep.shop_domain, Sweep.day).where(Sweep.status == QUEUED).order_by(Sweep.id)
    )
    return [(shop, day) for shop, day in rows]


async def drop_stale_preview(session: AsyncSession, shop_domain: str, day: str, *, now: datetime) -> None:
    """A preview still queued after its day: closed as not run, with a note for the owner."""
    await session.execute(
        update(Sweep)
        .where(Sweep.shop_domain == shop_domain, Sweep.day == day, Sweep.status == QUEUED)
        .values(status=SweepStatus.FAILED, finished_at=now, report={"note": "not run on its day; ask again"})
    )


def _insert_unless_exists(session: AsyncSession) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING`: the unique (shop, day, dry_run) row decides who claims."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Sweep).on_conflict_do_nothing()
    return sqlite.insert(Sweep).on_conflict_do_nothing()


async def _update_ours(
    session: AsyncSession, shop_domain: str, sweep_id: int, owner: str, values: dict[str, Any]
) -> bool:
    """Update the sweep only while we hold it (running, our lease); False when we no longer do."""
    result = await session.execute(
        update(Sweep)
        .where(
            Sweep.shop_domain == shop_domain,
            Sweep.id == sweep_id,
            Sweep.lease_owner == owner,
            Sweep.status == SweepStatus.RUNNING,
        )
        .values(**values)
        .returning(Sweep.id)
    )
    return result.scalar_one_or_none() is not None


async def renew(session: AsyncSession, shop_domain: str, sweep_id: int, *, owner: str, now: datetime) -> bool:
    """Extend the lease of a running sweep we hold; False when we no longer hold it."""
    return await _update_ours(session, shop_domain, sweep_id, owner, {"lease_expires_at": now + LEASE})


async def checkpoint(
    session: AsyncSession,
    shop_domain: str,
    sweep_id: int,
    *,
    owner: str,
    now: datetime,
    progress: dict[str, Any],
    request_id: int | None,
) -> bool:
    """Record progress and renew the lease, in the caller's transaction (the same one that queued
    the batch's steps, so progress never runs ahead of the ledger). False if the lease was lost:
    another instance took the sweep over and this one must stop."""
    values = {"progress": progress, "request_id": request_id, "lease_expires_at": now + LEASE}
    return await _update_ours(session, shop_domain, sweep_id, owner, values)


async def finish(
    session: AsyncSession,
    shop_domain: str,
    sweep_id: int,
    *,
    owner: str,
    now: datetime,
    status: str,
    report: dict[str, Any],
) -> bool:
    result = await session.execute(
        update(Sweep)
        .where(Sweep.shop_domain == shop_domain, Sweep.id == sweep_id, Sweep.lease_owner == owner)
        .values(status=status, report=report, finished_at=now, lease_owner=None, lease_expires_at=None)
        .returning(Sweep.id)
    )
    return result.scalar_one_or_none() is not None


async def is_new_shop(session: AsyncSession, shop_domain: str, day: date) -> bool:
    """A shop with no sweep on an earlier day: its first sweep (on any number of tries that day) is a
    dry run, so the owner sees what Gallra would do before anything is sent. Unless the operator
    started a live one that day (`run_sweep(first_live=True)`): its (shop, day, live) row says so,
    and whoever resumes or asks again that day finds that live sweep, not a preview."""
    earlier = select(Sweep.id).where(
        Sweep.shop_domain == shop_domain,
        or_(Sweep.day < day.isoformat(), (Sweep.day == day.isoformat()) & Sweep.dry_run.is_(False)),
    )
    return not bool((await session.execute(select(exists(earlier)))).scalar())


async def find(session: AsyncSession, shop_domain: str, day: date, *, dry_run: bool) -> Sweep | None:
    return (
        await session.execute(
            select(Sweep).where(
                Sweep.shop_domain == shop_domain, Sweep.day == day.isoformat(), Sweep.dry_run == dry_run
            )
        )
    ).scalar_one_or_none()


async def latest(session: AsyncSession, shop_domain: str, limit: int = 30) -> list[Sweep]:
    """The shop's recent sweeps, newest first (for the admin page and the CLI)."""
    statement = (
        select(Sweep)
        .where(Sweep.shop_domain == shop_domain)
        .order_by(Sweep.day.desc(), Sweep.id.desc())
        .limit(limit)
    )
    return list((await session.execute(statement)).scalars())
