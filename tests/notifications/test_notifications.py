"""Notifications to the shop owner on SQLite and PostgreSQL: each kind recorded and e-mailed once
however often its trigger runs, in the shop's language, through the outbox and a real SMTP sink;
recorded with the reason when there is no mail server or no contact address."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from plugin import clocks, connections, notifications
from plugin.db import Database
from plugin.executor.outcomes import count_connection_outcome
from plugin.i18n import count
from plugin.models import AdapterConnection, OutboxMessage, Step, connection_cell, utcnow
from plugin.outbox import Outbox, deliver_queued, list_messages, send_reminders
from plugin.runtime import Runtime
from tests.fakes.smtp import SmtpSink
from tests.notifications.support import (
    OWNER_EN,
    OWNER_SV,
    SHOP_EN,
    SHOP_SV,
    add_request,
    add_shop,
    build_runtime,
    notifications_of,
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as smtp:
        yield smtp


@pytest.fixture
async def runtime(db: Database, sink: SmtpSink) -> AsyncIterator[Runtime]:
    rt = build_runtime(db, **sink.settings())
    await add_shop(rt, SHOP_SV, locale="sv", contact=OWNER_SV)
    await add_shop(rt, SHOP_EN, locale="en", contact=OWNER_EN)
    yield rt
    await rt.http.aclose()


def to_owner(sink: SmtpSink, owner: str) -> list[EmailMessage]:
    return [m for m in sink.messages if m["To"] == owner]


def subject(message: EmailMessage) -> str:
    """The subject as a mail client shows it (a long non-ASCII subject is folded on the wire)."""
    return str(message["Subject"]).strip()


def body(message: EmailMessage) -> str:
    content = message.get_content()
    assert isinstance(content, str)
    return content


def test_counts_agree_in_number() -> None:
    assert [count(n, "days", "en") for n in (1, 2, 0)] == ["1 day", "2 days", "0 days"]
    assert [count(n, "days", "sv") for n in (1, 2)] == ["1 dag", "2 dagar"]
    assert count(1, "records", "sv") == "1 post"
    assert count(3, "times", "sv") == "3 gånger"


async def test_near_deadline_then_overdue_once_each_in_the_shops_language(
    runtime: Runtime, sink: SmtpSink
) -> None:
    now = utcnow()
    sv = await add_request(runtime, SHOP_SV, "near-sv", received=now - timedelta(days=25))
    en = await add_request(runtime, SHOP_EN, "near-en", received=now - timedelta(days=29, hours=12))
    await add_request(runtime, SHOP_SV, "far", received=now - timedelta(days=2))

    for hours in (0, 1, 2):  # the hourly clock, three times; two instances in the same hour
        await clocks.watch_deadlines(runtime, now + timedelta(hours=hours))
        await clocks.watch_deadlines(runtime, now + timedelta(hours=hours))
    assert await deliver_queued(runtime) == 2
    assert await deliver_queued(runtime, now=now + timedelta(minutes=10)) == 0

    (swedish,) = to_owner(sink, OWNER_SV)
    assert subject(swedish) == f"Gallra: ärende {sv} ska vara klart om 5 dagar"
    assert "5 dagar kvar" in body(swedish) and "radering av kund" in body(swedish)
    (english,) = to_owner(sink, OWNER_EN)
    # Due tomorrow (in Stockholm) or today, depending on the hour the test runs.
    assert subject(english) in (
        f"Gallra: request {en} is due in 1 day",
        f"Gallra: request {en} is due in 0 days",
    )

    later = now + timedelta(days=6)
    for hours in (0, 1):
        await clocks.watch_deadlines(runtime, later + timedelta(hours=hours))
    await deliver_queued(runtime, now=later + timedelta(hours=2))
    assert [subject(m) for m in to_owner(sink, OWNER_SV)][1:] == [f"Gallra: ärende {sv} är försenat"]
    assert [subject(m) for m in to_owner(sink, OWNER_EN)][1:] == [f"Gallra: request {en} is overdue"]
    kinds = [(n.kind, n.language, n.status) for n in await notifications_of(runtime, SHOP_SV)]
    assert kinds == [("deadline_near", "sv", "queued"), ("overdue", "sv", "queued")]


async def test_unconfirmed_after_its_reminder_is_told_once_and_notices_are_never_reminded(
    runtime: Runtime, sink: SmtpSink
) -> None:
    now = utcnow()
    request_id = await add_request(runtime, SHOP_SV, "carrier", received=now)
    async with runtime.db.transaction() as session:
        step = Step(
            request_id=request_id,
            shop_domain=SHOP_SV,
            key="postnord:erase:shipment:1",
            system="postnord",
            action="erase",
            state="awaiting_confirmation",
        )
        session.add(step)
        await session.flush()
        step_id = step.id
    reference = await Outbox(runtime, SHOP_SV, step_id=step_id).send(
        to="dpo@carrier.example", subject="Begäran {reference}", body="ref {reference}"
    )
    assert await deliver_queued(runtime) == 1
    assert await clocks.watch_notifications(runtime, now + timedelta(days=1)) == 0  # not reminded yet

    reminded_at = now + timedelta(days=15)
    assert await send_reminders(runtime, now=reminded_at) == 1
    assert await clocks.watch_notifications(runtime, reminded_at) == 1
    assert await clocks.watch_notifications(runtime, reminded_at + timedelta(hours=1)) == 0
    await deliver_queued(runtime, now=reminded_at + timedelta(minutes=1))

    (told,) = to_owner(sink, OWNER_SV)
    assert subject(told) == f"Gallra: postnord har inte bekräftat raderingsbegäran {reference}"
    assert "påmints 1 gång" in body(told) and f"gallra requests confirm {step_id}" in body(told)
    # A month on: the carrier gets its second reminder; the owner's notice is never "reminded".
    assert await send_reminders(runtime, now=reminded_at + timedelta(days=15)) == 1
    async with runtime.db.session() as session:
        listed = await list_messages(session, SHOP_SV)
    assert [m.reference for m in listed] == [reference]  # the e-mail channel lists no notices
    assert len(to_owner(sink, OWNER_SV)) == 1


async def test_a_connection_failing_three_times_in_a_row_is_told_once_per_run(
    runtime: Runtime, sink: SmtpSink
) -> None:
    now = utcnow()
    async with runtime.db.transaction() as session:
        session.add(
            AdapterConnection(
                shop_domain=SHOP_EN,
                adapter="klaviyo",
                config_enc=runtime.vault.encrypt("{}", connection_cell(SHOP_EN, "klaviyo")),
            )
        )

    async def check(ok: bool, at: timedelta) -> None:
        async with runtime.db.transaction() as session:
            row = await session.scalar(
                select(AdapterConnection).where(AdapterConnection.shop_domain == SHOP_EN)
            )
            assert row is not None
            connections.record_check(row, ok, "klaviyo: HTTP 401 (api_key)", now + at)

    await check(False, timedelta(0))
    await check(False, timedelta(hours=1))
    assert await notifications.watch_connections(runtime, now) == 0  # twice is not "keeps failing"
    await check(False, timedelta(hours=2))
    assert await notifications.watch_connections(runtime, now) == 1
    assert await notifications.watch_connections(runtime, now) == 0
    await check(False, timedelta(hours=3))
    assert await notifications.watch_connections(runtime, now) == 0  # the same run of failures

    # It works again, then fails anew (here through finally failed steps): a new run, told again.
    await check(True, timedelta(hours=4))
    request_id = await add_request(runtime, SHOP_EN, "steps", received=now)
    for n in range(3):
        async with runtime.db.transaction() as session:
            step = Step(
                request_id=request_id,
                shop_domain=SHOP_EN,
                key=f"klaviyo:erase:{n}",
                system="klaviyo",
                action="erase",
                state="failed",
                last_error="klaviyo: HTTP 503",
            )
            session.add(step)
            await count_connection_outcome(session, step, False, now + timedelta(days=1, hours=n))
    assert await notifications.watch_connections(runtime, now + timedelta(days=2)) == 1
    async with runtime.db.transaction() as session:  # a step that works ends the run
        await count_connection_outcome(session, step, True, now + timedelta(days=3))
    async with runtime.db.session() as session:
        row = await session.scalar(select(AdapterConnection).where(AdapterConnection.shop_domain == SHOP_EN))
        assert row is not None and (row.failures, row.failing_since) == (0, None)
    await deliver_queued(runtime, now=now + timedelta(days=2))

    subjects = [subject(m) for m in to_owner(sink, OWNER_EN)]
    assert subjects == ["Gallra: the connection to klaviyo keeps failing"] * 2
    assert "failed 3 times in a row" in body(to_owner(sink, OWNER_EN)[0])
    assert "HTTP 503" in body(to_owner(sink, OWNER_EN)[1])


async def test_dry_run_findings_told_at_most_once_a_week(runtime: Runtime, sink: SmtpSink) -> None:
    report = {
        "day": "2026-11-02",
        "tally": {"categories": {"order_contact": {"erase": 1, "reduce": 0}, "newsletter": {"erase": 0}}},
    }
    assert await notifications.notify_dry_run_findings(runtime, SHOP_SV, report)
    assert not await notifications.notify_dry_run_findings(runtime, SHOP_SV, report)
    assert not await notifications.notify_dry_run_findings(
        runtime, SHOP_SV, {"day": "2026-11-03", "tally": {"categories": {"order": {"keep": 4}}}}
    )  # nothing to do: nothing to tell
    assert not await notifications.notify_dry_run_findings(runtime, SHOP_SV, report | {"day": "2026-11-08"})
    assert await notifications.notify_dry_run_findings(runtime, SHOP_SV, report | {"day": "2026-11-09"})
    await deliver_queued(runtime)
    told, next_week = to_owner(sink, OWNER_SV)  # at most once a week: 2 November is a Monday
    assert "2026-11-09" in subject(next_week)
    assert subject(told) == "Gallra: gallringen 2026-11-02 hittade 1 post att radera eller minimera"
    assert "radera 1 post och minimera 0 poster" in body(told)


async def test_two_instances_at_once_send_one_e_mail(runtime: Runtime, sink: SmtpSink) -> None:
    import asyncio

    context = {"adapter": "rule_io", "failures": 3, "since": "2026-11-01", "error": "HTTP 500"}
    results = await asyncio.gather(
        *(notifications.notify(runtime, SHOP_EN, "connection_failing", "race:1", context) for _ in range(4))
    )
    assert sorted(results) == [False, False, False, True]
    async with runtime.db.session() as session:
        assert len(list(await session.scalars(select(OutboxMessage.id)))) == 1
    await deliver_queued(runtime)
    assert len(sink.messages) == 1


async def test_without_a_mail_server_or_contact_the_notification_is_recorded_with_why(
    db: Database,
) -> None:
    runtime = build_runtime(db)  # SMTP_HOST unset
    await add_shop(runtime, SHOP_SV, locale="sv", contact=OWNER_SV)
    await add_shop(runtime, SHOP_EN, locale="en", contact=None)
    context = {"day": "2026-11-02", "erase": 2, "reduce": 1, "records": 3}
    assert await notifications.notify(runtime, SHOP_SV, "dry_run_findings", "k:1", context)
    assert not await notifications.notify(runtime, SHOP_SV, "dry_run_findings", "k:1", context)
    async with runtime.db.session() as session:
        assert not list(await session.scalars(select(OutboxMessage.id)))
        (listed,) = await notifications.list_notifications(session, SHOP_SV)
    assert (listed.state, listed.note) == ("not_emailed", "not e-mailed: no mail server configured")

    mailing = build_runtime(db, smtp_host="127.0.0.1")
    assert await notifications.notify(mailing, SHOP_EN, "dry_run_findings", "k:2", context)
    async with runtime.db.session() as session:
        (listed,) = await notifications.list_notifications(session, SHOP_EN)
    assert (listed.state, listed.note) == ("not_emailed", "not e-mailed: no contact address")
    await runtime.http.aclose()
    await mailing.http.aclose()


async def test_a_long_swedish_subject_arrives_with_every_space(runtime: Runtime, sink: SmtpSink) -> None:
    context = {"adapter": "klaviyo", "failures": 3, "since": "2026-11-01", "error": "HTTP 401"}
    assert await notifications.notify(runtime, SHOP_SV, "connection_failing", "long:1", context)
    await deliver_queued(runtime)
    (told,) = to_owner(sink, OWNER_SV)
    assert told["Subject"] == "Gallra: anslutningen till klaviyo misslyckas gång på gång"
