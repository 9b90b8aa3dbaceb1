"""A sweep's shipments at an e-mail carrier (PostNord), the whole chain: Shopify fake → live sweep in
several batches → executor → outbox. The carrier steps are fixed into groups when they are queued;
one e-mail per group names each of the group's shipments once, worded for an ended retention
period; the group's steps share its reference and are confirmed together; and the executor reads
a step's group, never the whole day's request."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from plugin import evidence
from plugin.executor.actions import confirm_step
from plugin.executor.shipments import shipment_steps, shipments_of
from plugin.holdings import Category, Holding
from plugin.models import Evidence, OutboxMessage, Request, Step, StepGroup, cell_of, utcnow
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.sweeps import groups, wiring
from plugin.sweeps.run import run_sweep
from tests.fakes.shopify import ShopifyFake
from tests.sweeps.shopdata import NOW, SHOP
from tests.sweeps.test_with_shopify import twelve_year_shop

# Small enough that the test shop's batches split into several groups each.
SMALL_GROUP = 4


def tracking_of(ref: str) -> str:
    return ref.split(":", 2)[2]


Ranges = list[tuple[str, int, int]]  # (system, first step id, last step id) of each group


def lead_of(step: Step, ranges: Ranges) -> int:
    """The first step id of the one group whose range holds the step."""
    (first,) = [f for system, f, last in ranges if system == step.system and f <= step.id <= last]
    return first


async def ranges_of(session: Any, request_id: int) -> Ranges:
    rows = await session.execute(
        select(StepGroup.system, StepGroup.first_step_id, StepGroup.last_step_id).where(
            StepGroup.request_id == request_id
        )
    )
    return [(system, first, last) for system, first, last in rows]


async def swept(runtime: Runtime) -> tuple[list[Step], dict[str, str], Ranges]:
    """The sweep request's PostNord steps, each outbox message's body by reference, and the
    request's groups."""
    async with runtime.db.session() as session:
        request = (await session.execute(select(Request).where(Request.kind == "sweep"))).scalar_one()
        steps = list(
            (
                await session.execute(
                    select(Step)
                    .where(Step.request_id == request.id, Step.system == "postnord")
                    .order_by(Step.id)
                )
            ).scalars()
        )
        messages = list(
            (await session.execute(select(OutboxMessage).where(OutboxMessage.shop_domain == SHOP))).scalars()
        )
        ranges = await ranges_of(session, request.id)
    return (
        steps,
        {m.reference: runtime.vault.decrypt(m.body_enc, cell_of(m, "body_enc")) or "" for m in messages},
        ranges,
    )


@pytest.fixture
async def sweep_run(
    runtime: Runtime, shopify_fake: ShopifyFake, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Step], dict[str, str], Ranges]:
    monkeypatch.setattr(groups, "GROUP_SIZE", SMALL_GROUP)
    await twelve_year_shop(runtime, shopify_fake)
    # Small batches: the request's shipment steps arrive over several transactions, as in a large
    # shop, and the worker runs the first ones before the rest are queued.
    report = await run_sweep(runtime, SHOP, now=NOW, batch_size=40)
    assert report["status"] == "done" and report["dry_run"] is False
    await Worker(runtime).drain(limit=120)
    return await swept(runtime)


async def test_each_swept_shipment_is_named_in_one_email_per_group_worded_for_the_sweep(
    sweep_run: tuple[list[Step], dict[str, str], Ranges],
) -> None:
    steps, bodies, ranges = sweep_run
    assert len(steps) >= 3 * SMALL_GROUP, "the test shop must give the sweep several PostNord groups"
    assert all(step.state == "awaiting_confirmation" for step in steps)
    by_group: dict[int, list[Step]] = defaultdict(list)
    for step in steps:
        by_group[lead_of(step, ranges)].append(step)
    assert 1 < len(by_group) < len(steps)

    # Every swept shipment is named in exactly one e-mail, and no e-mail names anything else.
    tracked = {tracking_of(step.holding_ref or "") for step in steps}
    named: Counter[str] = Counter()
    for body in bodies.values():
        named.update(t for t in tracked if t in body)
    assert named == Counter(dict.fromkeys(tracked, 1))
    assert len(bodies) <= len(by_group)

    for lead, members in by_group.items():
        # Fixed when queued: at most the group size, all queued in one batch, the range starting
        # at its first step.
        assert len(members) <= SMALL_GROUP
        assert len({m.created_at for m in members}) == 1
        assert min(m.id for m in members) == lead
        # One e-mail, one reference for the whole group, naming exactly its shipments.
        references = {m.provider_ref for m in members}
        assert len(references) == 1
        body = bodies[references.pop() or ""]
        assert f"Försändelser ({len(members)}):" in body
        assert all(tracking_of(m.holding_ref or "") in body for m in members)
    assert len({s.provider_ref for s in steps}) == len(by_group)

    # Worded for an ended retention period, never as if a customer had asked; no recipient named.
    for body in bodies.values():
        assert "lagringstid" in body and "artikel 5.1 e" in body and "17.1 a" in body
        assert "kund" not in body.lower() and "begärt" not in body
        assert "Mottagaren:" not in body


