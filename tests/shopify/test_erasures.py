"""Shopify's erasure lifecycle (plugin/shopify/erasures.py): every erasure Gallra requests is
tracked with Shopify's expected date, can be cancelled within Shopify's window (and only then),
and is marked verified through one call. Against the stateful Shopify fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from plugin import evidence
from plugin.cli import _assemble
from plugin.crypto import Vault
from plugin.db import Database
from plugin.ledger import NewRequest, insert_request
from plugin.models import Evidence, Shop, ShopifyErasure, cell_of, shop_cell, utcnow
from plugin.pipelines.sources import LiveSources
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from plugin.shopify import erasures
from plugin.shopify.operations import CANCEL_ERASURE
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, _empty, make_settings
from tests.executor.conftest import fast_config

SHOP = "erasing.myshopify.com"
OTHER = "elsewhere.myshopify.com"
CUSTOMER = 5551
TOKEN = "shpat_erasing"


def test_expected_date_follows_shopifys_documented_delay() -> None:
    asked = datetime(2026, 12, 1, 12, tzinfo=UTC)
    # No order in the last 180 days (or none at all): 10 days after the request.
    assert erasures.expected_erasure_at(asked, None) == asked + timedelta(days=10)
    assert erasures.expected_erasure_at(asked, asked - timedelta(days=400)) == asked + timedelta(days=10)
    # An order 30 days ago: 180 days after that order.
    last = asked - timedelta(days=30)
    assert erasures.expected_erasure_at(asked, last) == last + timedelta(days=180)
    # An order 175 days ago: 180 days after it would be sooner than 10 days: 10 days it is.
    assert erasures.expected_erasure_at(asked, asked - timedelta(days=175)) == asked + timedelta(days=10)


def test_last_order_is_read_from_the_account_holding_and_never_too_early() -> None:
    holding = {"ref": "customer:1", "flags": ["has_orders"], "last_activity": "2026-11-01"}
    last = erasures._last_order(holding)
    assert last is not None and last > datetime(2026, 11, 1, 23, 59, tzinfo=UTC)
    assert erasures._last_order({**holding, "flags": []}) is None  # no orders: activity is not an order
    assert erasures.customer_of_ref("customer:17") == 17
    assert erasures.customer_of_ref("customer:17:marketing") is None
    assert erasures.customer_of_ref("order:17") is None


@pytest.fixture
async def runtime(db: Database) -> AsyncIterator[Runtime]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        built = Runtime(settings=make_settings(db.url), db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http)
        for domain in (SHOP, OTHER):
            async with db.transaction() as session:
                session.add(
                    Shop(
                        domain=domain,
                        name="Erasing",
                        country="SE",
                        timezone="Europe/Stockholm",
                        access_token_enc=built.vault.encrypt(TOKEN, shop_cell("access_token_enc", domain)),
                    )
                )
        yield built


def _stock(shopify_fake: Any, order_age: timedelta) -> None:
    shopify_fake.add_shop(SHOP, country="SE", timezone="Europe/Stockholm", token=TOKEN)
    shopify_fake.add_customer(SHOP, CUSTOMER, email="erik@example.se")
    shopify_fake.add_order(SHOP, 9001, customer_id=CUSTOMER, created_at=datetime.now(UTC) - order_age)


async def _redact(runtime: Runtime) -> int:
    async with runtime.db.transaction() as session:
        request_id = await insert_request(
            session,
            runtime.vault,
            NewRequest(
                kind="customer_redact",
                shop_domain=SHOP,
                business_key=f"customer:{CUSTOMER}|orders:9001",
                customer_id=CUSTOMER,
                email="erik@example.se",
                order_ids=[9001],
            ),
        )
    assert request_id is not None
    await Worker(runtime, fast_config(), LiveSources(runtime)).drain(limit=40)
    return request_id


async def _tracked(db: Database, shop: str = SHOP) -> list[ShopifyErasure]:
    async with db.session() as session:
        return await erasures.erasures(session, shop)


async def test_a_requested_erasure_is_tracked_with_shopifys_expected_date(
    runtime: Runtime, db: Database, shopify_fake: Any
) -> None:
    _stock(shopify_fake, order_age=timedelta(days=5 * 365))
    before = utcnow()
    request_id = await _redact(runtime)
    assert shopify_fake.shops[SHOP].erasure_requested == {CUSTOMER}

    (tracked,) = await _tracked(db)
    assert (tracked.customer_id, tracked.request_id, tracked.state) == (CUSTOMER, request_id, "requested")
    assert before <= tracked.requested_at <= utcnow()
    # The last order was five years ago: Shopify erases 10 days after the request.
    assert tracked.expected_at == tracked.requested_at + timedelta(days=10)
    assert erasures.cancellable(tracked, utcnow())
    async with db.session() as session:
        entry = (
            await session.execute(select(Evidence).where(Evidence.kind == "shopify_erasure_tracked"))
        ).scalar_one()
        assert (await evidence.verify(session, SHOP)).ok
    assert entry.request_id == request_id and entry.payload["expected_at"] == tracked.expected_at.isoformat()
    assert str(CUSTOMER) not in json.dumps(entry.payload)  # the customer only in the identifier part
    assert entry.identifiers == {"subject": {"customer_id": CUSTOMER}}
    # The same step recorded again (a retry) is the same erasure, not a second one.
    async with db.transaction() as session:
        await erasures.track(
            session,
            shop_domain=SHOP,
            customer_id=CUSTOMER,
            request_id=request_id,
            step_id=tracked.step_id,
            requested_at=utcnow(),
            last_order_at=None,
        )
    assert [row.id for row in await _tracked(db)] == [tracked.id]


async def _track(db: Database, *, shop: str = SHOP, asked: datetime, last_order: datetime | None) -> int:
    async with db.transaction() as session:
        await erasures.track(
            session,
            shop_domain=shop,
            customer_id=CUSTOMER,
            request_id=None,
            step_id=None,
            requested_at=asked,
            last_order_at=last_order,
        )
    (row,) = await _tracked(db, shop)
    return row.id


async def test_cancelled_within_the_window_with_who_and_why(
    runtime: Runtime, db: Database, shopify_fake: Any
) -> None:
    _stock(shopify_fake, order_age=timedelta(days=30))
    await _redact(runtime)
    (tracked,) = await _tracked(db)
    # An order 30 days ago: Shopify holds the erasure until 180 days after it.
    assert tracked.expected_at > tracked.requested_at + timedelta(days=140)

    done = await erasures.cancel(
        runtime, SHOP, tracked.id, by="shopify-user:42", why="Kunden ångrade sig i telefon med Anna"
    )
    assert done.customer_id == CUSTOMER
    assert shopify_fake.mutations[-1].name == "customerCancelDataErasure"
    assert shopify_fake.mutations[-1].variables == {"customerId": f"gid://shopify/Customer/{CUSTOMER}"}
    assert shopify_fake.shops[SHOP].erasure_requested == set()  # Shopify will not carry it out

    (row,) = await _tracked(db)
    assert (row.state, row.cancelled_by) == ("cancelled", "shopify-user:42") and row.cancelled_at
    assert runtime.vault.decrypt(row.cancel_reason_enc, cell_of(row, "cancel_reason_enc")) == (
        "Kunden ångrade sig i telefon med Anna"
    )
    async with db.session() as session:
        entry = (
            await session.execute(select(Evidence).where(Evidence.kind == "shopify_erasure_cancelled"))
        ).scalar_one()
        assert (await evidence.verify(session, SHOP)).ok
    public = json.dumps(entry.payload, ensure_ascii=False)
    assert "Anna" not in public and "shopify-user:42" not in public and str(CUSTOMER) not in public
    assert entry.identifiers == {
        "subject": {"customer_id": CUSTOMER},
        "cancelled_by": "shopify-user:42",
        "cancel_reason": "Kunden ångrade sig i telefon med Anna",
    }
    # Cancelled once: a second cancel is refused and nothing more is sent.
    sent = len(shopify_fake.mutations)
    with pytest.raises(erasures.CancelRefused, match="cancelled"):
        await erasures.cancel(runtime, SHOP, tracked.id, by="cli", why="again")
    assert len(shopify_fake.mutations) == sent


async def test_refused_after_the_window_and_nothing_is_lost(
    runtime: Runtime, db: Database, shopify_fake: Any
) -> None:
    _stock(shopify_fake, order_age=timedelta(days=5 * 365))
    await _redact(runtime)
    (tracked,) = await _tracked(db)
    later = tracked.expected_at + timedelta(minutes=1)
    # Shopify's side: the window has passed and the erasure is carried out.
    shopify_fake.clock = lambda: later.timestamp()
    sent = len(shopify_fake.mutations)

    with pytest.raises(erasures.CancelRefused, match="window to cancel ended on"):
        await erasures.cancel(runtime, SHOP, tracked.id, by="cli", why="too late", now=later)
    assert len(shopify_fake.mutations) == sent  # Shopify was not even asked
    (row,) = await _tracked(db)
    assert (row.state, row.cancelled_at, row.cancel_reason_enc) == ("requested", None, None)
    async with db.session() as session:
        kinds = set((await session.execute(select(Evidence.kind))).scalars())
    assert "shopify_erasure_cancelled" not in kinds

    # Inside Gallra's window but Shopify has already erased (its clock ran ahead): Shopify's
    # NOT_BEING_ERASED is reported plainly and nothing changes either.
    with pytest.raises(erasures.CancelRefused, match="no pending erasure"):
        await erasures.cancel(runtime, SHOP, tracked.id, by="cli", why="too late", now=tracked.requested_at)
    assert shopify_fake.mutations[-1].name == "customerCancelDataErasure"
    assert (await _tracked(db))[0].state == "requested"
    assert shopify_fake.carry_out_erasures(SHOP) == [] and CUSTOMER not in shopify_fake.shops[SHOP].customers


async def test_shopify_refuses_to_cancel_an_erasure_another_requester_made(
    runtime: Runtime, db: Database, shopify_fake: Any
) -> None:
    _stock(shopify_fake, order_age=timedelta(days=5 * 365))
    shopify_fake.request_erasure_in_admin(SHOP, CUSTOMER)
    erasure_id = await _track(db, asked=utcnow(), last_order=None)
    with pytest.raises(erasures.CancelRefused, match="only the original requester"):
        await erasures.cancel(runtime, SHOP, erasure_id, by="cli", why="mistake")
    assert (await _tracked(db))[0].state == "requested"
    assert shopify_fake.shops[SHOP].erasure_requested == {CUSTOMER}


async def test_mark_verified_is_the_one_call_verification_makes(db: Database) -> None:
    erasure_id = await _track(db, asked=utcnow() - timedelta(days=11), last_order=None)
    other_id = await _track(db, shop=OTHER, asked=utcnow() - timedelta(days=11), last_order=None)
    at = utcnow()
    async with db.transaction() as session:
        assert await erasures.mark_verified(session, SHOP, CUSTOMER, at) == 1
    async with db.transaction() as session:  # once verified, marking again changes nothing
        assert await erasures.mark_verified(session, SHOP, CUSTOMER, at + timedelta(days=1)) == 0
    (row,) = await _tracked(db)
    assert (row.id, row.state, row.verified_at) == (erasure_id, "verified", at)
    assert not erasures.cancellable(row, at - timedelta(days=30))
    (other,) = await _tracked(db, OTHER)  # another shop's erasure of the same id is untouched
    assert (other.id, other.state, other.verified_at) == (other_id, "requested", None)


async def test_a_shop_cannot_see_or_cancel_another_shops_erasure(
    runtime: Runtime, db: Database, shopify_fake: Any
) -> None:
    other_id = await _track(db, shop=OTHER, asked=utcnow(), last_order=None)
    assert await _tracked(db, SHOP) == []
    with pytest.raises(erasures.UnknownErasure):
        await erasures.cancel(runtime, SHOP, other_id, by="cli", why="not mine")
    assert shopify_fake.mutations == []
    assert (await _tracked(db, OTHER))[0].state == "requested"


def test_cancel_document_is_the_one_shopify_documents(shopify_schema: Any) -> None:
    from graphql import parse, validate

    assert validate(shopify_schema, parse(CANCEL_ERASURE)) == []


def test_cli_lists_and_cancels(
    sqlite_url: str, shopify_fake: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the work tree
    monkeypatch.setenv("SHOPIFY_API_KEY", "test-client-id")
    monkeypatch.setenv("SHOPIFY_API_SECRET", TEST_SECRET)
    monkeypatch.setenv("GALLRA_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    _stock(shopify_fake, order_age=timedelta(days=5 * 365))

    async def setup() -> ShopifyErasure:
        db = Database(sqlite_url)
        evidence.bind(db, Vault(TEST_ENCRYPTION_KEY))
        await _empty(db)
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                runtime = Runtime(
                    settings=make_settings(sqlite_url), db=db, vault=Vault(TEST_ENCRYPTION_KEY), http=http
                )
                async with db.transaction() as session:
                    session.add(
                        Shop(
                            domain=SHOP,
                            country="SE",
                            timezone="Europe/Stockholm",
                            access_token_enc=runtime.vault.encrypt(
                                TOKEN, shop_cell("access_token_enc", SHOP)
                            ),
                        )
                    )
                await _redact(runtime)
            (tracked,) = await _tracked(db)
            return tracked
        finally:
            await db.dispose()

    tracked = asyncio.run(setup())
    cli = _assemble()
    runner = CliRunner()
    listed = runner.invoke(cli, ["shopify-erasures", "list", SHOP, "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert (row["id"], row["customer_id"], row["state"], row["cancellable"]) == (
        tracked.id,
        CUSTOMER,
        "requested",
        True,
    )
    assert row["expected_at"] == tracked.expected_at.isoformat()
    assert runner.invoke(cli, ["shopify-erasures", "list", "not-a-shop"]).exit_code == 2
    unknown = runner.invoke(cli, ["shopify-erasures", "cancel", SHOP, str(tracked.id + 100), "--reason", "x"])
    assert unknown.exit_code == 1 and "no Shopify erasure" in unknown.output
    done = runner.invoke(cli, ["shopify-erasures", "cancel", SHOP, str(tracked.id), "--reason", "ångrat"])
    assert done.exit_code == 0, done.output
    assert f"cancelled Shopify erasure {tracked.id} of customer {CUSTOMER}" in done.output
    assert shopify_fake.shops[SHOP].erasure_requested == set()
    again = runner.invoke(cli, ["shopify-erasures", "cancel", SHOP, str(tracked.id), "--reason", "ångrat"])
    assert again.exit_code == 1 and "not cancelled: the erasure is cancelled" in again.output
    table = runner.invoke(cli, ["shopify-erasures", "list", SHOP])
    assert table.exit_code == 0 and "cancelled" in table.output and str(CUSTOMER) in table.output
