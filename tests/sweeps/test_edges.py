"""Gallra's own working data, newsletter tools, a sweep taken over by another instance, and a
sweep that keeps failing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from plugin.crypto import Vault
from plugin.holdings import Category, Holding
from plugin.models import AdapterConnection, Request, Shop, Sweep, request_cell
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.shopify.records import CustomerRecord, OrderRecord
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.run import MAX_ATTEMPTS, run_sweep
from plugin.sweeps.runner import SweepLost
from plugin.sweeps.wiring import sweep_planner
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import NOW, POLICY_TOML, SHOP, TZ


async def add_shop(runtime: Runtime, *connections: str) -> None:
    async with runtime.db.transaction() as session:
        session.add(Shop(domain=SHOP, country="SE", timezone=TZ, policy_toml=POLICY_TOML))
        session.add(Sweep(shop_domain=SHOP, day="2026-11-01", dry_run=True, status="done"))
        for adapter in connections:
            session.add(AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="x"))


def parts(
    orders: list[OrderRecord] | None = None, customers: list[CustomerRecord] | None = None
) -> tuple[SweepParts, RecordingEnqueuer]:
    enqueuer = RecordingEnqueuer()
    return (
        SweepParts(
            orders=stream(orders or []),
            customers=stream(customers or []),
            plan=sweep_planner(Policy.from_toml(POLICY_TOML)),
            enqueue=enqueuer,
        ),
        enqueuer,
    )


async def test_gallras_own_request_data_past_its_period_is_purged(runtime: Runtime, vault: Vault) -> None:
    await add_shop(runtime)
    async with runtime.db.transaction() as session:
        for n, (status, completed) in enumerate(
            [
                ("done", NOW - timedelta(days=90)),  # answered 90 days ago: past APP-1's 30 days
                ("done", NOW - timedelta(days=5)),  # answered 5 days ago: kept
                ("in_progress", None),  # still open: not a finished request, not touched
            ]
        ):
            session.add(
                Request(
                    shop_domain=SHOP,
                    kind="customer_redact",
                    business_key=f"k{n}",
                    email_enc=vault.encrypt(
                        f"person{n}@example.com", request_cell("email_enc", SHOP, "customer_redact", f"k{n}")
                    ),
                    received_at=NOW - timedelta(days=120),
                    due_at=NOW,
                    status=status,
                    completed_at=completed,
                )
            )
    sweep_parts, enqueuer = parts()
    report = await run_sweep(runtime, SHOP, now=NOW, parts=sweep_parts)

    async with runtime.db.session() as session:
        old = (await session.execute(select(Request.id).where(Request.business_key == "k0"))).scalar_one()
    assert enqueuer.queued == [("gallra", "erase", f"request:{old}")]
    own = report["tally"]["categories"]["app_request_data"]
    assert (own["seen"], own["erase"], own["keep"]) == (2, 1, 1)
    assert report["tally"]["own_records"] == 2


async def test_what_a_connected_newsletter_tool_holds_is_swept_too(runtime: Runtime) -> None:
    await add_shop(runtime, "klaviyo")
    held = [
        # unsubscribed four years ago: the suppression entry's 3 years are over → erase
        Holding(
            "klaviyo", Category.NEWSLETTER, "profile:A", "Klaviyo profile A", unsubscribed=date(2022, 6, 1)
        ),
        # unsubscribed a year ago: profile fields go now (MK-1-PROFILE), the suppression entry stays
        Holding(
            "klaviyo", Category.NEWSLETTER, "profile:B", "Klaviyo profile B", unsubscribed=date(2025, 11, 1)
        ),
        # still subscribed: kept, no end date
        Holding("klaviyo", Category.NEWSLETTER, "profile:C", "Klaviyo profile C"),
    ]
    sweep_parts, enqueuer = parts()
    with_tools = dataclasses.replace(sweep_parts, tools=stream(held))
    report = await run_sweep(runtime, SHOP, now=NOW, parts=with_tools)

    assert set(enqueuer.queued) == {("klaviyo", "erase", "profile:A"), ("klaviyo", "reduce", "profile:B")}
    newsletter = report["tally"]["categories"]["newsletter"]
    assert (newsletter["erase"], newsletter["reduce"], newsletter["keep"], newsletter["undecided"]) == (
        1,
        1,
        1,
        0,
    )
    assert report["tally"]["tool_records"] == 3


async def test_a_sweep_taken_over_by_another_instance_stops(runtime: Runtime) -> None:
    await add_shop(runtime)
    orders = [OrderRecord(id=i, name=f"#{i}", created_at=datetime(2014, 1, 2, tzinfo=UTC)) for i in range(30)]
    sweep_parts, _enqueuer = parts(orders=orders)

    def orders_then_taken_over() -> AsyncIterator[OrderRecord]:
        """Between the first and second batch, another instance takes the sweep over (as it may
        once this one's lease has run out, e.g. after a long stall)."""

        async def gen() -> AsyncIterator[OrderRecord]:
            async for n, order in _enumerate(sweep_parts.orders()):
                if n == 12:
                    async with runtime.db.transaction() as session:
                        await session.execute(
                            update(Sweep).where(Sweep.day == "2026-11-22").values(lease_owner="other")
                        )
                yield order

        return gen()

    taken_over = SweepParts(
        orders=orders_then_taken_over,
        customers=sweep_parts.customers,
        plan=sweep_parts.plan,
        enqueue=sweep_parts.enqueue,
    )
    with pytest.raises(SweepLost):
        await run_sweep(runtime, SHOP, now=NOW, parts=taken_over, batch_size=10)
    async with runtime.db.session() as session:
        row = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
    # The first batch was checkpointed; the instance that lost the sweep recorded nothing more.
    assert row.lease_owner == "other" and row.progress["position"]["orders_done"] == 10


async def _enumerate(stream: AsyncIterator[OrderRecord]) -> AsyncIterator[tuple[int, OrderRecord]]:
    n = 0
    async for item in stream:
        yield n, item
        n += 1


async def test_a_sweep_that_keeps_failing_is_given_up_for_the_day(runtime: Runtime) -> None:
    await add_shop(runtime)

    class Broken(Exception):
        pass

    def broken_stream() -> AsyncIterator[OrderRecord]:
        async def gen() -> AsyncIterator[OrderRecord]:
            raise Broken
            yield  # pragma: no cover

        return gen()

    sweep_parts, _enqueuer = parts()
    failing = SweepParts(
        orders=broken_stream,
        customers=sweep_parts.customers,
        plan=sweep_parts.plan,
        enqueue=sweep_parts.enqueue,
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(Broken):
            await run_sweep(runtime, SHOP, now=NOW + timedelta(minutes=6 * attempt), parts=failing)
    async with runtime.db.session() as session:
        row = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
    assert (
        row.status == "failed" and row.report["error"] == "Broken" and row.report["attempts"] == MAX_ATTEMPTS
    )
    # Failed for today: the clock does not start it again until tomorrow.
    again = await run_sweep(runtime, SHOP, now=NOW + timedelta(hours=3), parts=failing)
    assert again["already"] is True and again["status"] == "failed"


async def test_the_lease_is_renewed_while_shopify_prepares_the_bulk_result(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A big shop's bulk result can take Shopify many minutes: no batch arrives meanwhile, yet the
    sweep is alive and no other instance may take it over."""
    import asyncio

    from plugin.sweeps import claim

    monkeypatch.setattr(claim, "LEASE", timedelta(seconds=1.5))  # renewed every 0.5 s
    await add_shop(runtime)
    sweep_parts, _enqueuer = parts()

    def slow_orders() -> AsyncIterator[OrderRecord]:
        async def gen() -> AsyncIterator[OrderRecord]:
            await asyncio.sleep(4.0)  # Shopify still preparing the result file
            yield OrderRecord(id=1, name="#1", created_at=datetime(2014, 1, 2, tzinfo=UTC))

        return gen()

    slow = SweepParts(
        orders=slow_orders,
        customers=sweep_parts.customers,
        plan=sweep_parts.plan,
        enqueue=sweep_parts.enqueue,
    )
    first = asyncio.create_task(run_sweep(runtime, SHOP, now=NOW, parts=slow, owner="a"))
    await asyncio.sleep(3.0)  # twice the first lease
    other = await run_sweep(runtime, SHOP, now=NOW + timedelta(seconds=3), parts=slow, owner="b")
    assert other["already"] is True and other["status"] == "running"
    report = await first
    assert report["status"] == "done" and report["tally"]["orders"] == 1


async def test_a_sweep_killed_outright_every_time_is_given_up_too(runtime: Runtime) -> None:
    """A process killed mid-sweep (out of memory, say) runs no error handler: the attempt was
    counted when the sweep was claimed, so the day's retries still end."""
    await add_shop(runtime)

    class Killed(BaseException):  # like SIGKILL: nothing in the sweep gets to handle it
        pass

    def dying() -> AsyncIterator[OrderRecord]:
        async def gen() -> AsyncIterator[OrderRecord]:
            raise Killed
            yield  # pragma: no cover

        return gen()

    sweep_parts, _enqueuer = parts()
    doomed = SweepParts(
        orders=dying, customers=sweep_parts.customers, plan=sweep_parts.plan, enqueue=sweep_parts.enqueue
    )
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with pytest.raises(Killed):
            await run_sweep(runtime, SHOP, now=NOW + timedelta(minutes=6 * attempt), parts=doomed)
    with pytest.raises(Exception, match="failed 5 times"):
        await run_sweep(runtime, SHOP, now=NOW + timedelta(minutes=6 * (MAX_ATTEMPTS + 1)), parts=doomed)
    async with runtime.db.session() as session:
        row = (await session.execute(select(Sweep).where(Sweep.day == "2026-11-22"))).scalar_one()
    assert row.status == "failed" and row.report["error"] == "SweepGaveUp"
