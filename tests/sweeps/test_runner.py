"""The sweep runner on SQLite and PostgreSQL, with doubles for the stream, planner and pipeline:
what expired is queued exactly once, dry runs send nothing, crashes resume, claims hold."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from plugin.models import AdapterConnection, Request, Shop, Step, Sweep
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.run import run_sweep
from plugin.sweeps.wiring import sweep_planner
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.sweeps.doubles import CountingPlanner, Killed, RecordingEnqueuer, stream
from tests.sweeps.shopdata import (
    CONNECTED,
    NOW,
    POLICY_TOML,
    SHOP,
    TZ,
    ShopData,
    build_shop,
    expected_actions,
)


async def add_shop(runtime: Runtime, *, swept_before: bool = True, dry_run: bool = False) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP, country="SE", timezone=TZ, dry_run=dry_run, sweep_hour=3, policy_toml=POLICY_TOML
            )
        )
        for adapter in CONNECTED:
            session.add(AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="x"))
        if swept_before:  # not a new shop: yesterday's sweep (a dry run) already happened
            session.add(Sweep(shop_domain=SHOP, day="2026-11-21", dry_run=True, status="done"))


def parts_for(shop: ShopData, **kwargs: Any) -> tuple[SweepParts, CountingPlanner, RecordingEnqueuer]:
    """The real retention planner with the shop's policy; doubles for the stream and the pipeline."""
    planner = CountingPlanner(sweep_planner(Policy.from_toml(POLICY_TOML)))
    enqueuer = RecordingEnqueuer()
    parts = SweepParts(
        orders=kwargs.get("orders") or stream(shop.orders),
        customers=kwargs.get("customers") or stream(shop.customers),
        plan=planner,
        enqueue=enqueuer,
    )
    return parts, planner, enqueuer


async def resume(
    runtime: Runtime, parts: SweepParts, *, batch_size: int, owner: str | None = None
) -> tuple[dict[str, Any], list[int]]:
    """Run the sweep again once the crashed run's lease is over; the positions it checkpointed."""
    positions: list[int] = []
    report = await run_sweep(
        runtime,
        SHOP,
        now=NOW + timedelta(minutes=10),
        parts=parts,
        batch_size=batch_size,
        owner=owner,
        on_progress=lambda p: positions.append(p["position"].get("orders_done", 0)),
    )
    return report, positions


async def steps_in_ledger(runtime: Runtime) -> list[tuple[str, str]]:
    async with runtime.db.session() as session:
        rows = await session.execute(select(Step.system, Step.holding_ref).where(Step.shop_domain == SHOP))
        return sorted((system, ref or "") for system, ref in rows)


