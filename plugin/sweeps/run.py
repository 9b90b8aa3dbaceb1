"""Running a sweep now: claim it, run it (or resume it), store its report.

`run_sweep` is what the daily clock, the CLI and the queued "preview now" of the admin page call. A new shop's
first sweep, a shop in dry-run mode, and any sweep asked for with `dry_run=True` only report what
they would do: no ledger request, no steps, nothing sent. A new shop's first day runs live only when
the operator asks for it explicitly (`first_live`, `gallra sweep --shop D --first-live`), recorded in
the shop's evidence log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from plugin import evidence, notifications
from plugin.ledger import load_shop
from plugin.models import Step, utcnow
from plugin.runtime import Runtime
from plugin.states import ShopStatus, StepState, SweepStatus
from plugin.sweeps import claim as claims
from plugin.sweeps import wiring
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.runner import (
    BATCH,
    ProgressCallback,
    Sweeper,
    SweepLost,
    instance_id,
    shop_context,
)

log = logging.getLogger("gallra.sweeps")

# A sweep that keeps failing (a policy error, a shop whose token is gone) is given up for the day
# after this many tries, visibly, instead of being retried every time its lease runs out.
MAX_ATTEMPTS = 5

PartsFactory = Callable[[Runtime, str], Awaitable[SweepParts]]

# Why a sweep is a dry run (the report's `dry_reason`; None when it runs live).
DRY_ASKED = "asked"  # the caller asked for a preview
DRY_NEW_SHOP = "new_shop"  # a new shop's first day, and no `first_live`
DRY_SHOP_MODE = "shop_dry_run"  # the shop owner put the shop in dry-run mode


class SweepError(Exception):
    """The sweep cannot start (unknown or uninstalled shop). The message holds no personal data."""


class SweepGaveUp(Exception):
    """Today's sweep has failed MAX_ATTEMPTS times (e.g. its process was killed each time)."""


async def run_sweep(
    runtime: Runtime,
    shop_domain: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    parts: SweepParts | PartsFactory | None = None,
    on_progress: ProgressCallback | None = None,
    owner: str | None = None,
    batch_size: int = BATCH,
    fresh: bool | None = None,
    first_live: bool = False,
) -> dict[str, Any]:
    """Run (or resume) today's sweep of the shop and return its report (counts only).

    A dry run asked for is recomputed even when today's has finished, unless `fresh` is False (the
    clock running a queued preview: it takes only a queued or abandoned one). `first_live` runs a
    new shop's first sweep live instead of as a preview (the operator's explicit choice; a shop in
    dry-run mode stays dry); on a shop that is not new it changes nothing.

    When today's sweep is already finished, or running in another instance, its stored report (or
    progress) is returned and nothing is done: `report["already"]` is true then. `dry_run` and
    `dry_reason` (`DRY_*`) always say what this call was, also when it found one already there.
    """
    now = now or utcnow()
    owner = owner or instance_id()
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None or shop.status != ShopStatus.ACTIVE:
            raise SweepError(f"no active shop {shop_domain!r}")
        today = claims.shop_day(now, shop.timezone)
        note = None
        dry = dry_run or shop.dry_run
        reason = DRY_ASKED if dry_run else DRY_SHOP_MODE if shop.dry_run else None
        authorised = False  # this call starts a new shop's first live sweep
        if not dry and await claims.is_new_shop(session, shop_domain, today):
            if first_live:
                note, authorised = "first sweep of a new shop, run live as the operator asked", True
            else:
                dry, note, reason = True, "first sweep of a new shop: dry run only", DRY_NEW_SHOP
        elif not dry_run and shop.dry_run:
            note = "the shop is in dry-run mode"
        claimed = await claims.claim(
            session,
            shop_domain,
            today,
            dry_run=dry,
            owner=owner,
            now=now,
            fresh=dry_run if fresh is None else fresh,
        )
        if claimed is None:
            existing = await claims.find(session, shop_domain, today, dry_run=dry)
            if existing is None:  # pragma: no cover - the unique row was there a moment ago
                raise SweepError("sweep row vanished")
            stored = (
                dict(existing.report)
                if existing.status != SweepStatus.RUNNING
                else _running(existing.progress)
            )
            return stored | {
                "already": True,
                "status": existing.status,
                "shop": shop_domain,
                "day": today.isoformat(),
                "dry_run": dry,
                "dry_reason": reason,
                "started_at": existing.started_at.isoformat(),
                "finished_at": existing.finished_at.isoformat() if existing.finished_at else None,
            }
        if authorised and not claimed.resumed:
            await evidence.append(
                session,
                shop_domain,
                "sweep_first_live",
                {"day": today.isoformat(), "sweep": claimed.sweep_id},
            )
        context = await shop_context(session, shop, today=today, dry_run=dry)
    attempts = int(claimed.progress.get("attempts", 0)) + 1
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    def report(status: str, sweeper: Sweeper | None, holds_due: int) -> dict[str, Any]:
        progress = sweeper.progress() if sweeper else claimed.progress
        return {
            "shop": shop_domain,
            "day": today.isoformat(),
            "dry_run": dry,
            "dry_reason": reason,
            "first_live": authorised,
            "status": status,
            "note": note,
            "policy": sweeper.parts.policy_name if sweeper else None,
            "started_at": now.isoformat(),
            "finished_at": clock().isoformat(),
            "request_id": sweeper.request_id if sweeper else claimed.request_id,
            "holds_due": holds_due,
            "restarts": int(progress.get("restarts", 0)),
            "attempts": attempts,
            "tally": progress.get("tally", {}),
            "already": False,
        }

    async def save(progress: dict[str, Any], request_id: int | None) -> None:
        async with runtime.db.transaction() as session:
            await claims.checkpoint(
                session,
                shop_domain,
                claimed.sweep_id,
                owner=owner,
                now=clock(),
                progress=progress,
                request_id=request_id,
            )

    # Counted before anything can fail, so a sweep that keeps dying (even killed outright) is
    # given up for the day after MAX_ATTEMPTS instead of being retried whenever its lease runs out.
    await save(claimed.progress | {"attempts": attempts}, claimed.request_id)
    heartbeat = asyncio.create_task(_keep_lease(runtime, shop_domain, claimed.sweep_id, owner, clock))
    sweeper: Sweeper | None = None
    try:
        if attempts > MAX_ATTEMPTS:
            raise SweepGaveUp(f"the sweep failed {attempts - 1} times today")
        built = await _parts(runtime, shop_domain, parts)
        sweeper = Sweeper(
            runtime.db,
            runtime.vault,
            built,
            context,
            sweep_id=claimed.sweep_id,
            owner=owner,
            now=now,
            progress=claimed.progress | {"attempts": attempts},
            request_id=claimed.request_id,
            on_progress=on_progress,
            batch_size=batch_size,
        )
        await sweeper.run()
    except SweepLost:
        log.warning("sweep of a shop was taken over by another instance; stopping here")
        raise
    except Exception as exc:
        # The lease stays: the sweep is resumed from its checkpoint when it runs out (by this or
        # another instance), unless it has failed too often today. Only the error's type is kept.
        log.error("sweep %s failed with %s (attempt %s)", claimed.sweep_id, type(exc).__name__, attempts)
        if attempts >= MAX_ATTEMPTS:
            failed = report("failed", sweeper, 0) | {"error": type(exc).__name__}
            async with runtime.db.transaction() as session:
                await claims.finish(
                    session,
                    shop_domain,
                    claimed.sweep_id,
                    owner=owner,
                    now=clock(),
                    status=SweepStatus.FAILED,
                    report=failed,
                )
        elif sweeper is not None:
            await save(sweeper.progress() | {"error": type(exc).__name__}, sweeper.request_id)
        raise
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
    assert sweeper is not None  # ran to the end
    async with runtime.db.transaction() as session:
        holds_due = await _holds_due(session, shop_domain, now)
        final = report("done", sweeper, holds_due)
        await claims.finish(
            session,
            shop_domain,
            claimed.sweep_id,
            owner=owner,
            now=clock(),
            status=SweepStatus.DONE,
            report=final,
        )
    if sweeper.request_id is not None:
        runtime.work_available.set()  # idle workers start on the queued steps at once
    if reason == DRY_SHOP_MODE:
        # The shop owner chose to look before anything is erased: tell them there is something to see.
        await notifications.notify_dry_run_findings(runtime, shop_domain, final)
    return final


