"""`Worker.drain` returns only when nothing is due: a job that finishes while a claim is looking
must not leave the work it made due (a request's last step sets it `finalizing`) behind."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from plugin.executor.leases import claim_requests
from plugin.models import Request
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.doubles import FakeSources, add_request, newsletter_holding


async def test_a_step_finishing_during_a_claim_is_followed_by_its_finalising(
    runtime: Runtime, worker: Worker, sources: FakeSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    late = 0

    async def claim_then_let_jobs_finish(
        session: AsyncSession, owner: str, now: datetime, *, limit: int, lease_seconds: float
    ) -> list[int]:
        # The claim looks first; the jobs in flight (the request's one step) finish right after,
        # before `fill` returns: the order the race needs, every time.
        nonlocal late
        claimed = await claim_requests(session, owner, now, limit=limit, lease_seconds=lease_seconds)
        if worker._tasks:
            late += 1
            await asyncio.gather(*list(worker._tasks), return_exceptions=True)
        return claimed

    monkeypatch.setattr("plugin.pipelines.worker.claim_requests", claim_then_let_jobs_finish)
    await worker.drain(limit=20)

    assert late, "the claim never overlapped a job: the test did not set up the race"
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
    assert request is not None and request.status == "done"
