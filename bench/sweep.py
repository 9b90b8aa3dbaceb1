"""Benchmark: the retention sweep of a shop with 1,000,000 orders (bulk JSONL, fulfillments with
tracking included) beside the time to merely stream the same JSONL (the floor).

    .venv/bin/python bench/sweep.py [--orders N] [--customers N] [--keep DIR]

Each scenario runs in its own process, so every peak RSS is that scenario's own:
- floor: stream the orders and customers JSONL into records, nothing else;
- day 0: a new shop's first sweep, a dry run (holdings, plan, counts; nothing queued);
- day 1: its first live sweep, which queues every expired holding as a step (plugin.pipelines);
- day 2: an ordinary day on the ledger day 1 left: everything is planned and checked against the
  ledger, and only what expired overnight is queued.
Targets: peak RSS < 200 MB, sweep time <= 3x the floor. SQLite (the embedded default) in a temp dir.
CPU seconds are printed beside wall seconds: on a shared machine they are the steadier comparison.

The JSONL has the shape Shopify (and tests/fakes/shopify.py) gives for `plugin.shopify.bulk`'s
ORDERS_BULK and CUSTOMERS_BULK queries: one object per line, `fulfillments` with `trackingInfo`
inline. Floor and sweep read it the same way, with the real bulk reader (`stream_jsonl` download
line by line, `join_children`, `order_from_bulk` / `parse_customer`) from a local HTTP server in
its own process; only starting and polling the bulk operation (a few constant-cost API calls) is
left out, because the fake keeps a result file in memory and 1,000,000 orders would not fit the
memory target of the process being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from plugin.shopify.records import (  # noqa: E402
    CustomerRecord,
    OrderRecord,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SHOP = "bench-million.myshopify.com"
TZ = "Europe/Stockholm"
POLICY = 'preset = "SE"\n\n[overrides.SE-1]\nperiod = "10y"\n\n[overrides.SE-3-SHIPMENT]\nperiod = "36m"\n'
DAYS = {"dry": 0, "first-live": 1, "next-day": 2}
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
                "numberOfOrders": str(1 + orders // customers),
                "canDelete": False,
                "defaultEmailAddress": {
                    "marketingState": ("SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED")[i % 3],
                    "marketingUpdatedAt": _iso(last),
                },
                "defaultPhoneNumber": None,
                "lastOrder": {"createdAt": _iso(last)},
            }
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return orders_path, customers_path


def readers(base_url: str) -> tuple[Any, Any]:
    """The real bulk reader (`plugin.shopify.bulk`: download, line by line, `__parentId` joins, the
    same record parsers as `stream_orders`/`stream_customers`) over the files on a local server."""
    import httpx

    from plugin.shopify.bulk import join_children, order_from_bulk, stream_jsonl
    from plugin.shopify.operations import parse_customer

    http = httpx.AsyncClient()

    async def orders() -> AsyncIterator[OrderRecord]:
        async for node in join_children(stream_jsonl(http, f"{base_url}/orders.jsonl")):
            yield order_from_bulk(node)

    async def customers() -> AsyncIterator[CustomerRecord]:
        async for node in join_children(stream_jsonl(http, f"{base_url}/customers.jsonl")):
            yield parse_customer(node.node)

    return orders, customers


# ---- scenarios (each in its own process) ---------------------------------------------------------


async def floor(base_url: str) -> dict[str, Any]:
    read_orders, read_customers = readers(base_url)
    started, cpu = time.perf_counter(), time.process_time()
    orders = sum([1 async for _ in read_orders()])
    customers = sum([1 async for _ in read_customers()])
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "orders": orders,
        "customers": customers,
    }


async def _runtime(directory: Path) -> Any:
    import httpx
    from cryptography.fernet import Fernet

    from plugin.crypto import Vault
    from plugin.db import Database
    from plugin.runtime import Runtime
    from plugin.settings import Settings

    url = f"sqlite+aiosqlite:///{directory / 'gallra.db'}"
    key = Fernet.generate_key().decode()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        shopify_api_key="bench",
        shopify_api_secret="bench",  # noqa: S106 - a throwaway value; the bench makes no Shopify call
        encryption_key=key,
        database_url=url,
    )
    return Runtime(settings=settings, db=Database(url), vault=Vault(key), http=httpx.AsyncClient())


async def sweep(base_url: str, directory: Path, scenario: str) -> dict[str, Any]:
    from plugin.models import AdapterConnection, Shop
    from plugin.retention import Policy
    from plugin.sweeps.parts import SweepParts
    from plugin.sweeps.run import run_sweep
    from plugin.sweeps.wiring import enqueue, sweep_planner

    read_orders, read_customers = readers(base_url)
    runtime = await _runtime(directory)
    async with runtime.db.transaction() as session:
        if await session.get(Shop, 1) is None:
            session.add(Shop(id=1, domain=SHOP, country="SE", timezone=TZ, policy_toml=POLICY))
            # The carriers the shop ships with are connected (Acme Freight is not a known carrier).
            for adapter in ("postnord", "bring", "budbee", "dhl"):
                session.add(AdapterConnection(shop_domain=SHOP, adapter=adapter, config_enc="-"))
    parts = SweepParts(
        orders=read_orders,
        customers=read_customers,
        plan=sweep_planner(Policy.from_toml(POLICY)),
        enqueue=enqueue,
        policy_name="SE",
    )
    # Day 0: the new shop's first sweep (a dry run); day 1: its first live sweep, which queues
    # everything that had expired; day 2: an ordinary day. Each day runs on the database the day
    # before left behind.
    now = NOW + timedelta(days=DAYS[scenario])
    started, cpu = time.perf_counter(), time.process_time()
    report = await run_sweep(runtime, SHOP, now=now, parts=parts)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    await runtime.close()
    return {"seconds": seconds, "cpu": cpu, "report": report}


def run_scenario(args: argparse.Namespace) -> None:
    directory = Path(args.dir)
    if args.scenario == "floor":
        result = asyncio.run(floor(args.url))
    else:
        result = asyncio.run(sweep(args.url, directory / args.scenario, args.scenario))
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, default=str))


def _child(directory: Path, scenario: str, url: str, previous: str | None = None) -> dict[str, Any]:
    (directory / scenario).mkdir(exist_ok=True)
    if previous is not None:  # continue on the database the day before left behind
        for name in ("gallra.db", "gallra.db-wal", "gallra.db-shm"):
            if (directory / previous / name).exists():
                shutil.copyfile(directory / previous / name, directory / scenario / name)
    elif scenario != "floor":  # the schema is created here, so migrating is not part of the measure
        from plugin.migrate import upgrade

        upgrade(f"sqlite+aiosqlite:///{directory / scenario / 'gallra.db'}")
    # The machine's 1-minute load average as the run starts (others' work too): a shared machine's
    # figures are only comparable within one run.
    load = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, __file__, "--scenario", scenario, "--dir", str(directory), "--url", url],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--keep", help="keep the generated files in this directory")
    parser.add_argument("--scenario", choices=("floor", *DAYS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
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
            f" {time.perf_counter() - started:.1f}s; read with plugin.shopify.bulk from a local HTTP server"
        )
        port = 18000 + os.getpid() % 1000
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(1.0)
            _report(directory, f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(timeout=10)


def _report(directory: Path, url: str) -> None:
    base = _child(directory, "floor", url)
    print(
        f"floor  (stream JSONL only)     : {base['seconds']:7.1f}s (CPU {base['cpu']:6.1f}s)"
        f"  {base['orders']:,} orders,"
        f" {base['customers']:,} customers  peak RSS {base['peak_rss_mb']:6.1f} MB"
        f"  (load {base['load']:.1f} on {os.cpu_count()} CPUs)"
    )
    previous = None
    for scenario, title in (
        ("dry", "day 0: first sweep, dry run "),
        ("first-live", "day 1: first live sweep      "),
        ("next-day", "day 2: an ordinary day       "),
    ):
        result = _child(directory, scenario, url, previous)
        previous = scenario
        tally = result["report"]["tally"]
        holdings = tally["holdings"]
        ratio = result["seconds"] / base["seconds"]
        cpu_ratio = result["cpu"] / base["cpu"]
        queued = sum(c["erase"] + c["reduce"] for c in tally["categories"].values())
        before = sum(c["actioned_before"] for c in tally["categories"].values())
        print(
            f"{title} : {result['seconds']:7.1f}s (CPU {result['cpu']:6.1f}s)  {holdings:,} holdings"
            f" ({holdings / result['seconds']:,.0f}/s)  peak RSS {result['peak_rss_mb']:6.1f} MB"
            f"  = {ratio:.2f}x floor (CPU {cpu_ratio:.2f}x)"
            f"  [queued {queued:,}, actioned before {before:,}]"
            f"  targets: RSS<200MB {'ok' if result['peak_rss_mb'] < 200 else 'MISSED'},"
            f" <=3x floor {'ok' if ratio <= 3 else 'MISSED'}"
            f"  (load {result['load']:.1f})"
        )


if __name__ == "__main__":
    main()
