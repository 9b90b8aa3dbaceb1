"""Group commit: one transaction per batch, duplicates inside a batch, and a bad row alone fails."""

from __future__ import annotations

import asyncio
import json
import pickle
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from plugin.db import Database
from plugin.intake import store as store_module
from plugin.intake.batch import Incoming, Stored
from plugin.intake.headers import WebhookHeaders
from plugin.intake.mapping import new_request
from plugin.intake.payloads import parse
from plugin.intake.store import IntakeStore, WriteFailed, WriterGone
from plugin.intake.writer import writer_engine
from plugin.models import Delivery, Request, delivery_cell
from plugin.runtime import Runtime
from tests.intake.conftest import build_runtime, counts

SHOP = "batch-shop.myshopify.com"


def incoming(runtime: Runtime, data_request_id: int, webhook_id: str | None = None) -> Incoming:
    body = json.dumps(
        {"shop_id": 1, "shop_domain": SHOP, "customer": {"id": 5}, "data_request": {"id": data_request_id}}
    ).encode()
    headers = WebhookHeaders(
        signature="checked elsewhere",
        topic="customers/data_request",
        shop_domain=SHOP,
        api_version="2026-01",
        webhook_id=webhook_id or str(uuid.uuid4()),
        event_id=None,
        triggered_at=None,
    )
    payload = parse("customers/data_request", body)
    request = new_request("customers/data_request", payload, SHOP, runtime.vault)
    return Incoming(topic="customers/data_request", shop=SHOP, headers=headers, body=body, request=request)


async def test_a_burst_is_one_batch_with_in_batch_duplicates(db: Database) -> None:
    runtime = build_runtime(db)
    store = IntakeStore(runtime)
    items = [incoming(runtime, n) for n in range(40)]
    items += [incoming(runtime, 7), incoming(runtime, 99, webhook_id=items[3].headers.webhook_id)]
    answers = await asyncio.gather(*(store.submit(item) for item in items))
    await store.close()
    assert 1 <= store.transactions <= 2  # all forty arrived while at most one write was in flight
    assert [a.duplicate for a in answers] == [False] * 40 + [True, True]
    assert answers[40].request_id == answers[7].request_id and answers[41].request_id == answers[3].request_id
    assert await counts(db) == (40, 40)
    await runtime.http.aclose()


@pytest.mark.postgres
async def test_a_refused_row_fails_alone(pg_db: Database) -> None:
    runtime = build_runtime(pg_db)
    store = IntakeStore(runtime)
    items = [incoming(runtime, n) for n in range(5)]
    items[2] = incoming(runtime, 2, webhook_id="w" * 300)  # longer than the column: PostgreSQL refuses it
    answers = await asyncio.gather(*(store.submit(item) for item in items), return_exceptions=True)
    await store.close()
    assert isinstance(answers[2], DBAPIError)
    assert all(not isinstance(a, BaseException) and not a.duplicate for i, a in enumerate(answers) if i != 2)
    assert await counts(pg_db) == (4, 4)
    await runtime.http.aclose()


@pytest.mark.postgres
async def test_the_drainer_replaces_a_connection_the_server_closed(pg_db: Database) -> None:
    """The drainer keeps its connection between batches: one the server dropped meanwhile (a
    restart) is replaced, and the next delivery is stored, not answered 503."""
    runtime = build_runtime(pg_db)
    store = IntakeStore(runtime)
    assert not (await store.submit(incoming(runtime, 1))).duplicate
    async with pg_db.transaction() as session:
        await session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    assert not (await store.submit(incoming(runtime, 2))).duplicate
    await store.close()
    assert await counts(pg_db) == (2, 2)
    await runtime.http.aclose()


async def test_database_unreachable_fails_the_batch_without_retrying_rows() -> None:
    runtime = build_runtime(Database("postgresql://postgres@127.0.0.1:1/none"))
    store = IntakeStore(runtime)
    with pytest.raises((OSError, DBAPIError)):
        await store.submit(incoming(runtime, 1))
    await store.close()
    await runtime.http.aclose()


