"""Benchmark: the retention sweep of a shop with 1,000,000 orders (bulk JSONL, fulfillments with
tracking included) beside the time to merely stream the same JSONL (the floor).

    .venv/bin/python bench/sweep.py [--orders N] [--customers N] [--keep DIR]

Each scenario runs in its own process, so every peak RSS is that scenario's own:
- floor: stream the orders and customers JSONL into records, nothing else;
- dry run: a new shop's first sweep (holdings, plan, counts; nothing queued);
- live, next day: the daily sweep once earlier sweeps have queued what had expired (their steps
  are loaded into the ledger first), so it plans everything and queues only what expired today.
Targets: peak RSS < 200 MB, sweep time <= 2x the floor. SQLite (the embedded default) in a temp dir.

The JSONL is what a Shopify bulk operation returns for the orders query (one object per line,
`fulfillments` with `trackingInfo` inline). It is read by `plugin.shopify.bulk.stream_orders` when
that exists with a JSONL-file reader (`read_orders_jsonl`), else by `jsonl_orders` below, which
uses the same record types; floor and sweep always use the same reader.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin.shopify.records import (  # noqa: E402
    CustomerRecord,
    FulfillmentRecord,
    OrderRecord,
    TrackingInfo,
    legacy_id,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SHOP = "bench-million.myshopify.com"
TZ = "Europe/Stockholm"
POLICY = 'preset = "SE"\n\n[overrides.SE-1]\nperiod = "10y"\n\n[overrides.SE-3-SHIPMENT]\nperiod = "36m"\n'
CARRIERS = ("PostNord", "Bring", "Budbee", "DHL Express", "Acme Freight AB")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the shop's bulk JSONL ----------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_jsonl(directory: Path, orders: int, customers: int, seed: int = 1) -> tuple[Path, Path]:
    rng = random.Random(seed)
    start = NOW - timedelta(days=12 * 365)
    span = int((NOW - start).total_seconds()) - 86400
    orders_path, customers_path = directory / "orders.jsonl", directory / "customers.jsonl"
    with orders_path.open("w") as out:
        for i in range(orders):
            created = start + timedelta(seconds=span * i // orders + rng.randrange(600))
            delivered = created + timedelta(days=1 + rng.randrange(5))
            tracking = []
            if NOW - created < timedelta(days=4 * 365):  # carriers over the last four years
                tracking = [{"company": CARRIERS[i % len(CARRIERS)], "number": f"TN{i:09d}SE", "url": None}]
            line = {
                "id": f"gid://shopify/Order/{10_000_000 + i}",
                "name": f"#{1001 + i}",
                "createdAt": _iso(created),
                "processedAt": _iso(created),
                "closedAt": _iso(delivered),
                "cancelledAt": None,
                "customer": {"id": f"gid://shopify/Customer/{500_000 + i % customers}"},
                "shippingAddress": {"countryCodeV2": "SE"},
                "fulfillments": [
                    {
                        "id": f"gid://shopify/Fulfillment/{20_000_000 + i}",
                        "status": "SUCCESS",
                        "createdAt": _iso(created + timedelta(hours=20)),
                        "deliveredAt": _iso(delivered),
                        "trackingInfo": tracking,
                    }
                ],
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    with customers_path.open("w") as out:
        for i in range(customers):
            last = start + timedelta(seconds=rng.randrange(span))
            line = {
                "id": f"gid://shopify/Customer/{500_000 + i}",
                "createdAt": _iso(start),
                "updatedAt": _iso(last),
                "lastOrder": {"createdAt": _iso(last)},
                "numberOfOrders": str(1 + orders // customers),
                "defaultEmailAddress": {
                    "emailAddress": f"c{i}@example.com",
                    "marketingState": ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED")[i % 3],
                    "marketingUpdatedAt": _iso(last),
                },
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return orders_path, customers_path


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for raw in handle:
            yield json.loads(raw)


async def jsonl_orders(path: Path) -> AsyncIterator[OrderRecord]:
    for n, item in enumerate(_lines(path)):
        fulfillments = tuple(
            FulfillmentRecord(
                id=legacy_id(f["id"]),
                status=f.get("status"),
                created_at=_time(f.get("createdAt")),
                delivered_at=_time(f.get("deliveredAt")),
                tracking=tuple(
                    TrackingInfo(t.get("company"), t.get("number"), t.get("url"))
                    for t in f.get("trackingInfo") or ()
                ),
            )
            for f in item.get("fulfillments") or ()
        )
        created = _time(item["createdAt"])
        assert created is not None
        yield OrderRecord(
            id=legacy_id(item["id"]),
            name=item["name"],
            created_at=created,
            processed_at=_time(item.get("processedAt")),
            closed_at=_time(item.get("closedAt")),
            cancelled_at=_time(item.get("cancelledAt")),
            customer_id=legacy_id(item["customer"]["id"]) if item.get("customer") else None,
            shipping_country=(item.get("shippingAddress") or {}).get("countryCodeV2"),
            fulfillments=fulfillments,
        )
        if n % 2000 == 0:
            await asyncio.sleep(0)  # a real download yields to the loop between chunks


async def jsonl_customers(path: Path) -> AsyncIterator[CustomerRecord]:
    for n, item in enumerate(_lines(path)):
        email = item.get("defaultEmailAddress") or {}
        yield CustomerRecord(
            id=legacy_id(item["id"]),
            email=email.get("emailAddress"),
            email_marketing_state=email.get("marketingState"),
            marketing_updated_at=_time(email.get("marketingUpdatedAt")),
            number_of_orders=int(item.get("numberOfOrders") or 0),
            created_at=_time(item.get("createdAt")),
            updated_at=_time(item.get("updatedAt")),
            last_order_at=_time((item.get("lastOrder") or {}).get("createdAt")),
        )
        if n % 2000 == 0:
            await asyncio.sleep(0)


def readers() -> tuple[Any, Any, str]:
    try:
        from plugin.shopify import bulk  # type: ignore[attr-defined]

        return bulk.read_orders_jsonl, bulk.read_customers_jsonl, "plugin.shopify.bulk"
    except (ImportError, AttributeError):
        return jsonl_orders, jsonl_customers, "bench reader (plugin.shopify.bulk has no JSONL-file reader)"


# ---- scenarios (each in its own process) ---------------------------------------------------------


async def floor(orders_path: Path, customers_path: Path) -> dict[str, Any]:
    read_orders, read_customers, _ = readers()
    started = time.perf_counter()
    orders = sum([1 async for _ in read_orders(orders_path)])
    customers = sum([1 async for _ in read_customers(customers_path)])
    return {"seconds": time.perf_counter() - started, "orders": orders, "customers": customers}


async def _runtime(directory: Path) -> Any:
    import httpx
    from cryptography.fernet import Fernet

    from plugin.crypto import Vault
    from plugin.db import Database
    from plugin.migrate import upgrade
    from plugin.runtime import Runtime
    from plugin.settings import Settings

    url = f"sqlite+aiosqlite:///{directory / 'gallra.db'}"
    if not (directory / "gallra.db").exists():
        await asyncio.to_thread(upgrade, url)
    key = Fernet.generate_key().decode()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        shopify_api_key="bench",
        shopify_api_secret="bench",
        encryption_key=key,
        database_url=url,
    )
    return Runtime(settings=settings, db=Database(url), vault=Vault(key), http=httpx.AsyncClient())


async def sweep(orders_path: Path, customers_path: Path, directory: Path, scenario: str) -> dict[str, Any]:
    from plugin.models import Shop, Sweep
    from plugin.sweeps.memo import MemoPlanner
    from plugin.sweeps.parts import SweepParts
    from plugin.sweeps.run import run_sweep
    from plugin.sweeps.wiring import enqueue, shop_policy, sweep_planner

    read_orders, read_customers, _ = readers()
    runtime = await _runtime(directory)
    async with runtime.db.transaction() as session:
        if await session.get(Shop, 1) is None:
            session.add(Shop(id=1, domain=SHOP, country="SE", timezone=TZ, policy_toml=POLICY))
    parts = SweepParts(
        orders=lambda: read_orders(orders_path),
        customers=lambda: read_customers(customers_path),
        plan=MemoPlanner(sweep_planner(shop_policy(POLICY, "SE"))),
        enqueue=enqueue,
        policy_name="SE",
    )
    now = NOW
    if scenario == "live":
        # Yesterday's sweep has run and queued what had expired by then: load its steps.
        async with runtime.db.transaction() as session:
            session.add(Sweep(shop_domain=SHOP, day="2026-11-01", dry_run=True, status="done"))
        await preload_yesterday(runtime, parts, orders_path)
        now = NOW + timedelta(days=1)
    started = time.perf_counter()
    report = await run_sweep(runtime, SHOP, now=now, parts=parts)
    seconds = time.perf_counter() - started
    await runtime.close()
    return {"seconds": seconds, "report": report}


async def preload_yesterday(runtime: Any, parts: Any, orders_path: Path) -> None:
    """What yesterday's live sweep queued: every holding that had expired by yesterday, as steps of
    yesterday's sweep request (done), written with plain multi-row inserts to set the scene fast."""
    from sqlalchemy import insert

    from plugin.models import Request, Step
    from plugin.shopify.holdings import order_holdings

    yesterday = NOW.astimezone(ZoneInfo(TZ)).date()  # the day of yesterday's sweep
    async with runtime.db.transaction() as session:
        request = Request(
            shop_domain=SHOP, kind="sweep", business_key="sweep:2026-11-22", due_at=NOW, status="done"
        )
        session.add(request)
        await session.flush()
        request_id = request.id
    rows: list[dict[str, Any]] = []

    async def flush() -> None:
        async with runtime.db.transaction() as session:
            await session.execute(insert(Step), rows)
        rows.clear()

    plan = parts.plan
    batch: list[Any] = []
    async for order in parts.orders():
        batch.extend(order_holdings(order, TZ))
        if len(batch) >= 6000:
            rows.extend(_step_rows(plan(batch, yesterday), batch, request_id))
            batch = []
            if len(rows) > 20000:
                await flush()
    rows.extend(_step_rows(plan(batch, yesterday), batch, request_id))
    await flush()