async def test_live_sweep_queues_exactly_the_expired_holdings(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    parts, _planner, enqueuer = parts_for(shop)

    report = await run_sweep(runtime, SHOP, now=NOW, parts=parts, batch_size=100)

    expected = expected_actions(shop)
    assert report["status"] == "done" and report["dry_run"] is False
    assert set(enqueuer.queued) == expected.actions
    assert len(enqueuer.queued) == len(set(enqueuer.queued))  # nothing queued twice
    # The shop has expired and still-kept data in every category the test checks.
    systems_erased = {system for system, action, _ref in expected.of("erase")}
    assert systems_erased == {"shopify", "postnord"}
    assert 0 < len(expected.of("erase")) < 600 and expected.of("reduce")
    tally = report["tally"]
    assert tally["orders"] == 600 and tally["customers"] == 120
    for category in ("shipment", "order_contact"):
        assert tally["categories"][category]["undecided"] == expected.undecided[category]
    assert tally["undecided_reasons"]["date unknown"] > 0
    assert tally["undecided_reasons"]["carrier not recognised"] > 0
    assert tally["undecided_reasons"]["no connection for bring"] > 0
    assert tally["categories"]["accounting_record"]["next_expiry"] == "2026-12-31"
    async with runtime.db.session() as session:
        request = (await session.execute(select(Request).where(Request.shop_domain == SHOP))).scalar_one()
        sweep = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
    assert request.kind == "sweep" and request.business_key == "sweep:2026-11-22"
    assert request.email_enc is None and request.phone_enc is None
    assert sweep.status == "done" and sweep.request_id == request.id and sweep.report["tally"] == tally
    assert sweep.progress["position"]["orders_done"] == 600


async def test_second_run_the_same_day_does_nothing(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    parts, planner, _enqueuer = parts_for(shop)
    first = await run_sweep(runtime, SHOP, now=NOW, parts=parts, batch_size=100)
    planned, steps = planner.planned, await steps_in_ledger(runtime)

    again = await run_sweep(runtime, SHOP, now=NOW + timedelta(hours=3), parts=parts, batch_size=100)

    assert again["already"] is True and again["tally"] == first["tally"]
    assert planner.planned == planned  # not even streamed again
    assert await steps_in_ledger(runtime) == steps


async def test_next_day_does_not_queue_what_was_queued_before(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    parts, _planner, _enqueuer = parts_for(shop)
    await run_sweep(runtime, SHOP, now=NOW, parts=parts, batch_size=100)
    before = await steps_in_ledger(runtime)

    parts2, _p, _enqueuer2 = parts_for(shop)
    report = await run_sweep(runtime, SHOP, now=NOW + timedelta(days=1), parts=parts2, batch_size=100)

    after = await steps_in_ledger(runtime)
    new = sorted(set(after) - set(before))
    assert len(after) == len(set(after))
    # Only what expired overnight is new; everything from yesterday counts as actioned before.
    assert len(new) == len(after) - len(before) and len(new) < 10
    assert sum(c["actioned_before"] for c in report["tally"]["categories"].values()) == len(before)


async def test_dry_run_sends_nothing_and_reports_the_same_counts(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    parts, _planner, enqueuer = parts_for(shop)

    report = await run_sweep(runtime, SHOP, dry_run=True, now=NOW, parts=parts, batch_size=100)

    assert report["dry_run"] is True and report["request_id"] is None
    assert enqueuer.calls == []
    assert await steps_in_ledger(runtime) == []
    async with runtime.db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Request))).scalar_one() == 0
    expected = expected_actions(shop)
    cats = report["tally"]["categories"]
    assert sum(c["erase"] for c in cats.values()) == len(expected.of("erase"))
    assert sum(c["reduce"] for c in cats.values()) == len(expected.of("reduce"))


async def test_a_new_shops_first_sweep_is_a_dry_run(runtime: Runtime) -> None:
    shop = build_shop(n_orders=50, n_customers=10)
    await add_shop(runtime, swept_before=False)
    parts, _planner, enqueuer = parts_for(shop)

    report = await run_sweep(runtime, SHOP, now=NOW, parts=parts)

    assert report["dry_run"] is True and "first sweep" in report["note"]
    assert enqueuer.calls == [] and await steps_in_ledger(runtime) == []
    # The next day it is no longer new: the sweep is live.
    parts2, _p, enqueuer2 = parts_for(shop)
    live = await run_sweep(runtime, SHOP, now=NOW + timedelta(days=1), parts=parts2)
    assert live["dry_run"] is False and enqueuer2.calls


async def test_shop_in_dry_run_mode_is_swept_dry(runtime: Runtime) -> None:
    shop = build_shop(n_orders=50, n_customers=10)
    await add_shop(runtime, dry_run=True)
    parts, _planner, enqueuer = parts_for(shop)
    report = await run_sweep(runtime, SHOP, now=NOW, parts=parts)
    assert report["dry_run"] is True and enqueuer.calls == []


async def test_a_dry_run_shops_findings_are_told_to_the_owner_once(runtime: Runtime) -> None:
    from plugin.notifications import list_notifications

    shop = build_shop(n_orders=50, n_customers=10)
    await add_shop(runtime, dry_run=True)
    parts, _planner, _enqueuer = parts_for(shop)
    report = await run_sweep(runtime, SHOP, now=NOW, parts=parts)
    again = await run_sweep(runtime, SHOP, now=NOW + timedelta(hours=1), parts=parts_for(shop)[0])
    assert again["already"] is True
    preview = await run_sweep(
        runtime, SHOP, dry_run=True, now=NOW + timedelta(hours=2), parts=parts_for(shop)[0]
    )
    assert preview["dry_reason"] != report["dry_reason"]  # asked for: the owner is looking already
    async with runtime.db.session() as session:
        told = await list_notifications(session, SHOP)
    erase = sum(c.get("erase", 0) for c in report["tally"]["categories"].values())
    reduce = sum(c.get("reduce", 0) for c in report["tally"]["categories"].values())
    assert erase + reduce > 0
    assert [(n.kind, n.details["erase"], n.details["reduce"], n.state) for n in told] == [
        ("dry_run_findings", erase, reduce, "not_emailed")  # the test runtime has no mail server
    ]


async def test_a_killed_sweep_resumes_where_it_stopped(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    orders = stream(shop.orders, die_after=250)
    parts, _planner, enqueuer = parts_for(shop, orders=orders)

    with pytest.raises(Killed):
        await run_sweep(runtime, SHOP, now=NOW, parts=parts, batch_size=100, owner="instance-a")
    async with runtime.db.session() as session:
        sweep = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
    assert sweep.status == "running" and sweep.progress["position"]["orders_done"] == 200

    # While instance A's lease lasts, nobody else takes the sweep.
    busy = await run_sweep(runtime, SHOP, now=NOW + timedelta(minutes=1), parts=parts, owner="instance-b")
    assert busy["already"] is True and busy["status"] == "running"

    # After the lease ran out, instance B resumes from the checkpoint.
    report, seen_positions = await resume(runtime, parts, batch_size=100, owner="instance-b")
    assert report["status"] == "done" and report["restarts"] == 0
    queued = enqueuer.queued
    assert len(queued) == len(set(queued))  # nothing queued twice across the crash
    assert set(queued) == expected_actions(shop).actions
    assert await steps_in_ledger(runtime) == sorted((s, r) for s, _a, r in queued)
    assert report["tally"]["orders"] == 600
    # The resumed run went on from the checkpoint: its first batch ended at order 300, not 100.
    assert seen_positions[0] == 300
    assert orders.state["yielded"] == 250 + 600  # type: ignore[attr-defined]


async def test_a_reordered_stream_restarts_without_queueing_twice(runtime: Runtime) -> None:
    shop = build_shop()
    await add_shop(runtime)
    dying = stream(shop.orders, die_after=250)
    parts, _planner, enqueuer = parts_for(shop, orders=dying)
    with pytest.raises(Killed):
        await run_sweep(runtime, SHOP, now=NOW, parts=parts, batch_size=100, owner="a")

    # Shopify's next bulk result comes in another order: resuming by position would be wrong.
    reordered = replace(parts, orders=stream(list(reversed(shop.orders))))
    report = await run_sweep(runtime, SHOP, now=NOW + timedelta(minutes=10), parts=reordered, batch_size=100)

    assert report["restarts"] == 1 and report["tally"]["orders"] == 600
    queued = enqueuer.queued
    assert len(queued) == len(set(queued))
    assert set(queued) == expected_actions(shop).actions
    cats = report["tally"]["categories"]
    assert sum(c["actioned_before"] for c in cats.values()) == 0  # today's own steps count as erase


async def test_inactive_customer_waits_for_bookkeeping_of_their_last_order(runtime: Runtime) -> None:
    shop = build_shop(n_orders=0, n_customers=0)
    from datetime import UTC, datetime

    from plugin.shopify.records import CustomerRecord

    shop.customers = [
        # inactive 3 years, last order 3 years ago: the order is still a voucher → kept
        CustomerRecord(id=1, number_of_orders=1, last_order_at=datetime(2023, 6, 1, tzinfo=UTC)),
        # inactive 13 years: every order past bookkeeping → erased at Shopify
        CustomerRecord(id=2, number_of_orders=2, last_order_at=datetime(2013, 6, 1, tzinfo=UTC)),
        # never ordered, inactive 5 years → erased
        CustomerRecord(id=3, updated_at=datetime(2021, 6, 1, tzinfo=UTC)),
        # orders but no known last-order date → not decided
        CustomerRecord(id=4, number_of_orders=1, updated_at=datetime(2019, 1, 1, tzinfo=UTC)),
    ]
    await add_shop(runtime)
    parts, _planner, enqueuer = parts_for(shop)
    report = await run_sweep(runtime, SHOP, now=NOW, parts=parts)

    assert set(enqueuer.queued) == {("shopify", "erase", "customer:2"), ("shopify", "erase", "customer:3")}
    account = report["tally"]["categories"]["customer_account"]
    assert account["keep"] == 1 and account["next_expiry"] == "2033-12-31"
    assert account["undecided"] == 1


async def test_a_sweep_process_killed_with_sigkill_resumes_without_doing_anything_twice(
    runtime: Runtime,
) -> None:
    """A real process, SIGKILLed in the middle of its sweep: no handler runs, its lease is left
    behind. Once the lease has run out, another instance resumes from the last checkpoint."""
    import asyncio
    import os
    import signal
    import sys

    shop = build_shop()
    await add_shop(runtime)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.sweeps.killable",
        runtime.db.url,
        TEST_ENCRYPTION_KEY,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert process.stdout is not None
    done = 0
    while done < 200:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert line, "the sweep process ended before it could be killed"
        if line.startswith(b"checkpoint "):
            done = int(line.split()[1])
    process.send_signal(signal.SIGKILL)
    await process.wait()

    async with runtime.db.session() as session:
        sweep = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
        steps_before = await steps_in_ledger(runtime)
    assert sweep.status == "running" and 200 <= sweep.progress["position"]["orders_done"] < 600
    checkpointed = sweep.progress["position"]["orders_done"]

    parts, _planner, _enqueuer = parts_for(shop)
    report, seen_positions = await resume(runtime, parts, batch_size=50)

    assert report["status"] == "done" and report["restarts"] == 0 and report["tally"]["orders"] == 600
    steps = await steps_in_ledger(runtime)
    assert len(steps) == len(set(steps))  # nothing queued twice across the kill
    expected = expected_actions(shop).actions
    assert set(steps) == {(system, ref) for system, _action, ref in expected}
    assert set(steps_before) <= set(steps)
    # The resumed run went on from the checkpoint: its first batch ended 50 orders after it.
    assert seen_positions[0] == checkpointed + 50
