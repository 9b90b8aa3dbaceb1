"""`gallra sweep` says exactly what it did (a live sweep or a preview, run now or already run, why
no live sweep ran), and runs a new shop's first sweep live only when asked with `--first-live`.
SQLite and PostgreSQL; the sweep's stream and pipeline are the runner tests' doubles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from plugin.cli import _assemble
from plugin.models import Evidence, Request, Sweep
from plugin.runtime import Runtime
from plugin.settings import get_settings
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.run import run_sweep
from plugin.sweeps.schedule import due_shops
from tests.conftest import cli_environment
from tests.sweeps.doubles import Killed, stream
from tests.sweeps.shopdata import NOW, SHOP, build_shop
from tests.sweeps.test_runner import add_shop, parts_for, steps_in_ledger

DAY = "2026-11-22"  # NOW's day in the shop's zone (Stockholm)
SHOP_DATA = build_shop(n_orders=60, n_customers=12)


@pytest.fixture
def cli(runtime: Runtime) -> Iterator[None]:
    """The CLI on the test database, at the test shop's "today", with the doubles as its parts."""
    patch = pytest.MonkeyPatch()
    for name, value in cli_environment(runtime.db.url).items():
        patch.setenv(name, value)

    async def parts(_runtime: Runtime, _shop: str) -> SweepParts:
        return parts_for(SHOP_DATA)[0]

    patch.setattr("plugin.sweeps.wiring.real_parts", parts)
    patch.setattr("plugin.sweeps.run.utcnow", lambda: NOW)
    get_settings.cache_clear()
    yield
    patch.undo()
    get_settings.cache_clear()


async def sweep(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, _assemble(), ["sweep", *args])
    return result.exit_code, result.output


async def _first_live_entries(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.db.session() as session:
        rows = await session.execute(select(Evidence.payload).where(Evidence.kind == "sweep_first_live"))
        return [dict(payload) for payload in rows.scalars()]


async def test_a_new_shops_day_preview_then_an_explicit_first_live_sweep(runtime: Runtime, cli: None) -> None:
    await add_shop(runtime, swept_before=False)

    code, output = await sweep("--shop", SHOP, "--dry-run")
    assert code == 0, output
    assert (
        f"{SHOP}: ran today's ({DAY}) preview (dry run: nothing sent, nothing queued) now (done)." in output
    )

    # Asked for live after the preview: it says no live sweep ran, why, and how to run one.
    code, output = await sweep("--shop", SHOP)
    assert code == 0, output
    assert "today's sweep had already run" not in output
    assert f"{SHOP}: no live sweep ran: a new shop's first day is a preview only." in output
    assert f"gallra sweep --shop {SHOP} --first-live" in output
    assert f"today's ({DAY}) preview (dry run: nothing sent, nothing queued) had already run (done" in output
    assert "nothing was run again" in output
    assert await steps_in_ledger(runtime) == []
    code, output = await sweep("--shop", SHOP, "--json")
    assert json.loads(output)["dry_reason"] == "new_shop" and json.loads(output)["already"] is True

    # The flag is explicit and per shop.
    code, output = await sweep("--first-live")
    assert code == 2 and "--first-live needs --shop" in output
    code, output = await sweep("--shop", SHOP, "--first-live", "--dry-run")
    assert code == 2 and await steps_in_ledger(runtime) == []

    code, output = await sweep("--shop", SHOP, "--first-live")
    assert code == 0, output
    assert f"{SHOP}: ran today's ({DAY}) live sweep now (done)." in output
    assert "note: first sweep of a new shop, run live as the operator asked" in output
    assert "no live sweep ran" not in output
    assert await steps_in_ledger(runtime)  # the expired holdings are queued in the ledger
    assert await _first_live_entries(runtime) == [
        {"day": DAY, "sweep": (await _sweep_row(runtime, dry_run=False)).id}
    ]

    # Asked again (with or without the flag): today's live sweep had run; nothing runs twice.
    code, output = await sweep("--shop", SHOP)
    assert f"{SHOP}: today's ({DAY}) live sweep had already run (done, finished" in output
    assert "no live sweep ran" not in output
    code, output = await sweep("--shop", SHOP, "--first-live")
    assert "live sweep had already run" in output and len(await _first_live_entries(runtime)) == 1
    # The clock sees the day settled.
    assert await due_shops(runtime, NOW + timedelta(hours=1)) == []


async def _sweep_row(runtime: Runtime, *, dry_run: bool) -> Sweep:
    async with runtime.db.session() as session:
        statement = select(Sweep).where(Sweep.shop_domain == SHOP, Sweep.dry_run.is_(dry_run))
        return (await session.execute(statement)).scalar_one()


async def test_a_shop_in_dry_run_mode_stays_dry_and_says_why(runtime: Runtime, cli: None) -> None:
    await add_shop(runtime, dry_run=True)

    code, output = await sweep("--shop", SHOP)
    assert code == 0, output
    assert f"{SHOP}: no live sweep ran: the shop is in dry-run mode" in output
    assert f"ran today's ({DAY}) preview (dry run: nothing sent, nothing queued) now (done)." in output

    code, output = await sweep("--shop", SHOP, "--first-live")  # the owner's dry-run mode wins
    assert "the shop is in dry-run mode" in output and "had already run" in output
    assert await steps_in_ledger(runtime) == [] and await _first_live_entries(runtime) == []


async def test_first_live_on_a_shop_that_is_not_new_changes_nothing(runtime: Runtime, cli: None) -> None:
    await add_shop(runtime)  # swept yesterday

    code, output = await sweep("--shop", SHOP, "--first-live")
    assert code == 0, output
    assert f"ran today's ({DAY}) live sweep now (done)." in output
    assert "--first-live changed nothing" in output and await _first_live_entries(runtime) == []


async def test_no_active_shop_is_said(runtime: Runtime, cli: None) -> None:
    code, output = await sweep()
    assert code == 0 and output.strip() == "no active shop to sweep"


async def test_an_interrupted_first_live_sweep_is_resumed_live_by_the_clock(runtime: Runtime) -> None:
    """The live row of the day is the operator's go-ahead: whoever resumes it that day (the clock,
    with no flag) continues the live sweep instead of starting a preview."""
    await add_shop(runtime, swept_before=False)
    dying, _planner, _enqueuer = parts_for(SHOP_DATA, orders=stream(SHOP_DATA.orders, die_after=30))
    with pytest.raises(Killed):
        await run_sweep(runtime, SHOP, now=NOW, parts=dying, batch_size=10, first_live=True, owner="a")

    parts, _planner, enqueuer = parts_for(SHOP_DATA)
    later = NOW + timedelta(minutes=10)  # the lease has run out
    resumed = await run_sweep(runtime, SHOP, now=later, parts=parts, batch_size=10, owner="clock")

    assert resumed["dry_run"] is False and resumed["status"] == "done" and enqueuer.calls
    assert resumed["dry_reason"] is None and resumed["first_live"] is False  # authorised before
    async with runtime.db.session() as session:
        kinds = list(
            (await session.execute(select(Sweep.dry_run).where(Sweep.shop_domain == SHOP))).scalars()
        )
        requests = list((await session.execute(select(Request.kind))).scalars())
    assert kinds == [False] and requests == ["sweep"]
    assert len(await _first_live_entries(runtime)) == 1
