"""Clocks: each periodic effect once across instances; the deadline watch; background() drains."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from plugin import clocks
from plugin.models import Evidence, Request, utcnow
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.conftest import fast_config
from tests.executor.doubles import SHOP, FakeSources, Ledger, add_request, newsletter_holding


async def test_claim_once_per_key_even_when_fired_together(runtime: Runtime) -> None:
    results = await asyncio.gather(
        *(clocks.claim_once(runtime, "deadline:2026-11-22T10:00") for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]


async def test_deadline_watch_flags_once(runtime: Runtime, worker: Worker) -> None:
    near = await add_request(runtime, key="near")
    far = await add_request(runtime, key="far")
    async with runtime.db.transaction() as session:
        for request_id, days in ((near, 5), (far, 20)):
            request = await session.get(Request, request_id)
            assert request is not None
            request.due_at = utcnow() + timedelta(days=days)
    now = utcnow()
    assert await clocks.watch_deadlines(runtime, now) == 1
    assert await clocks.watch_deadlines(runtime, now) == 0  # another instance, same hour
    assert await clocks.watch_deadlines(runtime, now + timedelta(hours=1)) == 0  # flagged already
    async with runtime.db.session() as session:
        flagged = (
            await session.execute(select(Request.id).where(Request.deadline_flagged_at.is_not(None)))
        ).scalars()
        warnings = (
            await session.execute(select(Evidence.request_id).where(Evidence.kind == "deadline_warning"))
        ).scalars()
        assert list(flagged) == [near] and list(warnings) == [near]


async def test_background_runs_worker_and_wakes_on_intake(
    runtime: Runtime, sources: FakeSources, ledger: Ledger, worker: Worker
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    async with clocks.background(
        runtime, config=fast_config(poll_seconds=30.0), sources=sources, jobs=clocks.JOBS[:3]
    ):
        await asyncio.sleep(0.1)
        request_id = await add_request(runtime)
        runtime.work_available.set()  # what intake does after its commit
        for _ in range(100):
            async with runtime.db.session() as session:
                request = await session.get(Request, request_id)
                assert request is not None
                if request.status == "done":
                    break
            await asyncio.sleep(0.05)
    assert request is not None and request.status == "done"
    assert ledger.erasures() == {"profile:1": 1}
    assert SHOP
