"""The cost of queueing and running one step does not grow with the request: a sweep request of
100,000 steps must cost per step what a customer's request of three does. Measured, for a request
of 10 and of 1,000 steps, as the SQL statements sent (SQLAlchemy's `before_cursor_execute`) and the
rows the session's SELECTs return (`do_orm_execute`): reading every step key or every sibling step
is one statement either way, but 1,000 rows instead of 10."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Result, event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from plugin import evidence
from plugin.executor.context import ExecContext
from plugin.executor.dispatch import run_step
from plugin.holdings import Category, Holding
from plugin.models import Request, Step, utcnow
from plugin.pipelines.enqueue import enqueue_plan
from plugin.runtime import Runtime
from tests.executor.conftest import fast_config
from tests.executor.doubles import (
    SHOP,
    Decision,
    FakeSources,
    Ledger,
    add_request,
    add_shop,
    newsletter_holding,
)

SIZES = (10, 1000)


@dataclass
class Cost:
    statements: int = 0
    rows: int = 0


@contextlib.contextmanager
def counted(runtime: Runtime) -> Iterator[Cost]:
    """The SQL statements the runtime's engine sends, and the rows ORM SELECTs return, while the
    block runs."""
    cost = Cost()

    def on_statement(*args: Any) -> None:
        cost.statements += 1

    def on_orm(state: ORMExecuteState) -> Result[Any] | None:
        if not state.is_select:
            return None
        frozen = state.invoke_statement().freeze()
        cost.rows += len(frozen().all())
        return frozen()

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(Session, "do_orm_execute", on_orm)
    try:
        yield cost
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(Session, "do_orm_execute", on_orm)


def erase(holding: Holding) -> Decision:
    return Decision(holding, "erase", None, "SE-3", "GDPR Art. 5", "Radering", "Erasure")


def shipment(order_id: int) -> Holding:
    return Holding(
        "postnord", Category.SHIPMENT, f"shipment:{order_id}:TRK{order_id}", f"Shipment #{order_id}"
    )


async def sweep_request(runtime: Runtime, size: int) -> int:
    """A sweep request already holding `size` pending steps: newsletter profiles, three shipments
    (which every carrier step reads, as the subject's shipments), one Shopify customer erasure and
    one Shopify order erasure it covers."""
    request_id = await add_request(runtime, "sweep", key=f"sweep:{size}")
    holdings = [newsletter_holding(f"profile:{i}") for i in range(size - 5)]
    holdings += [shipment(i) for i in range(3)]
    holdings += [
        Holding("shopify", Category.CUSTOMER_ACCOUNT, "customer:7", "Customer 7"),
        Holding("shopify", Category.ACCOUNTING_RECORD, "order:1", "Order #1"),
    ]
    async with runtime.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        created = await enqueue_plan(session, request, [erase(h) for h in holdings], dry_run=False)
    assert len(created) == size
    return request_id


async def step_count(runtime: Runtime, request_id: int) -> int:
    async with runtime.db.session() as session:
        found = await session.execute(
            select(func.count()).select_from(Step).where(Step.request_id == request_id)
        )
        return int(found.scalar_one())


async def test_enqueue_plan_costs_the_same_whatever_the_request_holds(runtime: Runtime) -> None:
    await add_shop(runtime)
    costs = []
    for size in SIZES:
        request_id = await sweep_request(runtime, size)
        # A batch of 20 holdings of which 5 the request already has (a resumed sweep).
        batch = [erase(newsletter_holding(f"profile:{i}")) for i in range(5)]
        batch += [erase(newsletter_holding(f"new:{i}")) for i in range(15)]
        async with runtime.db.transaction() as session:
            request = await session.get(Request, request_id)
            assert request is not None
            with counted(runtime) as cost:
                created = await enqueue_plan(session, request, batch, dry_run=False)
            costs.append(cost)
        # Only the new keys were added, in the plan's order, each pending and due.
        assert [s.holding_ref for s in created] == [f"new:{i}" for i in range(15)]
        assert all(s.state == "pending" and s.next_attempt_at is not None for s in created)
        assert await step_count(runtime, request_id) == size + 15
        # The same batch again adds nothing.
        async with runtime.db.transaction() as session:
            request = await session.get(Request, request_id)
            assert request is not None
            assert await enqueue_plan(session, request, batch, dry_run=False) == []
        assert await step_count(runtime, request_id) == size + 15
    assert costs[0] == costs[1], f"per enqueue: {dict(zip(SIZES, costs, strict=True))}"


async def claim(runtime: Runtime, request_id: int, ref: str, owner: str) -> int:
    """Lease one step of the request to `owner`, as `claim_steps` would."""
    async with runtime.db.transaction() as session:
        step_id = (
            await session.execute(
                select(Step.id).where(Step.request_id == request_id, Step.holding_ref == ref)
            )
        ).scalar_one()
        await session.execute(
            update(Step)
            .where(Step.id == step_id)
            .values(
                state="running",
                lease_owner=owner,
                lease_expires_at=utcnow() + timedelta(seconds=60),
                attempts=Step.attempts + 1,
            )
        )
    return step_id


async def test_running_a_step_costs_the_same_whatever_the_request_holds(runtime: Runtime) -> None:
    await add_shop(runtime)
    async with runtime.db.transaction() as session:
        # The shop's evidence chain has a head from the start, as it has after its first request.
        await evidence.append(session, SHOP, "chain_started", {})
    ledger = Ledger()
    ctx = ExecContext(runtime, FakeSources(runtime, ledger), fast_config())
    costs: dict[str, list[Cost]] = {"adapter": [], "covered": []}
    for size in SIZES:
        request_id = await sweep_request(runtime, size)
        for path, ref in (("adapter", "profile:0"), ("covered", "order:1")):
            step_id = await claim(runtime, request_id, ref, ctx.config.owner)
            with counted(runtime) as cost:
                await run_step(ctx, step_id)
            costs[path].append(cost)
            async with runtime.db.session() as session:
                step = await session.get(Step, step_id)
                request = await session.get(Request, request_id)
                assert step is not None and request is not None
                # A covered step is verified with the step that covers it, so it waits for that.
                assert step.state == ("verifying" if path == "covered" else "done")
                assert request.status == "in_progress"  # every other step is still pending
                if path == "covered":
                    assert step.outcome == "erase_requested"
                    assert step.last_error is None
    assert ledger.erasures() == {"profile:0": 2}
    for path, (small, large) in costs.items():
        assert small == large, f"per {path} step: {small} at {SIZES[0]} steps, {large} at {SIZES[1]}"
