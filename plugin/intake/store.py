"""Durable before 2xx: each delivery and its ledger request are written in one transaction.

Group commit: deliveries that arrive while a write is in flight wait and are written together in
the next transaction, so one process serves many webhooks per commit (and SQLite's single writer
is never contended inside one process). Every caller still gets its answer only after the commit
that holds its rows.

Duplicates are caught by unique indexes, so concurrent instances agree: by the request's business
key and by `(topic, webhook id)` for the delivery. Within one batch they are caught before the
database sees them. A duplicate is acknowledged and creates nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool

from plugin.crypto import Vault
from plugin.db import sqlite_pragmas
from plugin.intake.headers import WebhookHeaders
from plugin.ledger import (
    REQUEST_COLUMNS,
    REQUEST_PG_TYPES,
    REQUEST_RETURNING,
    NewRequest,
    RequestKey,
    unnest_insert_sql,
)
from plugin.models import Delivery, Request, Shop, utcnow
from plugin.runtime import Runtime

log = logging.getLogger("gallra.intake")

# Rows per transaction; more waiting deliveries go in the next one.
MAX_BATCH = 500
# Shopify gives up after 5 s; answering 503 before that makes it retry instead of timing out.
# Deadlines are checked every WATCH_EVERY seconds, so an answer comes within their sum.
STORE_TIMEOUT = 3.75
WATCH_EVERY = 0.25
# SQLite: deliveries written between two checkpoints of the write-ahead log (a few pages each),
# and the log size in pages at which SQLite checkpoints inside a commit anyway (its default is
# 1000; ours is a backstop only).
CHECKPOINT_EVERY = 500
BACKSTOP_CHECKPOINT_PAGES = 10_000
MMAP_BYTES = 256 * 1024 * 1024
# Allocations between two collections of the youngest generation (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


@dataclass(frozen=True, slots=True)
class Stored:
    duplicate: bool
    request_id: int | None


@dataclass(slots=True)
class Incoming:
    """A verified, parsed delivery ready to be written."""

    topic: str
    shop: str
    headers: WebhookHeaders
    body: bytes
    request: NewRequest | None
    uninstall: bool = False
    received_at: datetime = field(default_factory=utcnow)
    # Set by `prepare()`: the request row, and the delivery row without its request id.
    request_values: tuple[object, ...] = ()
    delivery_head: tuple[object, ...] = ()

    def __post_init__(self) -> None:
        if self.request is not None:
            # One moment for both rows: the request's 30 days count from the delivery's receipt.
            self.received_at = self.request.received_at

    def prepare(self, vault: Vault, sqlite: bool) -> None:
        """Encrypt and lay out both rows, just before they are written (`write_batch`). On SQLite
        that is in intake's writer thread, which otherwise mostly waits for SQLite: laying out the
        rows (three Fernet tokens, two keyed hashes) was an eighth of the event loop's time per
        delivery, and the event loop's thread, serving every HTTP request, is the busier one."""
        stamp = _sqlite_stamp if sqlite else _aware_stamp
        if self.request is not None:
            self.request_values = self.request.values(vault, stamp, 0 if sqlite else False)
        headers = self.headers
        self.delivery_head = (
            self.shop,
            self.topic,
            headers.webhook_id,
            headers.event_id,
            headers.api_version,
            headers.triggered_at,
            stamp(self.received_at),
            vault.encrypt(self.body),
        )

    @property
    def webhook_key(self) -> tuple[str, str] | None:
        return (self.topic, self.headers.webhook_id) if self.headers.webhook_id else None


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    head, dot, rest = value.replace("Z", "+00:00").partition(".")
    if dot:
        # Shopify sends nanoseconds ("...46.395212977Z"); Python takes at most six digits.
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def mark_uninstalled(conn: Connection, shop: str, triggered_at: str | None) -> None:
    """Mark the shop uninstalled and drop its tokens (Shopify has already revoked them).

    Repeated deliveries change nothing further; a delivery triggered before the shop's latest
    install (a late retry after a re-install) leaves the shop alone.
    """
    now = utcnow()
    statement = (
        update(Shop)
        .where(Shop.domain == shop, Shop.status != "redacted")
        .values(
            status="uninstalled",
            uninstalled_at=now,
            access_token_enc=None,
            access_token_expires_at=None,
            refresh_token_enc=None,
            refresh_token_expires_at=None,
            updated_at=now,
        )
    )
    triggered = _parse_time(triggered_at)
    if triggered is not None:
        statement = statement.where(or_(Shop.installed_at.is_(None), Shop.installed_at <= triggered))
    conn.execute(statement)


