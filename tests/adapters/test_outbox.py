"""The e-mail outbox on SQLite and PostgreSQL: encrypted at rest, idempotent per step and per
dedupe key, delivered over real SMTP (a local sink) with retries, reminded, confirmed; shops isolated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import OutboxMessage, cell_of, utcnow
from plugin.outbox import Outbox, deliver_queued, list_messages, mark_confirmed, send_reminders
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings
from tests.fakes.smtp import SmtpSink

SHOP_A = "butik-a.myshopify.com"
SHOP_B = "butik-b.myshopify.com"
DPO = "dataprotectionofficer@postnord.com"


def build_runtime(db: Database, **settings: Any) -> Runtime:
    return Runtime(
        settings=make_settings(db.url, **settings),
        db=db,
        vault=Vault(TEST_ENCRYPTION_KEY),
        http=httpx.AsyncClient(),
    )


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[Runtime]:
    rt = build_runtime(db)
    yield rt
    await rt.http.aclose()


async def queue(runtime: Runtime, shop: str = SHOP_A, step_id: int | None = 1, **kwargs: Any) -> str:
    outbox = Outbox(runtime, shop, step_id=step_id, reply_to="owner@butik-a.se")
    return await outbox.send(
        to=DPO, subject="Begäran, ref. {reference}", body="Hej anna@example.se, ref {reference}", **kwargs
    )


async def rows(runtime: Runtime) -> list[OutboxMessage]:
    async with runtime.db.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_queued_message_is_encrypted_at_rest(runtime: Runtime) -> None:
    reference = await queue(runtime)

    assert reference.startswith("GAL-")
    async with runtime.db.session() as session:
        raw = (
            await session.execute(text("SELECT to_enc, subject_enc, body_enc, reply_to_enc FROM outbox"))
        ).one()
    assert not any("@" in column for column in raw)
    (row,) = await rows(runtime)
    assert runtime.vault.decrypt(row.to_enc, cell_of(row, "to_enc")) == DPO
    assert (
        runtime.vault.decrypt(row.body_enc, cell_of(row, "body_enc"))
        == f"Hej anna@example.se, ref {reference}"
    )
    assert runtime.vault.decrypt(row.subject_enc, cell_of(row, "subject_enc")) == f"Begäran, ref. {reference}"
    assert row.status == "queued"


async def test_a_retried_step_never_queues_a_second_e_mail(runtime: Runtime) -> None:
    first = await queue(runtime, step_id=41)
    second = await queue(runtime, step_id=41)

    assert first == second
    assert len(await rows(runtime)) == 1


async def test_concurrent_sends_of_one_step_make_one_message(runtime: Runtime) -> None:
    references = await asyncio.gather(*(queue(runtime, step_id=42) for _ in range(4)))

    assert len(set(references)) == 1
    assert len(await rows(runtime)) == 1


async def test_steps_asking_the_same_thing_share_one_message(runtime: Runtime) -> None:
    first = await queue(runtime, step_id=1, dedupe_key="postnord:erase:7:shipment:1:A,shipment:2:B")
    second = await queue(runtime, step_id=2, dedupe_key="postnord:erase:7:shipment:1:A,shipment:2:B")
    other = await queue(runtime, step_id=3, dedupe_key="postnord:erase:8:shipment:3:C")

    assert first == second != other
    assert len(await rows(runtime)) == 2
    async with runtime.db.transaction() as session:
        await mark_confirmed(session, SHOP_A, first)
    later = await queue(runtime, step_id=4, dedupe_key="postnord:erase:7:shipment:1:A,shipment:2:B")
    assert later != first  # once confirmed, asking again is a new request
    assert all("postnord" not in (row.dedupe_hash or "") for row in await rows(runtime))  # keyed hash only


async def test_shops_are_isolated(runtime: Runtime) -> None:
    a = await queue(runtime, SHOP_A, step_id=5, dedupe_key="same")
    b = await queue(runtime, SHOP_B, step_id=5, dedupe_key="same")

    assert a != b
    async with runtime.db.transaction() as session:
        assert await mark_confirmed(session, SHOP_B, a) is None  # B cannot confirm A's message
        assert [m.reference for m in await list_messages(session, SHOP_A)] == [a]


async def test_delivery_over_smtp(db: Database, smtp_sink: SmtpSink) -> None:
    runtime = build_runtime(db, **smtp_sink.settings(), smtp_from="gallra@butik-a.se")
    reference = await queue(runtime)

    assert await deliver_queued(runtime) == 1

    (message,) = smtp_sink.messages
    assert message["To"] == DPO
    assert message["Reply-To"] == "owner@butik-a.se"
    assert message["From"] == "gallra@butik-a.se"
    assert message["Subject"] == f"Begäran, ref. {reference}"
    assert message["X-Gallra-Reference"] == reference
    assert reference in message.get_content()
    (row,) = await rows(runtime)
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    assert await deliver_queued(runtime) == 0  # sent once
    await runtime.http.aclose()


async def test_temporary_smtp_refusal_is_retried_later(db: Database, smtp_sink: SmtpSink) -> None:
    runtime = build_runtime(db, **smtp_sink.settings())
    await queue(runtime)
    smtp_sink.refuse_next(reply="451 4.3.0 Try again later")

    now = utcnow()
    assert await deliver_queued(runtime, now=now) == 0
    (row,) = await rows(runtime)
    assert row.status == "queued" and row.attempts == 1
    assert row.last_error == "SMTPDataError (SMTP 451)"  # no server text: it can quote addresses
    assert row.next_attempt_at is not None and row.next_attempt_at >= now

    assert await deliver_queued(runtime, now=now + timedelta(hours=2)) == 1
    assert len(smtp_sink.messages) == 1
    await runtime.http.aclose()


async def test_permanent_smtp_refusal_fails_the_message(db: Database, smtp_sink: SmtpSink) -> None:
    runtime = build_runtime(db, **smtp_sink.settings())
    await queue(runtime)
    smtp_sink.refuse_next(reply="550 5.1.1 Mailbox unavailable")

    assert await deliver_queued(runtime) == 0
    (row,) = await rows(runtime)
    assert row.status == "failed" and row.next_attempt_at is None
    await runtime.http.aclose()


async def test_nothing_is_sent_while_smtp_is_not_configured(runtime: Runtime) -> None:
    await queue(runtime)

    assert await deliver_queued(runtime) == 0
    assert (await rows(runtime))[0].status == "queued"


async def test_two_deliverers_at_once_send_each_message_once(runtime: Runtime) -> None:
    for step in range(5):
        await queue(runtime, step_id=step)
    sent: list[EmailMessage] = []

    def slow_sender(message: EmailMessage) -> None:
        sent.append(message)

    counts = await asyncio.gather(
        deliver_queued(runtime, sender=slow_sender), deliver_queued(runtime, sender=slow_sender)
    )

    assert sum(counts) == 5
    assert sorted(m["X-Gallra-Reference"] for m in sent) == sorted(r.reference for r in await rows(runtime))


async def test_reminders_after_the_set_days_at_most_twice(runtime: Runtime) -> None:
    reference = await queue(runtime)
    sent: list[EmailMessage] = []
    start = utcnow()
    await deliver_queued(runtime, now=start, sender=sent.append)

    assert await send_reminders(runtime, now=start + timedelta(days=13), sender=sent.append) == 0
    assert await send_reminders(runtime, now=start + timedelta(days=15), sender=sent.append) == 1
    assert await send_reminders(runtime, now=start + timedelta(days=16), sender=sent.append) == 0
    assert await send_reminders(runtime, now=start + timedelta(days=30), sender=sent.append) == 1
    assert await send_reminders(runtime, now=start + timedelta(days=60), sender=sent.append) == 0

    assert [m["Subject"].split(":")[0] for m in sent] == [
        "Begäran, ref. " + reference,
        "Reminder / Påminnelse (1)",
        "Reminder / Påminnelse (2)",
    ]
    assert reference in sent[1].get_content()


async def test_confirmed_messages_get_no_reminder(runtime: Runtime) -> None:
    reference = await queue(runtime, step_id=9)
    sent: list[EmailMessage] = []
    start = utcnow()
    await deliver_queued(runtime, now=start, sender=sent.append)

    async with runtime.db.transaction() as session:
        confirmed = await mark_confirmed(
            session, SHOP_A, reference.lower(), "PostNord ärende 123", vault=runtime.vault
        )
    assert confirmed is not None and confirmed.step_id == 9 and confirmed.status == "confirmed"
    assert await send_reminders(runtime, now=start + timedelta(days=20), sender=sent.append) == 0
    (row,) = await rows(runtime)
    assert row.note_enc and "123" not in row.note_enc
    assert runtime.vault.decrypt(row.note_enc, cell_of(row, "note_enc")) == "PostNord ärende 123"


async def test_confirm_by_step_id_is_idempotent(runtime: Runtime) -> None:
    await queue(runtime, step_id=77)

    async with runtime.db.transaction() as session:
        first = await mark_confirmed(session, SHOP_A, 77)
        assert first is not None
        when = first.confirmed_at
        again = await mark_confirmed(session, SHOP_A, "77")
    assert again is not None and again.confirmed_at == when


async def test_confirming_a_step_that_shared_its_message_confirms_that_message(runtime: Runtime) -> None:
    from plugin.models import Request, Step

    key = "postnord:erase:7:shipment:1:A,shipment:2:B"
    first = await queue(runtime, step_id=None, dedupe_key=key)  # the sibling step's message
    async with runtime.db.transaction() as session:
        request = Request(shop_domain=SHOP_A, kind="customer_redact", business_key="c7", due_at=utcnow())
        session.add(request)
        await session.flush()
        step = Step(
            request_id=request.id,
            shop_domain=SHOP_A,
            key="postnord:erase:2",
            system="postnord",
            action="erase",
        )
        session.add(step)
        await session.flush()
        step_id = step.id
    shared = await queue(runtime, step_id=step_id, dedupe_key=key)
    assert shared == first
    async with runtime.db.transaction() as session:
        (await session.get(Step, step_id)).provider_ref = shared  # type: ignore[union-attr]

    async with runtime.db.transaction() as session:
        assert await mark_confirmed(session, SHOP_B, step_id) is None  # another shop's step id: nothing
        confirmed = await mark_confirmed(session, SHOP_A, step_id)

    assert confirmed is not None and confirmed.reference == first and confirmed.status == "confirmed"


async def test_steps_sharing_a_message_that_run_at_once_queue_it_once(runtime: Runtime) -> None:
    """A sweep group's steps run side by side; each must find the message the first one queued."""
    key = "postnord:erase::shipment:1:A,shipment:2:B,shipment:3:C"

    references = await asyncio.gather(*(queue(runtime, step_id=n, dedupe_key=key) for n in range(1, 9)))

    assert len(set(references)) == 1
    assert len(await rows(runtime)) == 1


