"""Executor benchmark: several hundred `customers/redact` requests against local fake Klaviyo and
Mailchimp servers (50 ms latency, their documented limits scaled by --scale so the run takes under
two minutes). Prints the completion time, each provider's achieved rate against its limit (target
>= 0.9 where the limit binds, 0 calls over it), and the lost and duplicated erasures (target 0, 0).

Baseline, measured in the same run: the same pipeline with one step at a time, on fewer requests.

`--workers N` runs the requests in N separate worker processes on one database (PostgreSQL unless
--database-url says otherwise), which share the providers' limits through it.

    .venv/bin/python bench/executor.py [--requests 300] [--scale 4] [--workers 1]
        [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.http import RateLimit
from adapters.klaviyo import Klaviyo
from plugin.connections import configure
from plugin.crypto import Vault
from plugin.db import Database
from plugin.executor.context import WorkerConfig
from plugin.ledger import NewRequest, insert_request
from plugin.migrate import upgrade
from plugin.models import Request, Shop
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.settings import Settings
from tests.fakes.providers import KLAVIYO_LIMITS, MAILCHIMP_CONNECTIONS, free_port

SHOP = "bench.myshopify.com"
AUDIENCE = "aud1"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
KEY_VARIABLE = "GALLRA_BENCH_KEY"  # the encryption key, handed to worker processes


@dataclass
class Run:
    requests: int
    seconds: float
    report: dict[str, Any]  # the fake providers' snapshot
    emails: list[str]
    done: int


@contextlib.contextmanager
def provider_process(latency: float, scale: float) -> Iterator[str]:
    """The fake providers in their own process; yields their base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.providers", str(port), str(latency), str(scale)],
        cwd=Path(__file__).resolve().parent.parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_report", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def scale_klaviyo(scale: float) -> None:
    """The adapter declares the same scaled limits the fake enforces (the documented ones x scale)."""
    scaled = tuple(
        RateLimit(int(limit.requests * scale), limit.per_seconds, limit.scope)
        for limit in Klaviyo.rate_limits
    )
    Klaviyo.rate_limits = scaled  # type: ignore[assignment]  # (the class declares a fixed-length tuple)


async def prepare_database(url: str | None, workdir: Path) -> str:
    if url is None:
        url = f"sqlite+aiosqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    elif url.startswith("postgres"):
        import asyncpg  # type: ignore[import-untyped]

        name = f"gallra_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(url.replace("+asyncpg", ""))
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = url.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(admin_url: str | None, url: str) -> None:
    """Drop a PostgreSQL database `prepare_database` created (SQLite files go with the temp dir)."""
    if admin_url is None or not url.startswith("postgres"):
        return
    import asyncpg

    admin = await asyncpg.connect(admin_url.replace("+asyncpg", ""))
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def bench_runtime(url: str, key: str) -> Runtime:
    settings = Settings(
        _env_file=None,
        shopify_api_key="bench",
        shopify_api_secret="bench",  # noqa: S106 (a throwaway secret for a local run)
        encryption_key=key,
        database_url=url,
        run_workers=False,
        # The fake providers listen on loopback: a custom URL to a private address.
        allow_custom_provider_urls=True,
        allow_private_provider_urls=True,
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0), limits=httpx.Limits(max_connections=200)
    )
    return Runtime(settings=settings, db=Database(url), vault=Vault(key), http=http)


def worker_config(concurrency: int) -> WorkerConfig:
    return WorkerConfig(
        owner=f"bench-{os.getpid()}",
        concurrency=concurrency,
        poll_seconds=0.2,
        backoff_base=1.0,
        backoff_cap=10,
    )


async def open_requests(runtime: Runtime) -> int:
    async with runtime.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Request).where(Request.status != "done")
        )
    return int(count or 0)


