"""One month of a busy Swedish test shop, on an injected clock: what e-mails does its owner get?

    python -m tests.notifications.busy_month

Day by day (the clock jobs run each morning, twice, as two instances would): customers' requests
arrive and most are finished within days; one data request gets its register extract; one erasure
request stalls until it is near its deadline and then overdue; PostNord (e-mail channel) gets an
erasure request on day 1 and never answers; Klaviyo's connection check fails three nights in a
row; the shop is in dry-run mode for its first ten days while the daily sweep finds work. Prints
the e-mails the owner received (date, subject), from a real SMTP sink.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from plugin import clocks, connections
from plugin.db import Database
from plugin.migrate import upgrade_async
from plugin.models import AdapterConnection, Request, Shop, Step, shop_cell, utcnow
from plugin.outbox import Outbox, deliver_queued, send_reminders
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.sweeps.run import run_sweep
from tests.executor.conftest import fast_config
from tests.executor.doubles import FakeSources, Ledger
from tests.executor.doubles import add_request as add_data_request
from tests.fakes.smtp import SmtpSink
from tests.notifications.support import add_request, build_runtime
from tests.sweeps.shopdata import POLICY_TOML, SHOP, TZ, build_shop
from tests.sweeps.test_runner import parts_for

OWNER = "agare@twelve-years.se"
DAYS = 30
DRY_RUN_DAYS = 10


async def _setup(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP,
                name="Twelve Years",
                country="SE",
                locale="sv",
                timezone=TZ,
                dry_run=True,
                sweep_hour=3,
                policy_toml=POLICY_TOML,
                contact_email_enc=runtime.vault.encrypt(OWNER, shop_cell("contact_email_enc", SHOP)),
            )
        )
        for adapter in ("postnord", "klaviyo"):
            session.add(
                AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="x", status="ok", failures=0)
            )


async def _finish(runtime: Runtime, request_id: int) -> None:
    async with runtime.db.transaction() as session:
        await session.execute(update(Request).where(Request.id == request_id).values(status="done"))


async def _carrier_request(runtime: Runtime, request_id: int) -> None:
    async with runtime.db.transaction() as session:
        step = Step(
            request_id=request_id,
            shop_domain=SHOP,
            key="postnord:erase:shipment:1",
            system="postnord",
            action="erase",
            state="awaiting_confirmation",
        )
        session.add(step)
        await session.flush()
        step_id = step.id
    await Outbox(runtime, SHOP, step_id=step_id).send(
        to="dataprotectionofficer@postnord.example",
        subject="Begäran om radering, ref. {reference}",
        body="Hej! Vänligen radera uppgifterna för försändelse 1. Referens {reference}",
    )


async def _klaviyo_check(runtime: Runtime, ok: bool, now: datetime) -> None:
    """The nightly `gallra adapters check` an operator runs from cron, recorded on the connection."""
    async with runtime.db.transaction() as session:
        row = await session.scalar(
            select(AdapterConnection).where(
                AdapterConnection.shop_domain == SHOP, AdapterConnection.adapter == "klaviyo"
            )
        )
        assert row is not None
        connections.record_check(row, ok, "ok" if ok else "klaviyo: HTTP 401 (api_key)", now)


async def simulate(runtime: Runtime, sink: SmtpSink) -> list[tuple[str, str]]:
    """Run the month; return (date, subject) of each e-mail the owner received."""
    await _setup(runtime)
    # The month starts on the coming Monday morning: later than the outbox's own (real) queue
    # times, and the same story whatever day it runs (the dry-run days span two calendar weeks).
    tomorrow = (utcnow() + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    start = tomorrow + timedelta(days=(7 - tomorrow.weekday()) % 7)
    received: list[tuple[str, str]] = []
    seen = 0
    finish_on: dict[int, list[int]] = {}
    shop_data = build_shop(n_orders=60, n_customers=15)
    for day in range(DAYS):
        now = start + timedelta(days=day)
        if day == 0:
            # A customer asked 24 days ago; it stalled (a carrier step failed, nobody looked).
            await add_request(runtime, SHOP, "stalled", received=now - timedelta(days=24))
        if day == 1:
            carrier = await add_request(runtime, SHOP, "carrier", received=now)
            await _carrier_request(runtime, carrier)
            finish_on.setdefault(20, []).append(carrier)
        for arrival in (3, 4, 9, 12, 17, 21, 25, 28):  # busy: erasures finished within two days
            if day == arrival:
                request_id = await add_request(runtime, SHOP, f"c{arrival}", received=now)
                finish_on.setdefault(day + 2, []).append(request_id)
        if day == 2:
            await add_data_request(runtime, "data_request", domain=SHOP, email="kund@example.se")
            await Worker(runtime, fast_config(), FakeSources(runtime, Ledger())).drain(limit=50)
        if day == 5:
            # One that waits on the customer's carrier until the owner acts, late in the month.
            slow = await add_request(runtime, SHOP, "slow", received=now - timedelta(days=18))
            finish_on.setdefault(26, []).append(slow)
        for request_id in finish_on.get(day, []):
            await _finish(runtime, request_id)
        if day in (10, 11, 12):
            await _klaviyo_check(runtime, False, now - timedelta(hours=4))
        if day == 14:
            await _klaviyo_check(runtime, True, now - timedelta(hours=4))  # the owner fixed the key
        if day < DRY_RUN_DAYS:
            parts, _planner, _enqueuer = parts_for(shop_data)
            await run_sweep(runtime, SHOP, now=now - timedelta(hours=3), parts=parts)
        if day == DRY_RUN_DAYS:
            async with runtime.db.transaction() as session:
                await session.execute(update(Shop).where(Shop.domain == SHOP).values(dry_run=False))
        # The morning's clock jobs, on two instances.
        for _instance in range(2):
            await clocks.watch_deadlines(runtime, now)
            await send_reminders(runtime, now=now)
            await clocks.watch_notifications(runtime, now)
            await deliver_queued(runtime, now=now)
        for message in sink.messages[seen:]:  # what arrived this morning
            if message["To"] == OWNER:
                received.append((now.date().isoformat(), str(message["Subject"]).strip()))
        seen = len(sink.messages)
    return received


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, SmtpSink() as sink:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'busy.db'}"
        await upgrade_async(url)
        runtime = build_runtime(Database(url), **sink.settings())
        try:
            received = await simulate(runtime, sink)
        finally:
            await runtime.close()
    print(f"E-mails to the owner of {SHOP} (locale sv) in {DAYS} days: {len(received)}")
    for day, subject in received:
        print(f"  {day}  {subject}")


if __name__ == "__main__":
    asyncio.run(main())