def _leaders(items: list[Incoming]) -> dict[int, int]:
    """Within a batch, the first of each request key or webhook id writes; map the rest to it."""
    leader_of: dict[int, int] = {}
    seen_requests: dict[RequestKey, int] = {}
    seen_webhooks: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        first = seen_requests.get(item.request.key) if item.request else None
        if first is None and item.webhook_key is not None:
            first = seen_webhooks.get(item.webhook_key)
        if first is not None:
            leader_of[index] = first
            continue
        if item.request is not None:
            seen_requests[item.request.key] = index
        if item.webhook_key is not None:
            seen_webhooks[item.webhook_key] = index
    return leader_of


def write_batch(conn: Connection, items: list[Incoming], vault: Vault) -> list[Stored]:
    """Write `items` in the caller's transaction; one answer per item, in order.

    Synchronous on purpose: a batch is a handful of statements, and running them in one go (in
    intake's writer thread for SQLite, through `AsyncConnection.run_sync` for PostgreSQL) saves a
    loop round trip per driver call, which is most of the cost of a webhook. The two inserts are
    one multi-row statement each, written in the driver's own terms (`_insert_many`).
    """
    sqlite = conn.dialect.name == "sqlite"
    for item in items:
        item.prepare(vault, sqlite)
    answers: list[Stored | None] = [None] * len(items)
    leader_of = _leaders(items)
    leaders = [index for index in range(len(items)) if index not in leader_of]

    new_requests = [items[i].request_values for i in leaders if items[i].request is not None]
    created: dict[RequestKey, int] = {}
    if new_requests:
        rows = _insert_many(conn, "requests", REQUEST_COLUMNS, REQUEST_RETURNING, new_requests)
        created = {(shop, kind, key): request_id for request_id, shop, kind, key in rows}
    request_ids: dict[int, int | None] = {}
    to_deliver: list[int] = []
    for index in leaders:
        request = items[index].request
        if request is not None and request.key not in created:
            answers[index] = Stored(duplicate=True, request_id=_existing_request(conn, request.key))
            continue
        request_ids[index] = created[request.key] if request is not None else None
        to_deliver.append(index)

    delivered: set[tuple[str, str]] = set()
    if to_deliver:
        rows = _insert_many(
            conn,
            "deliveries",
            _DELIVERY_COLUMNS,
            _DELIVERY_RETURNING,
            [(*items[i].delivery_head, request_ids[i]) for i in to_deliver],
        )
        delivered = {(topic, hook) for topic, hook in rows if hook is not None}
    orphans: list[int] = []
    for index in to_deliver:
        item = items[index]
        if item.webhook_key is not None and item.webhook_key not in delivered:
            # This webhook id was stored before: a duplicate, and the request it just created goes.
            if (request_id := request_ids[index]) is not None:
                orphans.append(request_id)
            answers[index] = Stored(duplicate=True, request_id=_request_of_webhook(conn, item.webhook_key))
            continue
        if item.uninstall:
            mark_uninstalled(conn, item.shop, item.headers.triggered_at)
        answers[index] = Stored(duplicate=False, request_id=request_ids[index])
    if orphans:
        conn.execute(delete(Request).where(Request.id.in_(orphans)))

    for index, first in leader_of.items():
        leader = answers[first]
        assert leader is not None
        answers[index] = Stored(duplicate=True, request_id=leader.request_id)
    return [answer for answer in answers if answer is not None]


_DELIVERY_COLUMNS = (
    "shop_domain",
    "topic",
    "webhook_id",
    "event_id",
    "api_version",
    "triggered_at",
    "received_at",
    "body_enc",
    "request_id",
)
_DELIVERY_RETURNING = ("topic", "webhook_id")
_DELIVERY_PG_TYPES = ("text", "text", "text", "text", "text", "text", "timestamptz", "text", "integer")
# Rows per statement: well under SQLite's and PostgreSQL's limits on bound parameters.
_ROWS_PER_STATEMENT = 500