async def test_confirming_one_step_confirms_every_step_awaiting_the_same_message(runtime: Runtime) -> None:
    """A customer's two PostNord shipments share one e-mail: the carrier's answer confirms both; a
    step awaiting another message stays awaiting."""
    from plugin.executor.actions import confirm_step
    from plugin.models import Evidence, Request, Step

    shared = await queue(runtime, step_id=None, dedupe_key="postnord:erase:7:shipment:1:A,shipment:2:B")
    other = await queue(runtime, step_id=None, dedupe_key="bring:erase:7:shipment:3:C")
    async with runtime.db.transaction() as session:
        request = Request(
            shop_domain=SHOP_A, kind="customer_redact", business_key="c7", due_at=utcnow(), status="awaiting"
        )
        session.add(request)
        await session.flush()
        steps = [
            Step(
                request_id=request.id,
                shop_domain=SHOP_A,
                key=f"{system}:erase:shipment:{n}",
                system=system,
                action="erase",
                category="shipment",
                holding_ref=f"shipment:{n}",
                state="awaiting_confirmation",
                outcome="request_sent",
                provider_ref=reference,
            )
            for n, system, reference in (
                (1, "postnord", shared),
                (2, "postnord", shared),
                (3, "bring", other),
            )
        ]
        session.add_all(steps)
        await session.flush()
        ids = [s.id for s in steps]

    async with runtime.db.transaction() as session:
        await confirm_step(session, SHOP_A, ids[1], "PostNord confirmed", vault=runtime.vault)

    async with runtime.db.session() as session:
        states = {s.id: (s.state, s.outcome) for s in await session.scalars(select(Step).order_by(Step.id))}
        confirmed = list(await session.scalars(select(Evidence).where(Evidence.kind == "step_confirmed")))
        status = (await session.get(Request, request.id)).status  # type: ignore[union-attr]
    assert states == {
        ids[0]: ("done", "confirmed"),
        ids[1]: ("done", "confirmed"),
        ids[2]: ("awaiting_confirmation", "request_sent"),
    }
    assert sorted(evidence.readable(e)["step"] for e in confirmed) == [
        "postnord:erase:shipment:1",
        "postnord:erase:shipment:2",
    ]
    assert status == "awaiting"  # Bring has not answered yet
    assert {m.reference: m.status for m in await rows(runtime)} == {shared: "confirmed", other: "queued"}
