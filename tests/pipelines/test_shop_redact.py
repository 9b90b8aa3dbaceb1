"""shop/redact: carried out only once the shop's uninstall is confirmed and 48 hours have passed
(held, visibly, while the shop is installed); then everything the app holds for the shop goes, the
evidence log stays, reduced to non-personal fields and still verifiable; running it again changes
nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from plugin import evidence
from plugin.cli.requests import _print_details, _table, request_details, request_summary
from plugin.executor.context import WorkerConfig
from plugin.ledger import NewRequest, insert_request
from plugin.models import (
    AdapterConnection,
    Artifact,
    Evidence,
    Request,
    Shop,
    connection_cell,
    shop_cell,
    utcnow,
)
from plugin.pipelines.shop_redact import SHOP_REDACT_DELAY
from plugin.pipelines.uninstall import Verdict, confirm_uninstalls
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.executor.doubles import SHOP, FakeSources, add_request, newsletter_holding, uninstall_shop


async def _with_token_and_connection(runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        shop.access_token_enc = runtime.vault.encrypt("shpat_secret", shop_cell("access_token_enc", SHOP))
        shop.contact_email_enc = runtime.vault.encrypt("owner@shop.se", shop_cell("contact_email_enc", SHOP))
        session.add(
            AdapterConnection(
                shop_domain=SHOP,
                adapter="klaviyo",
                config_enc=runtime.vault.encrypt_json({}, connection_cell(SHOP, "klaviyo")),
            )
        )


async def test_shop_redact_erases_all_but_reduced_evidence(
    runtime: Runtime, worker: Worker, sources: FakeSources
) -> None:
    sources.holdings["newsletter"] = [newsletter_holding()]
    await add_request(runtime)
    await add_request(runtime, "data_request", key="dr")
    await _with_token_and_connection(runtime)
    await worker.drain(limit=20)
    await uninstall_shop(runtime, utcnow() - SHOP_REDACT_DELAY - timedelta(minutes=1))
    redact = await add_request(runtime, "shop_redact", email="", key="shop")
    await worker.drain(limit=20)

    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        requests = (await session.execute(select(Request).where(Request.shop_domain == SHOP))).scalars().all()
        artifacts = await session.scalar(
            select(func.count()).select_from(Artifact).where(Artifact.shop_domain == SHOP)
        )
        connections = await session.scalar(select(func.count()).select_from(AdapterConnection))
        payloads = (
            (await session.execute(select(Evidence.payload).where(Evidence.shop_domain == SHOP)))
            .scalars()
            .all()
        )
        chain = await evidence.verify(session, SHOP)
    assert shop.status == "redacted"
    assert shop.access_token_enc is None and shop.contact_email_enc is None and shop.name is None
    assert [(r.id, r.status, r.email_enc, r.email_hash) for r in requests] == [(redact, "done", None, None)]
    assert artifacts == 0 and connections == 0
    assert payloads and all(evidence.SUBJECT not in p for p in payloads)
    assert chain.ok

    # Idempotent: a second run of the same request changes nothing and adds no second record.
    async with runtime.db.transaction() as session:
        request = await session.get(Request, redact)
        assert request is not None
        request.status = "received"
    await worker.drain(limit=20)
    async with runtime.db.session() as session:
        kinds = (
            (await session.execute(select(Evidence.kind).where(Evidence.kind == "shop_redacted")))
            .scalars()
            .all()
        )
        assert len(kinds) == 1
        assert (await evidence.verify(session, SHOP)).ok
    # A replayed shop/redact after the purge is the same request (its business key): nothing new.
    async with runtime.db.transaction() as session:
        replay = NewRequest(kind="shop_redact", shop_domain=SHOP, business_key="shop")
        assert await insert_request(session, runtime.vault, replay) is None


class Clock:
    """The worker's injected clock: starts at the real now (so fresh rows are due) and is moved on."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def _worker(runtime: Runtime, sources: FakeSources, clock: Callable[[], datetime]) -> Worker:
    config = WorkerConfig(
        owner="w-clock",
        backoff_base=0.02,
        backoff_cap=0.1,
        lease_seconds=30.0,
        poll_seconds=0.05,
        clock=clock,
    )
    return Worker(runtime, config, sources)


async def _request(runtime: Runtime, request_id: int) -> Request:
    async with runtime.db.session() as session:
        request = await session.get(Request, request_id)
    assert request is not None
    return request


async def _state(runtime: Runtime) -> tuple[str, int, int, bool]:
    """(shop status, its connections, its other requests, whether it still has its token)."""
    async with runtime.db.session() as session:
        shop = (await session.execute(select(Shop).where(Shop.domain == SHOP))).scalar_one()
        connections = await session.scalar(select(func.count()).select_from(AdapterConnection))
        others = await session.scalar(
            select(func.count()).select_from(Request).where(Request.kind != "shop_redact")
        )
    return shop.status, int(connections or 0), int(others or 0), shop.access_token_enc is not None


