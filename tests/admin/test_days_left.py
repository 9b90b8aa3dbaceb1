"""One "days left": the admin (pages and API), `gallra requests list` and the deadline clock's
evidence show the same number for the same request, counted in the shop's time zone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from plugin.cli import _assemble
from plugin.clocks import watch_deadlines
from plugin.models import Evidence, OutboxMessage, Request, Shop, cell_of, shop_cell
from plugin.runtime import Runtime
from tests.admin.conftest import SHOP_A
from tests.admin.helpers import bearer, get_page
from tests.conftest import cli_environment, make_settings

# 22:00 UTC is 23:00 in Stockholm (CET): the last hour of 1 December there.
NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
# Due in 90 minutes: 00:30 on 2 December in Stockholm, so one day is left in the shop's calendar.
# (Before: the admin rounded 1.5 hours up to 1, the CLI counted UTC dates and said 0.)
DUE_TOMORROW_THERE = NOW + timedelta(minutes=90)
# Due 13 hours ago, on 1 December everywhere: overdue, on its day (0).
DUE_TODAY_PASSED = NOW - timedelta(hours=13)
# Due in 6 days and 1 hour (UTC: 7 December 23:00, in Stockholm 8 December 00:00).
DUE_NEXT_WEEK = NOW + timedelta(days=6, hours=1)
EXPECTED = {"tomorrow": 1, "passed": 0, "week": 7}


@pytest.fixture
def cli_env(runtime: Runtime) -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    for name, value in cli_environment(runtime.db.url).items():
        patch.setenv(name, value)
    for module in ("plugin.cli.requests", "plugin.admin.api", "plugin.admin.pages"):
        patch.setattr(f"{module}.utcnow", lambda: NOW)
    yield patch
    patch.undo()


async def _seed(runtime: Runtime) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with runtime.db.transaction() as session:
        session.add(
            Shop(
                domain=SHOP_A,
                name="Butik A",
                timezone="Europe/Stockholm",
                locale="en",
                contact_email_enc=runtime.vault.encrypt(
                    "owner@butik-a.se", shop_cell("contact_email_enc", SHOP_A)
                ),
            )
        )
        for key, due in (
            ("tomorrow", DUE_TOMORROW_THERE),
            ("passed", DUE_TODAY_PASSED),
            ("week", DUE_NEXT_WEEK),
        ):
            row = Request(
                shop_domain=SHOP_A,
                kind="customer_redact",
                business_key=key,
                received_at=due - timedelta(days=30),
                due_at=due,
                status="in_progress",
            )
            session.add(row)
            await session.flush()
            ids[key] = row.id
    return ids


async def test_admin_and_cli_show_the_same_days_left(
    client: httpx.AsyncClient, runtime: Runtime, cli_env: pytest.MonkeyPatch
) -> None:
    ids = await _seed(runtime)
    by_id = {request_id: key for key, request_id in ids.items()}

    listed = await asyncio.to_thread(CliRunner().invoke, _assemble(), ["requests", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    cli = {by_id[row["id"]]: row["days_left"] for row in json.loads(listed.output)}

    overview = (await client.get("/admin/api/overview", headers=bearer(runtime, SHOP_A))).json()
    admin_overview = {by_id[row["id"]]: row["days_left"] for row in overview["open_requests"]}
    requests = (await client.get("/admin/api/requests", headers=bearer(runtime, SHOP_A))).json()
    admin_list = {by_id[row["id"]]: row["days_left"] for row in requests["requests"]}
    detail = (
        await client.get(f"/admin/api/requests/{ids['tomorrow']}", headers=bearer(runtime, SHOP_A))
    ).json()

    assert cli == admin_overview == admin_list == EXPECTED
    assert detail["request"]["days_left"] == EXPECTED["tomorrow"]
    passed = next(row for row in overview["open_requests"] if row["id"] == ids["passed"])
    assert passed["overdue"] is True  # the instant has passed, on its day: overdue with 0 left

    page = (await get_page(client, runtime, SHOP_A, f"/admin/requests/{ids['tomorrow']}")).text
    assert "1 day left" in page
    overview_page = (await get_page(client, runtime, SHOP_A, "/admin")).text
    assert '<span class="badge bad">due today</span>' in overview_page  # passed, on its day
    assert '<span class="badge warn">7 days left</span>' in overview_page

    # The deadline clock's evidence and its e-mail to the shop owner count the same way.
    mailing = Runtime(
        settings=make_settings(runtime.db.url, smtp_host="smtp.invalid"),
        db=runtime.db,
        vault=runtime.vault,
        http=runtime.http,
    )
    assert await watch_deadlines(mailing, now=NOW) == 3
    async with runtime.db.session() as session:
        messages = (await session.execute(select(OutboxMessage))).scalars().all()
    subjects = {runtime.vault.decrypt(m.subject_enc, cell_of(m, "subject_enc")) or "" for m in messages}
    bodies = [runtime.vault.decrypt(m.body_enc, cell_of(m, "body_enc")) or "" for m in messages]
    # One notification per request and event (plugin.notifications): due soon, or overdue.
    assert subjects == {
        f"Gallra: request {ids['tomorrow']} is due in 1 day",
        f"Gallra: request {ids['week']} is due in 7 days",
        f"Gallra: request {ids['passed']} is overdue",  # the instant passed, on its day
    }
    assert any(": 1 day left." in body for body in bodies)
    assert any(": 7 days left." in body for body in bodies)
    async with runtime.db.session() as session:
        flagged = (
            await session.execute(
                select(Evidence.request_id, Evidence.payload).where(Evidence.kind == "deadline_warning")
            )
        ).all()
    assert {by_id[request_id]: payload["days_left"] for request_id, payload in flagged} == EXPECTED
