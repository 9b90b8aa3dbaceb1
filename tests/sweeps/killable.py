"""A sweep in a process of its own, for the SIGKILL test: `python -m tests.sweeps.killable DB_URL`.

It sweeps the twelve-year test shop with the real planner, queues steps the way the pipeline does,
streams slowly, and prints each checkpoint's position so the test knows when to kill it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import cast

import httpx

from plugin.crypto import Vault
from plugin.db import Database
from plugin.retention import Policy
from plugin.runtime import Runtime
from plugin.shopify.records import OrderRecord
from plugin.sweeps.parts import SweepParts
from plugin.sweeps.run import run_sweep
from plugin.sweeps.wiring import sweep_planner
from tests.conftest import make_settings
from tests.sweeps.doubles import RecordingEnqueuer, stream
from tests.sweeps.shopdata import NOW, POLICY_TOML, SHOP, build_shop


def parts(delay: float) -> SweepParts:
    shop = build_shop()

    def slow_orders() -> AsyncIterator[OrderRecord]:
        async def gen() -> AsyncIterator[OrderRecord]:
            for order in shop.orders:
                await asyncio.sleep(delay)
                yield order

        return gen()

    return SweepParts(
        orders=slow_orders,
        customers=stream(shop.customers),
        plan=sweep_planner(Policy.from_toml(POLICY_TOML)),
        enqueue=RecordingEnqueuer(),
    )


async def main(url: str, key: str) -> None:
    db = Database(url)
    async with httpx.AsyncClient() as http:
        runtime = Runtime(settings=make_settings(url), db=db, vault=Vault(key), http=http)

        def show(progress: dict[str, object]) -> None:
            position = cast(dict[str, object], progress.get("position") or {})
            print(f"checkpoint {position.get('orders_done', 0)}", flush=True)

        await run_sweep(runtime, SHOP, now=NOW, parts=parts(0.004), batch_size=50, on_progress=show)
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
