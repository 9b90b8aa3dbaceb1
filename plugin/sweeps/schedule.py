"""The daily sweep clock: each shop at its quiet hour in its own time zone.

The clock (APScheduler, in `plugin.clocks`) only wakes this up every few minutes; which shops are
swept is decided here, and whether a sweep runs at all is decided by its claim in the database
(`plugin.sweeps.claim`), so any number of instances firing the same clock sweep each shop once a
day. A shop whose quiet hour passed while every instance was down is swept when one comes back
the same day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from plugin.models import Shop, Sweep, utcnow
from plugin.runtime import Runtime
from plugin.states import ShopStatus, SweepStatus
from plugin.sweeps import claim as claims
from plugin.sweeps.run import PartsFactory, SweepError, run_sweep
from plugin.sweeps.runner import SweepLost

log = logging.getLogger("gallra.sweeps")

# How often the clock wakes the sweep scheduler, and the previews' (an owner waits for those).
# Claims make extra wake-ups harmless.
TICK_SECONDS = 600
PREVIEW_TICK_SECONDS = 15


@dataclass(frozen=True, slots=True)
class DueShop:
    domain: str
    day: str


def _local(now: datetime, timezone: str | None) -> datetime:
    try:
        return now.astimezone(ZoneInfo(timezone or "UTC"))
    except ZoneInfoNotFoundError:
        # A zone name Shopify knows but this system's tz database does not: UTC beats no sweep.
        return now.astimezone(ZoneInfo("UTC"))


async def due_shops(runtime: Runtime, now: datetime) -> list[DueShop]:
    """Active shops past their quiet hour today (local time) with no finished sweep today."""
    async with runtime.db.session() as session:
        shops = (
            await session.execute(
                select(Shop.domain, Shop.timezone, Shop.sweep_hour).where(Shop.status == ShopStatus.ACTIVE)
            )
        ).all()
        due: list[DueShop] = []
        for domain, timezone, hour in shops:
            local = _local(now, timezone)
            if local.hour < (hour if hour is not None else 3):
                continue
            day = local.date().isoformat()
            # Only a finished live sweep settles the day. A shop that may only be swept dry (new,
            # or in dry-run mode) is asked again each tick and its claim answers "already done".
            finished = (
                await session.execute(
                    select(Sweep.id).where(
                        Sweep.shop_domain == domain,
                        Sweep.day == day,
                        Sweep.dry_run.is_(False),
                        Sweep.status != SweepStatus.RUNNING,
                    )
                )
            ).first()
            if finished is None:
                due.append(DueShop(domain, day))
    return due


async def run_queued_previews(
    runtime: Runtime, now: datetime | None = None, *, parts: PartsFactory | None = None
) -> list[dict[str, Any]]:
    """The clock's job for the previews shop owners asked for (`run.queue_preview`): each is
    claimed through the database like any sweep, so one instance runs it. A preview still queued
    when its day has passed is closed as not run (the owner asks again)."""
    now = now or utcnow()
    async with runtime.db.session() as session:
        queued = await claims.queued_previews(session)
        if not queued:  # the clock asks every 15 s; most of the time nobody has asked for one
            return []
        zones = dict((await session.execute(select(Shop.domain, Shop.timezone))).all())
    due: list[str] = []
    for domain, day in queued:
        if day == claims.shop_day(now, zones.get(domain)).isoformat():
            due.append(domain)
            continue
        async with runtime.db.transaction() as session:
            await claims.drop_stale_preview(session, domain, day, now=now)
    return await _sweep_each(runtime, due, now=now, parts=parts, preview=True)


async def run_due_sweeps(
    runtime: Runtime, now: datetime | None = None, *, parts: PartsFactory | None = None
) -> list[dict[str, Any]]:
    """The clock's job: sweep every shop whose quiet hour has come. One shop's failure is logged
    and does not stop the others (it is resumed on a later tick, see `run.MAX_ATTEMPTS`)."""
    now = now or utcnow()
    shops = [shop.domain for shop in await due_shops(runtime, now)]
    return await _sweep_each(runtime, shops, now=now, parts=parts, preview=False)


async def _sweep_each(
    runtime: Runtime, domains: list[str], *, now: datetime, parts: PartsFactory | None, preview: bool
) -> list[dict[str, Any]]:
    """Today's sweep (or queued preview) of each shop; one shop's failure does not stop the others."""
    reports: list[dict[str, Any]] = []
    for domain in domains:
        try:
            if preview:  # only a queued (or abandoned) preview is taken, never a finished one again
                report = await run_sweep(runtime, domain, dry_run=True, now=now, parts=parts, fresh=False)
            else:
                report = await run_sweep(runtime, domain, now=now, parts=parts)
        except (SweepError, SweepLost):
            continue
        except Exception as exc:  # only the type: a message may quote data
            log.error("scheduled sweep of a shop failed with %s; resumed on a later tick", type(exc).__name__)
            continue
        if not report.get("already"):
            reports.append(report)
    return reports
