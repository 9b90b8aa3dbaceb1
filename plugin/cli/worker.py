"""`gallra worker`: run the executor and the clocks, to scale out beside `gallra serve`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated

import typer

from plugin import logs
from plugin.clocks import background
from plugin.executor.context import WorkerConfig, worker_id
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.settings import load_settings


async def _run_worker(config: WorkerConfig, drain: bool, clocks: bool) -> None:

    runtime = Runtime.build(load_settings())
    try:
        if drain:
            await Worker(runtime, config).drain(limit=24 * 3600.0)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with background(runtime, config=config, jobs=None if clocks else []):
            await stop.wait()
    finally:
        await runtime.close()


def worker(
    concurrency: Annotated[int, typer.Option(help="Steps in flight at once in this process.")] = 8,
    lease_seconds: Annotated[float, typer.Option(help="Lease length; renewed while a step runs.")] = 120.0,
    poll_seconds: Annotated[float, typer.Option(help="Idle wait between looks for due work.")] = 5.0,
    drain: Annotated[bool, typer.Option("--drain", help="Exit once nothing is due.")] = False,
    clocks: Annotated[bool, typer.Option(help="Also run the clocks (sweeps, deadlines, reclaim).")] = True,
) -> None:
    """Run an executor worker: claim due requests and steps, run them, record outcomes.

    Any number of workers (and `gallra serve` instances) can share one PostgreSQL database."""
    logs.configure(load_settings().log_level)
    config = WorkerConfig(
        owner=worker_id(), concurrency=concurrency, lease_seconds=lease_seconds, poll_seconds=poll_seconds
    )
    typer.echo(f"gallra worker {config.owner} started", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_worker(config, drain, clocks))


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