@asynccontextmanager
async def write_lock(db: Database) -> AsyncIterator[None]:
    """Another connection holds what intake's insert needs until the block ends."""
    url = make_url(db.url)
    if db.is_sqlite:
        holder = sqlite3.connect(str(url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE requests IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_a_write_that_hangs_answers_timeout_by_the_deadline(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "STORE_TIMEOUT", 0.3)
    runtime = build_runtime(db)
    store = IntakeStore(runtime)
    async with write_lock(db):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await store.submit(incoming(runtime, 1))
        assert time.monotonic() - started < 0.3 + store_module.WATCH_EVERY + 0.5
    await store.close()
    # The write went on once the lock was gone: Shopify's retry will be a duplicate, not lost.
    assert await counts(db) == (1, 1)
    await runtime.http.aclose()


async def stored_ids(db: Database) -> dict[str, tuple[int, int | None]]:
    """Business key -> (request id, the request id its delivery points at)."""
    async with db.session() as session:
        rows = await session.execute(
            select(Request.business_key, Request.id, Delivery.request_id).join(
                Delivery, Delivery.request_id == Request.id, isouter=True
            )
        )
        return {key: (request_id, delivered) for key, request_id, delivered in rows}


async def test_every_answer_names_its_own_request_also_beside_earlier_copies(db: Database) -> None:
    """The ids a batch answers with are the ids its rows got, whether every row of the batch is
    new (SQLite: known from the row count and last row id) or some were stored before (read back)."""
    runtime = build_runtime(db)
    store = IntakeStore(runtime)
    first = await asyncio.gather(*(store.submit(incoming(runtime, n)) for n in range(0, 40, 3)))
    items = [incoming(runtime, n) for n in range(40)]  # every third one is stored already
    answers = await asyncio.gather(*(store.submit(item) for item in items))
    await store.close()
    ids = await stored_ids(db)
    assert len(ids) == 40
    for n, answer in enumerate(answers):
        request_id, delivered = ids[f"data_request:{n}"]
        assert answer.request_id == request_id == delivered
        assert answer.duplicate == (n % 3 == 0)
    assert [a.request_id for a in first] == [ids[f"data_request:{n}"][0] for n in range(0, 40, 3)]
    assert await counts(db) == (40, 40)
    await runtime.http.aclose()


def test_sqlite_intake_commits_are_durable(sqlite_db: Database) -> None:
    """synchronous=FULL on the connection that commits deliveries (the writer process's): with
    NORMAL, a commit in WAL mode may roll back after a power loss, once Shopify has its 200."""
    engine = writer_engine(sqlite_db.url)
    try:
        with engine.connect() as writer:
            assert writer.exec_driver_sql("PRAGMA synchronous").scalar_one() == 2  # FULL
            assert writer.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    finally:
        engine.dispose()


async def test_the_writers_own_checkpoints_keep_the_log_short(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer checkpoints between its batches, so the write-ahead log starts over instead of
    growing until SQLite checkpoints inside a commit (stalling that batch)."""
    path = str(make_url(sqlite_db.url).database)
    runtime = build_runtime(sqlite_db)

    async def log_frames_after_bursts(checkpoint_every: int, first: int) -> int:
        monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", checkpoint_every)
        store = IntakeStore(runtime)
        for burst in range(10):
            start = first + burst * 20
            await asyncio.gather(*(store.submit(incoming(runtime, start + n)) for n in range(20)))
        await asyncio.sleep(0.1)  # the writer's last checkpoint, if one is due, runs after the answers
        with sqlite3.connect(path) as check:
            busy, log_frames, _done = check.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert not busy
        await store.close()
        return int(log_frames)

    with_checkpoints = await log_frames_after_bursts(20, 0)
    without = await log_frames_after_bursts(10**9, 1000)
    assert 0 < with_checkpoints * 3 < without
    assert await counts(sqlite_db) == (400, 400)
    await runtime.http.aclose()


async def test_a_refused_row_fails_alone_in_the_writer_process(sqlite_db: Database) -> None:
    """The writer process retries a refused batch row by row, as the in-process writer does."""
    async with sqlite_db.transaction() as session:
        await session.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON deliveries WHEN NEW.webhook_id = 'refuse-me' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
    runtime = build_runtime(sqlite_db)
    store = IntakeStore(runtime)
    items = [incoming(runtime, n) for n in range(5)]
    items[2] = incoming(runtime, 2, webhook_id="refuse-me")
    answers = await asyncio.gather(*(store.submit(item) for item in items), return_exceptions=True)
    await store.close()
    assert isinstance(answers[2], WriteFailed) and "IntegrityError" in str(answers[2])
    assert all(isinstance(a, Stored) and not a.duplicate for i, a in enumerate(answers) if i != 2)
    assert await counts(sqlite_db) == (4, 4)
    await runtime.http.aclose()


async def test_a_killed_writer_process_fails_its_batch_and_is_started_again(sqlite_db: Database) -> None:
    """Deliveries whose writer died are not acknowledged (503, Shopify retries); the next delivery
    gets a new writer process and is stored."""
    runtime = build_runtime(sqlite_db)
    store = IntakeStore(runtime)
    assert (await store.submit(incoming(runtime, 1))).duplicate is False
    first = store._process
    assert first is not None
    async with write_lock(sqlite_db):  # the next batch waits in the writer, which is then killed
        waiting = asyncio.ensure_future(store.submit(incoming(runtime, 2)))
        await asyncio.sleep(0.2)
        first.process.kill()
        with pytest.raises(WriterGone):
            await waiting
    again = await store.submit(incoming(runtime, 2))  # Shopify's retry
    assert again.duplicate is False and store._process is not None and store._process is not first
    await store.close()
    assert first.process.returncode is not None
    assert await counts(sqlite_db) == (2, 2)
    await runtime.http.aclose()


def test_a_delivery_reaches_the_writer_process_intact() -> None:
    """What crosses the socket to the writer process: every field it writes, and the vault's keys."""
    runtime = build_runtime(Database("sqlite+aiosqlite:///:memory:"))
    item = incoming(runtime, 3)
    item.uninstall = True
    copy = pickle.loads(pickle.dumps(item))  # noqa: S301  (our own bytes)
    fields = ("topic", "shop", "headers", "body", "request", "uninstall", "received_at")
    assert [getattr(copy, name) for name in fields] == [getattr(item, name) for name in fields]
    vault = pickle.loads(pickle.dumps(runtime.vault))  # noqa: S301
    assert vault.decrypt(
        runtime.vault.encrypt("anna@example.se", delivery_cell(SHOP)), delivery_cell(SHOP)
    ) == ("anna@example.se")
    assert vault.email_hash(SHOP, "anna@example.se") == runtime.vault.email_hash(SHOP, "anna@example.se")