def _sqlite_stamp(moment: datetime) -> str:
    # What UTCDateTime and SQLAlchemy's SQLite DATETIME store: naive UTC, always with microseconds,
    # so stored values compare as text the same whoever wrote them.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _aware_stamp(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _insert_many(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    returning: tuple[str, ...],
    rows: list[tuple[object, ...]],
) -> list[Any]:
    """Insert `rows`, skipping those that conflict on the table's unique key; the `returning`
    columns of the rows inserted.

    SQLite goes without RETURNING: it hands back each returned row in a step of its own, and the
    sqlite3 module lets go of the GIL around every step; in the writer thread, taking it back
    waits for the event loop's thread, so a 50-row RETURNING cost a batch up to 50 such waits.
    Instead the driver's row count and last row id say which ids the rows got: SQLite gives a new
    row "a ROWID that is one larger than the largest ROWID in the table prior to the insert" (its
    documentation on ROWIDs), rows go in in VALUES order, and this transaction holds the write lock
    from its first insert on, so the rows inserted hold the `inserted` ids up to the last one.
    When every row went in, the answer needs no query; otherwise the rows kept are read back.
    """
    if conn.dialect.name == "postgresql":
        pg_types = REQUEST_PG_TYPES if table == "requests" else _DELIVERY_PG_TYPES
        sql = unnest_insert_sql(table, columns, pg_types, returning)
        return list(
            conn.exec_driver_sql(sql, tuple(list(column) for column in zip(*rows, strict=True))).all()
        )
    picks = [None if name == "id" else columns.index(name) for name in returning]
    found: list[Any] = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        sql = _sqlite_insert_sql(table, columns, len(chunk))
        result = conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        inserted, last = result.rowcount, result.lastrowid
        if inserted == len(chunk):
            first = last - inserted + 1
            found.extend(
                tuple(first + n if pick is None else row[pick] for pick in picks)
                for n, row in enumerate(chunk)
            )
        elif inserted:
            query = f"SELECT {', '.join(returning)} FROM {table} WHERE id > ?"  # noqa: S608
            found.extend(conn.exec_driver_sql(query, (last - inserted,)).all())
    return found


# The unique key an intake insert may meet an earlier copy on: named, so that any other conflict
# is an error rather than a silently skipped row.
_CONFLICT_TARGETS = {
    "requests": ("shop_domain", "kind", "business_key"),
    "deliveries": ("topic", "webhook_id"),
}


@lru_cache(maxsize=1024)
def _sqlite_insert_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    """One multi-row insert per batch size, compiled once and kept in the driver's statement
    cache: SQLAlchemy's insertmanyvalues and per-row type processing cost more than the insert."""
    group = "(" + ",".join("?" * len(columns)) + ")"
    return (  # identifiers are this module's constants; every value is a bound parameter
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {','.join([group] * rows)} "  # noqa: S608
        f"ON CONFLICT ({', '.join(_CONFLICT_TARGETS[table])}) DO NOTHING"
    )


def _existing_request(conn: Connection, key: RequestKey) -> int | None:
    shop, kind, business_key = key
    statement = select(Request.id).where(
        Request.shop_domain == shop, Request.kind == kind, Request.business_key == business_key
    )
    return conn.execute(statement).scalar_one_or_none()


def _request_of_webhook(conn: Connection, webhook_key: tuple[str, str]) -> int | None:
    topic, webhook_id = webhook_key
    statement = select(Delivery.request_id).where(Delivery.topic == topic, Delivery.webhook_id == webhook_id)
    return conn.execute(statement).scalar_one_or_none()


def _writer_engine(database_url: str) -> Engine:
    """Intake's own SQLite engine, for the writer thread's connection.

    One connection kept open: closing a WAL database's last connection checkpoints and syncs it,
    which costs more than a batch. It is opened and used by the writer thread and closed by
    `close()` from another, hence check_same_thread off. The multi-row
    inserts come in one statement per table and batch size: the statement cache keeps them all.
    """
    url = make_url(database_url).set(drivername="sqlite+pysqlite")
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=1,  # the writer's
        max_overflow=0,
        hide_parameters=True,  # as `Database`: no values in logs or error messages
        connect_args={"check_same_thread": False, "cached_statements": 1024},
    )
    event.listen(engine, "connect", _writer_pragmas)
    return engine