async def run_here(runtime: Runtime, concurrency: int) -> None:
    """One worker in this process, until every request is done."""
    worker = Worker(runtime, worker_config(concurrency), LiveSources(runtime))
    await worker.drain(limit=600, settle=1.0)
    while await open_requests(runtime):  # anything rescheduled (a Retry-After) is waited for
        await asyncio.sleep(0.5)
        await worker.drain(limit=600, settle=1.0)


def start_workers(
    workers: int, url: str, key: str, scale: float, concurrency: int
) -> list[subprocess.Popen[bytes]]:
    """`workers` processes running `worker_process` on the database; each says `ready` when it is."""
    return [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker-process",
                url,
                "--scale",
                str(scale),
                "--concurrency",
                str(concurrency),
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, KEY_VARIABLE: key},
            stdout=subprocess.PIPE,
        )
        for _ in range(workers)
    ]


async def worker_process(url: str, concurrency: int) -> None:
    """A worker in its own process (started by `start_workers`), until SIGTERM."""
    runtime = bench_runtime(url, os.environ[KEY_VARIABLE])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await open_requests(runtime)  # connected before it says it is ready
    print("ready", flush=True)
    try:
        await Worker(runtime, worker_config(concurrency), LiveSources(runtime)).run(stop)
    finally:
        await runtime.close()


async def run_in_processes(runtime: Runtime, processes: list[subprocess.Popen[bytes]]) -> None:
    while await open_requests(runtime):
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a worker process exited with {process.returncode}")
        await asyncio.sleep(0.2)


async def run(
    count: int,
    scale: float,
    concurrency: int,
    url: str | None,
    workdir: Path,
    latency: float,
    workers: int = 1,
) -> Run:
    admin_url, url = url, await prepare_database(url, workdir)
    key = Fernet.generate_key().decode()
    emails = [f"customer{i}@example.se" for i in range(count)]
    runtime = bench_runtime(url, key)
    http = runtime.http
    with provider_process(latency, scale) as server_url:
        await http.post(f"{server_url}/_setup", json={"profiles": emails, "members": {AUDIENCE: emails}})
        async with runtime.db.transaction() as session:
            session.add(Shop(domain=SHOP, name="Bench", country="SE", timezone="Europe/Stockholm"))
            await configure(
                runtime,
                session,
                SHOP,
                "klaviyo",
                {"api_key": "pk_bench", "base_url": f"{server_url}/klaviyo"},
            )
            await configure(
                runtime,
                session,
                SHOP,
                "mailchimp",
                {"api_key": "k-us1", "base_url": f"{server_url}/mailchimp/3.0"},
            )
        # Worker processes are started before the requests arrive, as in a running deployment.
        processes = start_workers(workers, url, key, scale, concurrency) if workers > 1 else []
        try:
            for process in processes:
                assert process.stdout is not None
                if (await asyncio.to_thread(process.stdout.readline)).strip() != b"ready":
                    raise RuntimeError("a worker process did not start")
            async with runtime.db.transaction() as session:
                for email in emails:
                    await insert_request(
                        session,
                        runtime.vault,
                        NewRequest(kind="customer_redact", shop_domain=SHOP, business_key=email, email=email),
                    )
            started = time.monotonic()
            if processes:
                await run_in_processes(runtime, processes)
            else:
                await run_here(runtime, concurrency)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)
        seconds = time.monotonic() - started
        async with runtime.db.session() as session:
            done = await session.scalar(
                select(func.count()).select_from(Request).where(Request.status == "done")
            )
        report = (await http.get(f"{server_url}/_report")).json()
    await runtime.close()
    await drop_database(admin_url, url)
    return Run(count, seconds, report, emails, int(done or 0))