async def test_confirming_the_message_completes_every_step_of_its_group(
    runtime: Runtime, sweep_run: tuple[list[Step], dict[str, str], Ranges]
) -> None:
    steps, _, ranges = sweep_run
    by_group: dict[int, list[Step]] = defaultdict(list)
    for step in steps:
        by_group[lead_of(step, ranges)].append(step)
    group = max(by_group.values(), key=len)
    assert len(group) > 1
    chosen = group[-1]  # not the first: the group is found from any of its steps

    async with runtime.db.transaction() as session:
        await confirm_step(session, SHOP, chosen.id, "PostNord confirmed", vault=runtime.vault)

    after, _, _ = await swept(runtime)
    confirmed = {s.id for s in after if s.state == "done" and s.outcome == "confirmed"}
    assert confirmed == {s.id for s in group}
    assert all(s.state == "awaiting_confirmation" for s in after if s.id not in confirmed)
    async with runtime.db.session() as session:
        message = (
            await session.execute(select(OutboxMessage).where(OutboxMessage.reference == chosen.provider_ref))
        ).scalar_one()
        entries = list(
            (
                await session.execute(
                    select(Evidence).where(Evidence.shop_domain == SHOP, Evidence.kind == "step_confirmed")
                )
            ).scalars()
        )
        # Confirming again (another step of the same group) changes nothing.
        again = await confirm_step(session, SHOP, group[0].id, "again")
        assert again.state == "done"
    assert message.status == "confirmed"
    assert sorted(evidence.readable(e)["step"] for e in entries) == sorted(s.key for s in group)


@dataclass(frozen=True)
class PlanDecision:
    holding: Holding
    action: str = "erase"
    keep_until: date | None = None
    rule_id: str | None = "SH-1"
    reference: str | None = None
    reason_sv: str = "lagringstiden har löpt ut"
    reason_en: str = "the retention period has ended"
    reduce_fields: Any = ()


def shipment_decisions(first: int, count: int) -> list[PlanDecision]:
    return [
        PlanDecision(
            Holding(
                system="postnord",
                category=Category.SHIPMENT,
                ref=f"shipment:{n}:RR{n:09d}SE",
                label=f"Shipment RR{n:09d}SE of order #{n}",
                delivered=date(2023, 1, 1) + timedelta(days=n % 300),
            )
        )
        for n in range(first, first + count)
    ]


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the test's database runs while the list is being recorded."""
    seen: list[tuple[str, Any]] = []
    engine = runtime.db.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def test_shipment_steps_reads_the_group_however_large_the_request(
    runtime: Runtime, statements: list[tuple[str, Any]]
) -> None:
    """2,000 shipment steps queued in two batches (one of 1,400, one of 600): each step reads its
    group's rows by primary key, never the request's; more steps in the request read no more."""
    async with runtime.db.transaction() as session:
        request = Request(
            shop_domain=SHOP,
            kind="sweep",
            business_key="sweep:2026-11-22",
            due_at=utcnow() + timedelta(days=30),
            status="in_progress",
        )
        session.add(request)
        await session.flush()
        request_id = request.id
        first = await wiring.enqueue(session, request, shipment_decisions(1, 1400))
        second = await wiring.enqueue(session, request, shipment_decisions(1401, 600))
    created = [*first, *second]  # type: ignore[misc]
    assert len(created) == 2000

    async with runtime.db.session() as session:
        steps = list(
            (
                await session.execute(select(Step).where(Step.request_id == request_id).order_by(Step.id))
            ).scalars()
        )
        ranges = await ranges_of(session, request_id)
    sizes = Counter(lead_of(s, ranges) for s in steps)
    # Each batch split evenly under the limit: 1,400 -> 467 + 467 + 466, 600 -> 300 + 300.
    assert sorted(sizes.values()) == [300, 300, 466, 467, 467]

    for probe in (steps[0], steps[1], steps[700], steps[1399], steps[1400], steps[-1]):
        async with runtime.db.session() as session:
            step = await session.get(Step, probe.id)
            assert step is not None
            statements.clear()
            read = await shipment_steps(session, step, sweep=True)
            ran = list(statements)
        group = sizes[lead_of(probe, ranges)]
        assert sorted(s.id for s in read) == sorted(
            s.id for s in steps if lead_of(s, ranges) == lead_of(probe, ranges)
        )
        # The group's range, then its steps by that id range (the request index ends with the id),
        # with a constant number of bound values whatever the size of the request.
        assert len(ran) == 2
        assert "FROM step_groups" in ran[0][0]
        assert "steps.id BETWEEN" in ran[1][0]
        assert all(len(parameters) <= 8 for _statement, parameters in ran)
        assert len(read) == group <= groups.GROUP_SIZE
        assert len(shipments_of(read)) == group
