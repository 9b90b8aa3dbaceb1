"""A `reduce` decision is carried out as `Adapter.reduce` with the decision's fields, never as an
erasure: the outcome, what went and what the provider still holds reach the step and the evidence;
an adapter that cannot reduce fails the step visibly; a dry run only says what it would reduce."""

from __future__ import annotations

from sqlalchemy import select

from plugin import evidence
from plugin.holdings import Category, Holding
from plugin.models import Step
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.conftest import fast_config
from tests.executor.doubles import (
    MK1_FIELDS,
    SHOP,
    FakeSources,
    Ledger,
    RecordingAdapter,
    add_request,
    add_shop,
    request_row,
    steps_of,
)

SUPPRESSED = Holding(
    "newsletter", Category.NEWSLETTER, "profile:1", "Newsletter profile 1", flags=frozenset({"suppress"})
)
KEY = "newsletter:reduce:profile:1"


async def test_reduce_decision_calls_reduce_with_its_fields_and_never_erase(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.holdings["newsletter"] = [SUPPRESSED]
    request_id = await add_request(runtime)

    await worker.drain(limit=20)

    assert ledger.count("reduce", "newsletter") == {"profile:1": 1}
    assert ledger.erasures("newsletter") == {}
    assert ledger.reduced_fields == [tuple(sorted(MK1_FIELDS))]  # the step's fields, as stored
    step = (await steps_of(runtime, request_id))[KEY]
    assert (step.state, step.outcome, step.provider_ref) == ("done", "reduced", "job-profile:1")
    assert step.decision["removed"] == ["address", "name", "phone", "profile_properties"]
    assert step.decision["still_held"] == ["activity_history"]
    assert step.decision["keep_until"] == "2029-11-22" and step.decision["rule_id"] == "MK-1-SUPPRESSION"
    assert (await request_row(runtime, request_id)).status == "done"
    async with runtime.db.session() as session:
        done = [
            evidence.readable(e)
            for e in await evidence.entries(session, SHOP, request_id)
            if e.kind == "step_done" and evidence.readable(e).get("step") == KEY
        ]
        assert (await evidence.verify(session, SHOP)).ok
    (record,) = done
    assert record["action"] == "reduce" and record["outcome"] == "reduced"
    assert record["reduce_fields"] == sorted(MK1_FIELDS)
    assert record["removed"] == ["address", "name", "phone", "profile_properties"]
    assert record["still_held"] == ["activity_history"]
    assert record["keep_until"] == "2029-11-22" and record["rule_id"] == "MK-1-SUPPRESSION"
    assert record["detail"] == "suppressed; fields cleared"


class CannotReduce(RecordingAdapter):
    name = "newsletter"
    can_reduce = False


async def test_an_adapter_that_cannot_reduce_fails_the_step_and_erases_nothing(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    sources.enabled = [CannotReduce]
    sources.holdings["newsletter"] = [SUPPRESSED]
    request_id = await add_request(runtime)

    await worker.drain(limit=20)

    step = (await steps_of(runtime, request_id))[KEY]
    assert step.state == "failed" and step.attempts == 1  # permanent: not retried
    assert step.last_error is not None and step.last_error.startswith("newsletter: cannot reduce")
    assert "not erased instead" in step.last_error
    assert ledger.count("reduce") == {} and ledger.erasures() == {}
    assert (await request_row(runtime, request_id)).status == "failed"


async def test_dry_run_says_would_reduce_and_calls_nobody(
    runtime: Runtime, sources: FakeSources, ledger: Ledger
) -> None:
    await add_shop(runtime, "dry.myshopify.com", dry_run=True)
    sources.holdings["newsletter"] = [SUPPRESSED]
    request_id = await add_request(runtime, domain="dry.myshopify.com")

    await Worker(runtime, fast_config(), sources).drain(limit=20)

    async with runtime.db.session() as session:
        step = (
            await session.execute(select(Step).where(Step.request_id == request_id, Step.key == KEY))
        ).scalar_one()
    assert (step.state, step.outcome) == ("skipped", "would_reduce")
    assert ledger.count("reduce") == {} and ledger.erasures() == {}
