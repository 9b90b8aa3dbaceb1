"""The worker loop: keep up to `concurrency` claims in flight, claim more as slots free, sleep
until woken (intake's `work_available`, a clock tick) or the poll interval passes.

Used inside `gallra serve` (through `plugin.clocks.background`) and by `gallra worker`. `drain()`
runs until nothing is due, for tests, the CLI's `--drain` and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable
from datetime import timedelta

from plugin.executor.context import ExecContext, Sources, WorkerConfig
from plugin.executor.leases import claim_requests, claim_steps, release
from plugin.pipelines.run import run_claimed_step, work_on_request
from plugin.pipelines.sources import LiveSources
from plugin.runtime import Runtime

log = logging.getLogger("gallra.executor")

RELEASE_DELAY = timedelta(seconds=2)


class Worker:
    def __init__(
        self, runtime: Runtime, config: WorkerConfig | None = None, sources: Sources | None = None
    ) -> None:
        self.ctx = ExecContext(runtime, sources or LiveSources(runtime), config or WorkerConfig())
        self._tasks: set[asyncio.Task[None]] = set()
        self.completed = 0

    @property
    def config(self) -> WorkerConfig:
        return self.ctx.config

    async def _claim(self, slots: int) -> list[tuple[str, int]]:
        now = self.config.clock()
        config = self.config
        async with self.ctx.runtime.db.transaction() as session:
            requests = await claim_requests(
                session, config.owner, now, limit=slots, lease_seconds=config.lease_seconds
            )
        jobs = [("request", r) for r in requests]
        if len(jobs) < slots:
            async with self.ctx.runtime.db.transaction() as session:
                steps = await claim_steps(
                    session, config.owner, now, limit=slots - len(jobs), lease_seconds=config.lease_seconds
                )
            jobs.extend(("step", s) for s in steps)
        return jobs

    def _start(self, kind: str, row_id: int) -> None:
        job: Awaitable[None] = (
            work_on_request(self.ctx, row_id) if kind == "request" else run_claimed_step(self.ctx, row_id)
        )

        async def guarded() -> None:
            try:
                await job
            except Exception as exc:
                # A bug or a database hiccup in one job must not stop the worker. The work is
                # handed back at once (its lease would otherwise hold it until it ends).
                # Where it failed, without the exception's message: that may quote a statement's
                # values or a provider URL, which can hold personal data.
                log.error(
                    "worker job on %s %d failed with %s\n%s",
                    kind,
                    row_id,
                    type(exc).__name__,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                await self._release(kind, row_id)
            finally:
                self.completed += 1

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _release(self, kind: str, row_id: int) -> None:
        try:
            async with self.ctx.runtime.db.transaction() as session:
                await release(session, kind, row_id, self.config.owner, self.config.clock() + RELEASE_DELAY)
        except Exception as exc:  # the database is still unreachable: the lease will end anyway
            log.warning("could not hand %s %d back (%s); its lease will", kind, row_id, type(exc).__name__)

    async def fill(self) -> int:
        """Claim work for the free slots; the number of jobs started."""
        slots = self.config.concurrency - len(self._tasks)
        if slots <= 0:
            return 0
        jobs = await self._claim(slots)
        for kind, row_id in jobs:
            self._start(kind, row_id)
        return len(jobs)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Work until `stop` is set; in-flight jobs are finished before returning."""
        stop = stop or asyncio.Event()
        wake = self.ctx.runtime.work_available
        while not stop.is_set():
            wake.clear()  # before claiming, so a wake-up during the claim is not lost
            try:
                started = await self.fill()
            except Exception as exc:  # the database may be briefly unreachable
                log.warning("claiming failed (%s); retrying", type(exc).__name__)
                started = 0
            if started:
                continue
            waiters: set[asyncio.Future[object]] = {
                asyncio.ensure_future(wake.wait()),
                asyncio.ensure_future(stop.wait()),
            }
            if self._tasks:
                waiters.add(
                    asyncio.ensure_future(asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED))
                )
            _, pending = await asyncio.wait(
                waiters, timeout=self.config.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        await self.wait_idle()

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def drain(self, *, limit: float = 60.0, settle: float = 0.0) -> None:
        """Run until nothing is due and nothing is in flight (work due later is left for later)."""

        async def loop() -> None:
            while True:
                # A job that finishes while `fill` is claiming may make work due (its request's
                # last step sets it `finalizing`) after the claim looked: only a fill that began
                # with nothing in flight can say that nothing is due.
                was_busy = bool(self._tasks)
                if await self.fill():
                    continue
                if self._tasks:
                    await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                    continue
                if was_busy:
                    continue
                if settle:
                    await asyncio.sleep(settle)
                    if await self.fill():
                        continue
                return

        await asyncio.wait_for(loop(), limit)
