"""The daily sweep clock: each shop at its quiet hour in its own time zone, once a day, whatever
the number of instances firing it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from plugin.models import Shop, Step, Sweep
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.schedule import due_shops, run_due_sweeps
from plugin.sweeps.wiring import sweep_planner
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import POLICY_TOML, build_shop

SHOPS = {
    "stockholm.myshopify.com": ("Europe/Stockholm", 3),
    "tokyo.myshopify.com": ("Asia/Tokyo", 4),
    "newyork.myshopify.com": ("America/New_York", 2),
}


async def add_shops(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        for domain, (timezone, hour) in SHOPS.items():
            session.add(
                Shop(domain=domain, country="SE", timezone=timezone, sweep_hour=hour, policy_toml=POLICY_TOML)
            )
            # Swept yesterday already, so today's sweep is live (a new shop's first one is dry).
            session.add(Sweep(shop_domain=domain, day="2026-11-01", dry_run=True, status="done"))


async def test_each_shop_is_due_from_its_quiet_hour_in_its_own_time_zone(runtime: Runtime) -> None:
    await add_shops(runtime)
    # 01:30 UTC: Stockholm 02:30 (hour 3 not yet), Tokyo 10:30 (past 4), New York 20:30 the day
    # before (past 2, and that day was never swept: catch up).
    due = {(d.domain, d.day) for d in await due_shops(runtime, datetime(2026, 11, 22, 1, 30, tzinfo=UTC))}
    assert due == {("tokyo.myshopify.com", "2026-11-22"), ("newyork.myshopify.com", "2026-11-21")}
    domains = {d.domain for d in await due_shops(runtime, datetime(2026, 11, 22, 2, 5, tzinfo=UTC))}
    assert "stockholm.myshopify.com" in domains


async def test_two_instances_firing_sweep_each_shop_once(runtime: Runtime) -> None:
    await add_shops(runtime)
    shop = build_shop(n_orders=120, n_customers=20)
    enqueuer = RecordingEnqueuer()
    opened: list[str] = []

    async def parts(_runtime: Runtime, domain: str) -> SweepParts:
        opened.append(domain)
        return SweepParts(
            orders=stream(shop.orders),
            customers=stream(shop.customers),
            plan=sweep_planner(Policy.from_toml(POLICY_TOML)),
            enqueue=enqueuer,
        )

    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # past every shop's quiet hour
    first, second = await asyncio.gather(
        run_due_sweeps(runtime, now, parts=parts), run_due_sweeps(runtime, now, parts=parts)
    )

    swept = sorted(r["shop"] for r in [*first, *second])
    assert swept == sorted(SHOPS)  # each shop once, split between the instances
    assert sorted(opened) == sorted(SHOPS)  # the loser of a claim never even opened a stream
    async with runtime.db.session() as session:
        live = (await session.execute(select(Sweep).where(Sweep.dry_run.is_(False)))).scalars().all()
        keys = (await session.execute(select(Step.shop_domain, Step.key))).all()
    assert len(live) == 3 and all(s.status == "done" for s in live)
    assert len(keys) == len(set(keys))

    # Later ticks the same day: nothing is due, nothing runs.
    assert await due_shops(runtime, now + timedelta(hours=2)) == []
    assert await run_due_sweeps(runtime, now + timedelta(hours=2), parts=parts) == []
    assert len(opened) == 3
