"""Many workers, duplicate and concurrent requests: each erasure runs once, the chain holds."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.holdings import Holding, Subject
from plugin.ledger import NewRequest, insert_request
from plugin.models import Evidence, Request, Step
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.executor.conftest import fast_config
from tests.executor.doubles import SHOP, FakeSources, Ledger, RecordingAdapter, add_request, add_shop


class PerSubjectNewsletter(RecordingAdapter):
    """Holds one profile per subject, named after the subject's customer e-mail."""

    async def find(self, subject: Subject) -> list[Holding]:
        from tests.executor.doubles import newsletter_holding

        held = newsletter_holding(f"profile:{subject.email}")
        return [] if self.ledger.gone(self.name, held.ref) else [held]

    async def erase(self, subject: Subject, holding: Holding) -> object:  # type: ignore[override]
        await asyncio.sleep(0.005)  # let the other worker run meanwhile
        return await super().erase(subject, holding)


async def test_two_workers_on_postgres_run_each_step_once(pg_db: Database) -> None:
    ledger = Ledger()
    runtimes = []
    for _ in range(2):
        db = Database(pg_db.url)  # each worker its own engine and connections, as two processes
        import httpx

        runtimes.append(
            Runtime(
                settings=make_settings(pg_db.url),
                db=db,
                vault=Vault(TEST_ENCRYPTION_KEY),
                http=httpx.AsyncClient(),
            )
        )
    await add_shop(runtimes[0])
    ids = [await add_request(runtimes[0], email=f"c{i}@example.se", key=f"k{i}") for i in range(30)]
    workers = []
    for n, runtime in enumerate(runtimes):
        sources = FakeSources(runtime, ledger)
        sources.enabled = [PerSubjectNewsletter]
        workers.append(Worker(runtime, fast_config(f"w{n}", concurrency=6), sources))
    await asyncio.gather(*(w.drain(limit=60, settle=0.2) for w in workers))

    assert ledger.erasures() == {f"profile:c{i}@example.se": 1 for i in range(30)}
    async with pg_db.session() as session:
        statuses = (await session.execute(select(Request.status).where(Request.id.in_(ids)))).scalars().all()
        done_entries = await session.scalar(
            select(func.count())
            .select_from(Evidence)
            .where(Evidence.kind == "step_done", Evidence.payload["system"].as_string() == "newsletter")
        )
        owners = (await session.execute(select(func.count(Step.id)).where(Step.attempts > 1))).scalar_one()
        chain = await evidence.verify(session, SHOP)
    assert set(statuses) == {"done"}
    assert done_entries == 30
    assert owners == 0  # no step was claimed twice
    assert chain.ok, chain.reason
    assert all(w.completed > 0 for w in workers)  # both took part
    for runtime in runtimes:
        await runtime.http.aclose()
        await runtime.db.dispose()


async def test_duplicate_webhook_is_one_request(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        new = NewRequest(
            kind="customer_redact", shop_domain=SHOP, business_key="7:1001", customer_id=7, email="a@b.se"
        )
        first = await insert_request(session, runtime.vault, new)
        again = await insert_request(session, runtime.vault, new)
    assert first is not None and again is None


async def test_concurrent_requests_for_one_subject_erase_idempotently(
    runtime: Runtime, worker: Worker, sources: FakeSources, ledger: Ledger
) -> None:
    """Two different requests about the same customer (say a redact for two order sets) each get
    their own steps; the adapter's erase is safe to call twice and both requests finish."""
    sources.enabled = [PerSubjectNewsletter]
    a = await add_request(runtime, key="a", orders=[1])
    b = await add_request(runtime, key="b", orders=[2])
    second = Worker(runtime, fast_config("w2"), sources)
    await asyncio.gather(worker.drain(limit=30), second.drain(limit=30))
    async with runtime.db.session() as session:
        statuses = (
            (await session.execute(select(Request.status).where(Request.id.in_([a, b])))).scalars().all()
        )
        chain = await evidence.verify(session, SHOP)
    assert list(statuses) == ["done", "done"]
    assert ledger.erasures() == {"profile:anna@example.se": 2}
    assert chain.ok