def report_scope(
    report: dict[str, Any], key: str, limits: tuple[tuple[int, float], ...], scale: float
) -> str:
    stats = report["stats"].get(key)
    if stats is None or stats["first"] is None or stats["last"] is None:
        return f"{key:<22} no calls"
    accepted = stats["calls"] - stats["over_limit"]
    span = max(stats["last"] - stats["first"], 1e-9)
    # Against the limit: the time the documented windows need at the least for this many calls
    # (each call at the earliest moment every window allows), over the time it really took.
    ideal = ideal_span(accepted, [(int(r * scale), per) for r, per in limits])
    ratio = ideal / span
    binds = ratio >= 0.5  # the limit, not the work, set the pace
    windows = ", ".join(f"{int(r * scale)}/{per:g}s" for r, per in limits)
    return (
        f"{key:<22} {accepted:>5} calls in {span:6.1f} s ({accepted / span:6.2f}/s); limits {windows} allow "
        f"them in {ideal:5.1f} s at best: ratio {ratio:4.2f}{'' if binds else ' (limit not binding)'}; "
        f"over limit {stats['over_limit']}" + (f" {stats.get('over_windows')}" if stats["over_limit"] else "")
    )


def ideal_span(calls: int, limits: list[tuple[int, float]]) -> float:
    """Seconds from the first to the last of `calls` calls sent as fast as sliding windows allow."""
    times: list[float] = []
    for _ in range(calls):
        t = times[-1] if times else 0.0
        for allowed, per in limits:
            if len(times) >= allowed:
                t = max(t, times[-allowed] + per)
        times.append(t)
    return times[-1] if times else 0.0


def erasure_counts(result: Run) -> tuple[int, int]:
    lost = duplicated = 0
    deletions = result.report["deletions"]
    purges = {(list_id, email): n for list_id, email, n in result.report["purges"]}
    for email in result.emails:
        for count in (deletions.get(email, 0), purges.get((AUDIENCE, email), 0)):
            lost += count == 0
            duplicated += count > 1
    return lost, duplicated


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--baseline-requests", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="worker processes on one database")
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"default: a SQLite file in a temporary directory; with --workers > 1, {DEFAULT_POSTGRES}",
    )
    parser.add_argument("--worker-process", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scale_klaviyo(args.scale)
    if args.worker_process:
        await worker_process(args.worker_process, args.concurrency)
        return
    url = args.database_url or (DEFAULT_POSTGRES if args.workers > 1 else None)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        baseline = await run(args.baseline_requests, args.scale, 1, url, workdir, args.latency)
        result = await run(
            args.requests, args.scale, args.concurrency, url, workdir, args.latency, args.workers
        )
    db = "PostgreSQL" if url and url.startswith("postgres") else "SQLite"
    print(
        "executor bench: customers/redact via Klaviyo + Mailchimp fakes, "
        f"{args.latency * 1000:.0f} ms latency, documented limits x{args.scale:g}, {db}"
    )
    print(
        f"baseline (one step at a time): {baseline.requests} requests in {baseline.seconds:.1f} s = "
        f"{baseline.requests / baseline.seconds:.2f} requests/s"
    )
    processes = f"{args.workers} worker processes x " if args.workers > 1 else ""
    print(
        f"gallra   ({processes}concurrency {args.concurrency}):   {result.requests} requests in "
        f"{result.seconds:.1f} s = "
        f"{result.requests / result.seconds:.2f} requests/s ({result.done} done)"
    )
    for scope in ("profiles", "suppression", "deletion"):
        print(report_scope(result.report, f"klaviyo:{scope}", KLAVIYO_LIMITS[scope], args.scale))
    mailchimp = result.report["stats"].get("mailchimp")
    calls = mailchimp["calls"] if mailchimp else 0
    print(
        f"{'mailchimp':<22} {calls:>5} calls, max {result.report['max_in_flight']} "
        f"concurrent vs limit {MAILCHIMP_CONNECTIONS} connections (adapter uses its configured pool); "
        f"over limit {mailchimp['over_limit'] if mailchimp else 0}"
    )
    lost, duplicated = erasure_counts(result)
    print(f"erasures: {2 * result.requests} expected, lost {lost}, duplicated {duplicated}")


if __name__ == "__main__":
    asyncio.run(main())