def _step_rows(decisions: Any, holdings: Any, request_id: int) -> Iterator[dict[str, Any]]:
    for holding, decision in zip(holdings, decisions, strict=True):
        action = str(decision.action)
        if action in ("erase", "reduce") and holding.system in (
            "shopify",
            "postnord",
            "bring",
            "budbee",
            "dhl",
        ):
            yield {
                "request_id": request_id,
                "shop_domain": SHOP,
                "key": f"{holding.system}:{action}:{holding.ref}",
                "system": holding.system,
                "action": action,
                "category": holding.category.value,
                "holding_ref": holding.ref,
                "decision": {},
                "state": "done",
            }


def run_scenario(args: argparse.Namespace) -> None:
    directory = Path(args.dir)
    orders_path, customers_path = directory / "orders.jsonl", directory / "customers.jsonl"
    if args.scenario == "floor":
        result = asyncio.run(floor(orders_path, customers_path))
    else:
        result = asyncio.run(sweep(orders_path, customers_path, directory / args.scenario, args.scenario))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, default=str))


def _child(directory: Path, scenario: str) -> dict[str, Any]:
    (directory / scenario).mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, __file__, "--scenario", scenario, "--dir", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--keep", help="keep the generated files in this directory")
    parser.add_argument("--scenario", choices=("floor", "dry", "live"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        run_scenario(args)
        return
    with tempfile.TemporaryDirectory(prefix="gallra-sweep-bench-") as temp:
        directory = Path(args.keep or temp)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_jsonl(directory, args.orders, args.customers)
        size = (directory / "orders.jsonl").stat().st_size / 1e6
        print(
            f"shop: {args.orders:,} orders over 12 years ({size:.0f} MB JSONL, fulfillments with tracking"
            f" for the last 4 years), {args.customers:,} customers; generated in"
            f" {time.perf_counter() - started:.1f}s; reader: {readers()[2]}"
        )
        base = _child(directory, "floor")
        print(
            f"floor  (stream JSONL only)     : {base['seconds']:7.1f}s  {base['orders']:,} orders,"
            f" {base['customers']:,} customers  peak RSS {base['peak_rss_mb']:6.1f} MB"
        )
        for scenario, title in (
            ("dry", "sweep, dry run (first sweep) "),
            ("live", "sweep, live (next day)      "),
        ):
            result = _child(directory, scenario)
            tally = result["report"]["tally"]
            holdings = tally["holdings"]
            ratio = result["seconds"] / base["seconds"]
            queued = sum(c["erase"] + c["reduce"] for c in tally["categories"].values())
            before = sum(c["actioned_before"] for c in tally["categories"].values())
            print(
                f"{title} : {result['seconds']:7.1f}s  {holdings:,} holdings ({holdings / result['seconds']:,.0f}/s)"
                f"  peak RSS {result['peak_rss_mb']:6.1f} MB  = {ratio:.2f}x floor"
                f"  [queued {queued:,}, actioned before {before:,}]"
                f"  targets: RSS<200MB {'ok' if result['peak_rss_mb'] < 200 else 'MISSED'},"
                f" <=2x floor {'ok' if ratio <= 2 else 'MISSED'}"
            )


if __name__ == "__main__":
    main()