async def queue_preview(runtime: Runtime, shop_domain: str, *, now: datetime | None = None) -> bool:
    """ "Preview now" for the admin page: queue today's sweep as a dry run, recomputed, for the sweep
    clock (`schedule.run_queued_previews`) to run; a large shop's takes minutes, far too long for a
    web request. False when one is already queued or running."""
    now = now or utcnow()
    async with runtime.db.transaction() as session:
        shop = await load_shop(session, shop_domain)
        if shop is None or shop.status != ShopStatus.ACTIVE:
            raise SweepError(f"no active shop {shop_domain!r}")
        return await claims.queue_preview(session, shop_domain, claims.shop_day(now, shop.timezone), now=now)


async def _keep_lease(
    runtime: Runtime, shop_domain: str, sweep_id: int, owner: str, clock: Callable[[], datetime]
) -> None:
    """Renew the lease while the sweep runs, also while no batch arrives: Shopify may take many
    minutes to prepare a large shop's bulk result, and the sweep must not look dead meanwhile.
    A lease found lost ends the renewing; the next checkpoint then stops the sweep."""
    while True:
        await asyncio.sleep(claims.LEASE.total_seconds() / 3)
        try:
            async with runtime.db.transaction() as session:
                held = await claims.renew(session, shop_domain, sweep_id, owner=owner, now=clock())
        except Exception as exc:  # a database hiccup: try again at the next beat
            log.warning("sweep lease renewal failed with %s", type(exc).__name__)
            continue
        if not held:
            return


def _running(progress: dict[str, Any]) -> dict[str, Any]:
    return {"status": SweepStatus.RUNNING, "progress": progress, "tally": progress.get("tally", {})}


async def _parts(runtime: Runtime, shop_domain: str, parts: SweepParts | PartsFactory | None) -> SweepParts:
    if isinstance(parts, SweepParts):
        return parts
    if parts is not None:
        return await parts(runtime, shop_domain)

    return await wiring.real_parts(runtime, shop_domain)


async def _holds_due(session: Any, shop_domain: str, now: datetime) -> int:
    """Kept holdings whose date has come: the executor's hold-expiry clock re-plans them; the
    report shows how many are waiting."""
    statement = select(func.count()).where(
        Step.shop_domain == shop_domain, Step.state == StepState.HELD, Step.next_attempt_at <= now
    )
    return int((await session.execute(statement)).scalar_one())