def _writer_pragmas(dbapi_connection: sqlite3.Connection, record: object) -> None:
    sqlite_pragmas(dbapi_connection, record)
    # Durable before 2xx: with synchronous=NORMAL, SQLite's documentation says "A transaction
    # committed in WAL mode with synchronous=NORMAL might roll back following a power loss or
    # system crash", and Shopify does not resend a webhook it got a 2xx for. FULL syncs the
    # write-ahead log at every commit: one sync per batch, however many deliveries it holds.
    dbapi_connection.execute("PRAGMA synchronous=FULL")
    # Checkpoints are `IntakeStore._maybe_checkpoint`'s job; this is only the backstop.
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
    # Index pages read through a memory map instead of a read() call each: the unique indexes on
    # random keys (webhook ids, hashes) miss SQLite's small page cache.
    dbapi_connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")


@dataclass(slots=True)
class _Pending:
    item: Incoming
    future: asyncio.Future[Stored]
    deadline: float  # loop time by which the caller gets an answer, stored or not


def _collect_young_less_often() -> None:
    """A delivery waits for its group commit across several collections of the youngest
    generation, so its objects (request, coroutine frames, rows) are promoted to the oldest one
    although they die by reference count a few milliseconds later. Under load that set off a full
    collection about twice a second, each scanning the whole heap for ~70 ms and freeing nothing:
    the benchmark's p99, and a sixth of the event loop's time. Collecting the youngest generation
    less often lets them die first. Process-wide and idempotent; a higher threshold is kept."""
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class IntakeStore:
    """One per process: queues deliveries and writes them in as few transactions as possible."""

    def __init__(self, runtime: Runtime, max_batch: int = MAX_BATCH) -> None:
        _collect_young_less_often()
        self._runtime = runtime
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        # Every unanswered delivery, oldest first, and the timer that fails the overdue ones.
        self._waiting: deque[_Pending] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._sqlite: Engine | None = None
        self._sqlite_conn: Connection | None = None
        # SQLite (a file): deliveries go straight to intake's writer thread, which takes all that
        # are waiting whenever it is free (see `_run_writer`).
        self._threaded = runtime.db.is_sqlite and ":memory:" not in runtime.db.url
        self._writer: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._since_checkpoint = 0  # the writer thread's

    def _run_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Intake's writer thread, on the plain sqlite3 driver (aiosqlite would hop threads for
        every cursor call). Whenever it is free it takes every delivery waiting (up to a batch),
        writes them in one transaction, and hands the answers back to the loop in one call.

        The thread takes the next batch itself instead of waiting for the event loop to hand it
        over: the hand-over waited behind the loop's other callbacks (the previous batch's
        responses among them), and the writer stood idle for a third of the time."""
        stop = False
        while not stop and (first := self._jobs.get()) is not None:
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    waiting = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:  # `close()`: finish this batch, then stop
                    stop = True
                    break
                batch.append(waiting)
            outcomes = self._write_alone_if_refused(batch)
            loop.call_soon_threadsafe(self._settle_batch, batch, outcomes)
            self._maybe_checkpoint(len(batch))

    def _write_alone_if_refused(self, batch: list[_Pending]) -> list[Stored | BaseException]:
        try:
            return list(self._write_sqlite_batch([pending.item for pending in batch]))
        except Exception as exc:
            if _retry_alone(exc, len(batch)):
                return [outcome for pending in batch for outcome in self._write_alone_if_refused([pending])]
            return [exc] * len(batch)

    def _write_sqlite_batch(self, items: list[Incoming]) -> list[Stored]:
        if self._sqlite_conn is None:
            if self._sqlite is None:
                self._sqlite = _writer_engine(self._runtime.db.url)
            # Held across batches: checking a connection out and resetting it costs per batch.
            self._sqlite_conn = self._sqlite.connect()
        conn = self._sqlite_conn
        try:
            with conn.begin():
                return write_batch(conn, items, self._runtime.vault)
        except BaseException:
            # Whatever went wrong, the next batch starts on a fresh connection.
            self._sqlite_conn = None
            conn.close()
            raise

    def _maybe_checkpoint(self, written: int) -> None:
        """Every CHECKPOINT_EVERY deliveries, copy SQLite's write-ahead log into the database file,
        in the writer thread, after the batch's callers have their answers.

        The writer's own checkpoint copies every frame (nobody else appends meanwhile), so its next
        transaction starts the log over from the beginning. A checkpoint from another connection
        never caught up with a writer that keeps committing: the log only restarted when it hit
        SQLite's automatic checkpoint inside a commit, 40 MB later, stalling that batch for tens of
        milliseconds (the benchmark's p99). Committed rows are durable in the log either way."""
        self._since_checkpoint += written
        if self._since_checkpoint < CHECKPOINT_EVERY or self._sqlite_conn is None:
            return
        self._since_checkpoint = 0
        try:
            self._sqlite_conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
            self._sqlite_conn.commit()
        except SQLAlchemyError as exc:
            # The automatic checkpoint (at a higher threshold) still bounds the log.
            log.warning("intake checkpoint failed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._writer is not None:
            self._jobs.put(None)  # after every delivery already submitted
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._sqlite_conn is not None:
            await asyncio.to_thread(self._sqlite_conn.close)
            self._sqlite_conn = None
        if self._sqlite is not None:
            await asyncio.to_thread(self._sqlite.dispose)
            self._sqlite = None

    async def submit(self, item: Incoming) -> Stored:
        """Store `item` durably; returns after the commit. Database errors are raised here, and
        TimeoutError when no commit came within STORE_TIMEOUT."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        # Retrieved here so an error nobody waits for any more (the caller was cancelled just as it
        # was set) is never reported by the garbage collector.
        future.add_done_callback(_retrieve)
        pending = _Pending(item, future, loop.time() + STORE_TIMEOUT)
        self._waiting.append(pending)
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCH_EVERY, self._watch)
        if self._threaded:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._run_writer, args=(loop,), name="gallra-intake-writer", daemon=True
                )
                self._writer.start()
            self._jobs.put(pending)
        else:
            self._pending.append(pending)
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.create_task(self._drain())
        # Each caller has its own future and the write runs elsewhere (writer thread or drainer
        # task): a caller giving up (deadline, disconnect) cancels only its future, never the
        # write others share (no shield needed), and a cancelled future is skipped when the batch
        # settles (`_settle`).
        return await future

    def _watch(self) -> None:
        """Fail the deliveries waiting past their deadline with TimeoutError (the route answers
        503 and Shopify retries). One timer for all of them instead of one `asyncio.timeout` per
        delivery, which cost about as much as parsing it. A write still under way may commit such
        a delivery later; its retry is then acknowledged as a duplicate."""
        now = asyncio.get_running_loop().time()
        waiting = self._waiting
        while waiting and (waiting[0].future.done() or waiting[0].deadline <= now):
            _settle(waiting.popleft().future, TimeoutError())
        self._watchdog = asyncio.get_running_loop().call_later(WATCH_EVERY, self._watch) if waiting else None

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            await self._write(batch)

    async def _write(self, batch: list[_Pending]) -> None:
        """PostgreSQL (and an in-memory SQLite database, which exists only behind its own
        engine): the batch on the event loop, through the runtime's engine."""
        answers: Sequence[Stored | BaseException]
        try:
            async with self._runtime.db.engine.begin() as conn:
                answers = await conn.run_sync(write_batch, [p.item for p in batch], self._runtime.vault)
        except asyncio.CancelledError as exc:
            for pending in batch:
                _settle(pending.future, exc)
            raise
        except Exception as exc:
            if _retry_alone(exc, len(batch)):
                for pending in batch:
                    await self._write([pending])
                return
            answers = [exc] * len(batch)
        self._settle_batch(batch, answers)

    def _settle_batch(self, batch: list[_Pending], outcomes: Sequence[Stored | BaseException]) -> None:
        stored = False
        for pending, outcome in zip(batch, outcomes, strict=True):
            _settle(pending.future, outcome)
            if isinstance(outcome, Stored):
                stored = stored or not outcome.duplicate
                what = "duplicate" if outcome.duplicate else "stored"
                log.info(
                    "%s %s delivery for %s (request %s)",
                    what,
                    pending.item.topic,
                    pending.item.shop,
                    outcome.request_id,
                )
        if stored:
            self._runtime.work_available.set()


def _retry_alone(exc: Exception, size: int) -> bool:
    """Whether the deliveries of a batch that failed with `exc` are retried one by one;
    otherwise each of them fails with it (no 2xx)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return False  # the database is unreachable or refusing: the whole batch gets a 503
    if isinstance(exc, SQLAlchemyError):
        return size > 1  # a row the database refuses must not fail its neighbours
    log.error("intake batch failed: %s", type(exc).__name__)  # a bug, not the database
    return False


def _retrieve(future: asyncio.Future[Stored]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[Stored], outcome: Stored | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
