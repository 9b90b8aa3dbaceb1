"""Failures: backoff and Retry-After, the terminal `failed` state, retrying from the failed step,
dry-run shops, leases that run out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from adapters.base import PermanentFailure, RateLimited, TemporaryFailure
from plugin.executor.actions import StepStateError, retry_request, retry_step
from plugin.executor.context import ExecContext
from plugin.executor.dispatch import run_step
from plugin.executor.leases import claim_steps, reclaim_expired
from plugin.executor.outcomes import record_failure
from plugin.models import Request, Step, utcnow
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.conftest import Clock, fast_config
from tests.executor.doubles import SHOP, FakeSources, Ledger, add_request, add_shop, newsletter_holding


async def only_step(runtime: Runtime, request_id: int, key: str) -> Step:
    async with runtime.db.session() as session:
        step = (
            await session.execute(select(Step).where(Step.request_id == request_id, Step.key == key))
        ).scalar_one()
        return step


async def status(runtime: Runtime, request_id: int) -> str:
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        return request.status


KEY = "newsletter:erase:profile:1"


async def test_temporary_failures_back_off_then_succeed_once(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    ledger.failures["profile:1"] = [
        TemporaryFailure("newsletter", "HTTP 503"),
        TemporaryFailure("newsletter", "x"),
    ]
    request_id = await add_request(runtime)
    await worker.drain(limit=20, settle=0.3)
    step = await only_step(runtime, request_id, KEY)
    assert (step.state, step.attempts, step.last_error) == ("done", 3, None)
    assert ledger.erasures() == {"profile:1": 1}
    assert await status(runtime, request_id) == "done"


async def test_retry_after_is_honoured(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    ledger.failures["profile:1"] = [RateLimited("newsletter", "HTTP 429", retry_after=120.0)]
    request_id = await add_request(runtime)
    before = utcnow()
    await worker.drain(limit=20)
    step = await only_step(runtime, request_id, KEY)
    assert step.state == "pending" and step.attempts == 1
    assert step.next_attempt_at is not None and step.next_attempt_at >= before + timedelta(seconds=119)
    assert ledger.erasures() == {}
    assert await status(runtime, request_id) == "in_progress"


async def test_permanent_failure_is_visible_and_retry_resumes_from_it(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding("profile:1"), newsletter_holding("profile:2")]
    ledger.failures["profile:2"] = [PermanentFailure("newsletter", "HTTP 400 invalid")]
    request_id = await add_request(runtime)
    await worker.drain(limit=20)
    failed = await only_step(runtime, request_id, "newsletter:erase:profile:2")
    assert failed.state == "failed" and failed.last_error == "newsletter: HTTP 400 invalid"
    assert await status(runtime, request_id) == "failed"
    assert ledger.erasures() == {"profile:1": 1}

    async with runtime.db.transaction() as session:
        with pytest.raises(StepStateError):
            await retry_step(
                session, SHOP, (await only_step(runtime, request_id, "newsletter:erase:profile:1")).id
            )
    async with runtime.db.transaction() as session:
        await retry_step(session, SHOP, failed.id)
    assert await status(runtime, request_id) == "in_progress"
    await worker.drain(limit=20)
    assert ledger.erasures() == {"profile:1": 1, "profile:2": 1}  # the done step was not run again
    assert await status(runtime, request_id) == "done"


async def test_attempts_run_out_into_failed(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    ledger.failures["profile:1"] = [TemporaryFailure("newsletter", "HTTP 502") for _ in range(10)]
    request_id = await add_request(runtime)
    # Plan, and fail the step once: with this worker's backoff its retry is half a minute away or
    # more, so exactly one attempt is spent however slow the machine is.
    await Worker(runtime, fast_config(backoff_base=60.0, backoff_cap=60.0), sources).drain(limit=20)
    assert (await only_step(runtime, request_id, KEY)).attempts == 1
    async with runtime.db.transaction() as session:
        await session.execute(update(Step).values(max_attempts=3, next_attempt_at=utcnow()))
    await worker.drain(limit=20, settle=0.3)
    step = await only_step(runtime, request_id, KEY)
    assert (step.state, step.attempts) == ("failed", 3)
    assert await status(runtime, request_id) == "failed"
    async with runtime.db.transaction() as session:
        await retry_request(session, SHOP, request_id)
    ledger.failures["profile:1"] = []
    await worker.drain(limit=20)
    assert await status(runtime, request_id) == "done"


async def test_dry_run_shop_records_would_do_and_sends_nothing(
    runtime: Runtime, sources: FakeSources, ledger: Ledger
) -> None:
    await add_shop(runtime, dry_run=True)
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    await Worker(runtime, fast_config(), sources).drain(limit=20)
    step = await only_step(runtime, request_id, KEY)
    assert (step.state, step.outcome) == ("skipped", "would_erase")
    assert ledger.erasures() == {}
    assert await status(runtime, request_id) == "done"
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.dry_run
        # Even the app's own copy of the e-mail is only "would erase" in a dry run.
        assert request.email_enc is not None


async def test_expired_lease_is_taken_over_and_the_old_owner_cannot_overwrite(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    # Plan only: claim and plan the request, then stop before steps run.
    await worker.fill()
    await worker.wait_idle()
    now = utcnow()
    async with runtime.db.transaction() as session:
        first = await claim_steps(session, "dead-worker", now, limit=10, lease_seconds=0.01)
    assert len(first) == 1
    async with runtime.db.transaction() as session:
        assert await claim_steps(session, "other", now, limit=10, lease_seconds=30) == []
    later = now + timedelta(seconds=1)
    async with runtime.db.transaction() as session:
        assert await reclaim_expired(session, later) == (1, 0)
    async with runtime.db.transaction() as session:
        assert await claim_steps(session, "other", later, limit=10, lease_seconds=30) == first
    dead = ExecContext(runtime, sources, fast_config("dead-worker"))
    await record_failure(dead, first[0], "late failure report", retryable=False)
    step = await only_step(runtime, request_id, KEY)
    assert (step.state, step.lease_owner, step.attempts) == ("running", "other", 2)


async def test_a_crashing_job_is_handed_back_at_once(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database hiccup inside a job (here: the first step run raises) does not leave the step
    leased until its lease ends: it is released and runs again a moment later."""
    import plugin.pipelines.run as run_module
    import plugin.pipelines.worker as worker_module

    real = run_step
    crashes: list[int] = []

    async def flaky(ctx: ExecContext, step_id: int) -> bool:
        if not crashes:
            crashes.append(step_id)
            raise ConnectionResetError("database went away")
        return await real(ctx, step_id)

    monkeypatch.setattr(run_module, "run_step", flaky)
    sources.holdings["newsletter"] = [newsletter_holding()]
    request_id = await add_request(runtime)
    clock = Clock()
    worker = Worker(runtime, fast_config(clock=clock), sources)
    await worker.drain(limit=20)
    step = await only_step(runtime, request_id, KEY)
    assert step.state == "pending" and step.lease_owner is None  # handed back, not left leased
    clock.advance(worker_module.RELEASE_DELAY)  # "a moment later", on the worker's clock
    await worker.drain(limit=20)
    step = await only_step(runtime, request_id, KEY)
    assert crashes == [step.id]
    assert (step.state, step.attempts) == ("done", 2)
    assert ledger.erasures() == {"profile:1": 1}
    assert await status(runtime, request_id) == "done"