async def test_shop_redact_is_held_while_installed_then_carried_out(
    runtime: Runtime, worker: Worker, sources: FakeSources, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: a shop/redact (a genuine one re-sent, or a customer body re-topiced before
    intake refused those) for a shop that is installed and in use purged it at once."""
    await _with_token_and_connection(runtime)
    await add_request(runtime)
    redact = await add_request(runtime, "shop_redact", email="", key="shop:954889")
    clock = Clock()
    held = _worker(runtime, sources, clock)
    await held.drain(limit=20)

    request = await _request(runtime, redact)
    assert (request.status, request.hold_reason) == ("on_hold", "shop_installed")
    assert await _state(runtime) == ("active", 1, 1, True)
    # visible to the operator (CLI) and, through the same row, the admin page
    summary = request_summary(request, clock())
    assert summary["hold_reason"] == "shop_installed"
    assert "on_hold (shop_installed)" in _table([summary])  # `gallra requests list`
    details = await request_details(runtime, redact)
    assert details is not None
    assert (details["status"], details["hold_reason"]) == ("on_hold", "shop_installed")
    _print_details(details)  # `gallra requests show`
    assert "on hold: the shop is installed: nothing is erased while it is" in capsys.readouterr().out
    assert [e["kind"] for e in details["evidence"]] == ["shop_redact_held"]

    # Re-checked later: still installed, still held, no second evidence entry for the same reason.
    clock.advance(timedelta(hours=7))
    await held.drain(limit=20)
    request = await _request(runtime, redact)
    assert request.status == "on_hold" and request.next_attempt_at is not None
    assert request.next_attempt_at > clock()
    assert await _state(runtime) == ("active", 1, 1, True)

    # An uninstall claim is not enough: held until Shopify confirms it.
    async with runtime.db.transaction() as session:
        await session.execute(update(Shop).where(Shop.domain == SHOP).values(uninstall_claimed_at=clock()))
    clock.advance(timedelta(hours=7))
    await held.drain(limit=20)
    request = await _request(runtime, redact)
    assert (request.status, request.hold_reason) == ("on_hold", "uninstall_unconfirmed")

    # Shopify refuses the token: confirmed. The redaction is woken and waits out the 48 hours.
    async def refused(runtime: Runtime, domain: str) -> Verdict:
        return Verdict.UNINSTALLED

    uninstalled_at = clock.advance(timedelta(minutes=1))
    assert await confirm_uninstalls(runtime, now=uninstalled_at, check=refused) == 1
    await held.drain(limit=20)
    request = await _request(runtime, redact)
    assert (request.status, request.hold_reason) == ("on_hold", "within_48h")
    assert request.next_attempt_at == uninstalled_at + SHOP_REDACT_DELAY
    assert await _state(runtime) == ("uninstalled", 1, 1, False)

    clock.advance(SHOP_REDACT_DELAY - timedelta(minutes=1))  # 47 h 59 min after the uninstall
    await held.drain(limit=20)
    assert (await _request(runtime, redact)).status == "on_hold"
    assert await _state(runtime) == ("uninstalled", 1, 1, False)

    clock.advance(timedelta(minutes=1))  # 48 h
    await held.drain(limit=20)
    request = await _request(runtime, redact)
    assert (request.status, request.hold_reason) == ("done", None)
    assert await _state(runtime) == ("redacted", 0, 0, False)
    async with runtime.db.session() as session:
        kinds = list(
            (
                await session.execute(
                    select(Evidence.kind).where(Evidence.request_id == redact).order_by(Evidence.seq)
                )
            ).scalars()
        )
        assert (await evidence.verify(session, SHOP)).ok
    assert kinds == [
        "shop_redact_held",
        "shop_redact_held",
        "shop_redact_held",
        "shop_redacted",
        "request_done",
    ]


async def test_shop_redact_for_a_shop_never_installed_here_is_carried_out(
    runtime: Runtime, worker: Worker
) -> None:
    """No shop row: nothing live to protect, so the stray rows of that domain go at once."""
    other = "never-installed.myshopify.com"
    await add_request(runtime, domain=other)
    await worker.drain(limit=20)
    redact = await add_request(runtime, "shop_redact", email="", key="shop:1", domain=other)
    await worker.drain(limit=20)
    async with runtime.db.session() as session:
        left = list((await session.execute(select(Request.id).where(Request.shop_domain == other))).scalars())
        assert (await session.execute(select(func.count()).select_from(Shop))).scalar_one() == 1
    assert left == [redact]
    assert (await _request(runtime, redact)).status == "done"
