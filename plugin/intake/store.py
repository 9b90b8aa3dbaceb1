"""Durable before 2xx: each delivery and its ledger request are written in one transaction
(`plugin.intake.batch`), and a caller gets its answer only after the commit that holds its rows.

Group commit: deliveries that arrive while a write is in flight wait and are written together in
the next transaction, so one process serves many webhooks per commit. On a SQLite file the
writing is done by intake's writer process (`plugin.intake.writer`), which has the database's one
write lock to itself; on PostgreSQL (and an in-memory SQLite database, which exists only behind
this process's engine) a drainer task writes through the runtime's engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from plugin.intake.batch import Incoming, Stored, retry_alone, write_batch
from plugin.intake.writer import HEADER_BYTES, READY, Answer, Batch, WriterConfig, frame, unframe_length
from plugin.runtime import Runtime

log = logging.getLogger("gallra.intake")

# Rows per transaction; more waiting deliveries go in the next one.
MAX_BATCH = 500
# Shopify gives up after 5 s; answering 503 before that makes it retry instead of timing out.
# Deadlines are checked every WATCH_EVERY seconds, so an answer comes within their sum.
STORE_TIMEOUT = 3.75
WATCH_EVERY = 0.25
# SQLite: deliveries written between two checkpoints of the write-ahead log (a few pages each).
# A checkpoint holds up the next transaction while it copies and syncs: small ones often spread
# that (benchmark p99 43 ms at 100 against 90 ms at 500, at the same throughput).
CHECKPOINT_EVERY = 100


class WriteFailed(SQLAlchemyError):
    """The writer process could not store a delivery; the message names the error class only."""


class WriterGone(ConnectionError):
    """Intake's writer process stopped before it answered."""


@dataclass(slots=True, eq=False)  # hashed by identity: a key of `IntakeStore._waiting`
class _Pending:
    item: Incoming
    future: asyncio.Future[Stored]
    deadline: float  # loop time by which the caller gets an answer, stored or not


class _WriterProcess:
    """The parent's end of intake's writer process: sends batches, matches answers to them."""

    def __init__(
        self, process: asyncio.subprocess.Process, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer
        self.in_flight: dict[int, list[_Pending]] = {}
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, config: WriterConfig) -> _WriterProcess:
        """Start the process and wait until it has its configuration and is ready to write."""
        ours, theirs = socket.socketpair()
        try:
            # -P and PYTHONPATH: the child imports from exactly where this process does.
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",
                "-m",
                "plugin.intake.writer",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        started = cls(process, reader, writer)
        writer.write(frame(config))
        try:
            ready = await started._receive()
        except (EOFError, OSError):
            ready = None
        if ready != READY:
            await started.wait_closed()
            raise WriterGone("intake's writer process did not start")
        return started

    async def _receive(self) -> object:
        length = unframe_length(await self.reader.readexactly(HEADER_BYTES))
        return pickle.loads(await self.reader.readexactly(length))  # noqa: S301  (our child)

    def send(self, batch: list[_Pending]) -> None:
        batch_id = next(self._ids)
        self.in_flight[batch_id] = batch
        self.writer.write(frame(Batch(batch_id, [pending.item for pending in batch])))

    async def answer(self) -> tuple[list[_Pending], Answer]:
        """The next answer and the batch it is for; EOFError once the process is gone."""
        answer = await self._receive()
        if not isinstance(answer, Answer):
            raise TypeError(f"unexpected message from intake's writer: {type(answer).__name__}")
        return self.in_flight.pop(answer.id), answer

    async def stop(self) -> None:
        """Ask the process to stop once it has answered every batch sent (it then closes its end,
        which ends `IntakeStore._read_answers`)."""
        if not self.writer.is_closing():
            self.writer.write(frame(None))
            await self.writer.drain()

    async def wait_closed(self) -> None:
        self.writer.close()
        await self.process.wait()


class IntakeStore:
    """One per process: queues deliveries and writes them in as few transactions as possible."""

    def __init__(self, runtime: Runtime, max_batch: int = MAX_BATCH) -> None:
        self._runtime = runtime
        self._max_batch = max_batch
        self._pending: list[_Pending] = []  # not yet handed to a write
        # Every unanswered delivery, oldest first (a dict keeps insertion order), and the timer that
        # fails the overdue ones. A delivery leaves it as soon as its caller has an answer: kept
        # until the next tick, every answered delivery (its body, rows, future) outlived two
        # young-generation collections, and the garbage collector's full passes over the whole
        # heap, which stall the event loop, came several times as often.
        self._waiting: dict[_Pending, None] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._connection: AsyncConnection | None = None  # the drainer's, between batches
        # A SQLite file: intake's writer process, started on first use and again if it stops.
        self._separate = runtime.db.is_sqlite and ":memory:" not in runtime.db.url
        self._process: _WriterProcess | None = None
        self._starting: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._flush_due = False
        self._closing = False
        self.transactions = 0  # committed so far: far fewer than deliveries, by group commit

    async def start(self) -> None:
        """Start the writer process (a SQLite file) now, so that the first delivery does not wait
        ~1 s for it to start; if it cannot, the first delivery tries again."""
        if self._separate and self._process is None:
            self._start_writer_soon()
            if self._starting is not None:
                await self._starting

    async def submit(self, item: Incoming) -> Stored:
        """Store `item` durably; returns after the commit. Database errors are raised here, and
        TimeoutError when no commit came within STORE_TIMEOUT."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        pending = _Pending(item, future, loop.time() + STORE_TIMEOUT)
        self._waiting[pending] = None
        if self._watchdog is None:
            self._watchdog = loop.call_later(WATCH_EVERY, self._watch)
        self._pending.append(pending)
        if not self._separate:
            if self._drainer is None or self._drainer.done():
                self._drainer = asyncio.create_task(self._drain())
        elif self._process is None:
            self._start_writer_soon()
        elif not self._flush_due:
            # Everything submitted in this turn of the loop goes to the writer as one message.
            self._flush_due = True
            loop.call_soon(self._flush)
        # Each caller has its own future and the write runs elsewhere (writer process or drainer
        # task): a caller giving up (deadline, disconnect) cancels only its future, never the
        # write others share, and a cancelled future is skipped when the batch settles (`_settle`).
        try:
            return await future
        finally:
            self._waiting.pop(pending, None)
            # Retrieved so that an error nobody waits for any more (the caller was cancelled just
            # as it was set) is never reported by the garbage collector.
            if future.done() and not future.cancelled():
                future.exception()

    def _start_writer_soon(self) -> None:
        """Start the writer process in the background, within the waiting deliveries' deadlines;
        it sends them once it is up."""
        if not self._closing and (self._starting is None or self._starting.done()):
            self._starting = asyncio.create_task(self._start_writer())

    async def _start_writer(self) -> None:
        config = WriterConfig(
            database_url=self._runtime.db.url,
            vault=self._runtime.vault,
            max_batch=self._max_batch,
            checkpoint_every=CHECKPOINT_EVERY,
            log_level=logging.getLogger("gallra").getEffectiveLevel(),
        )
        try:
            process = await _WriterProcess.start(config)
        except (WriterGone, OSError) as exc:
            log.warning("intake's writer process did not start: %s", type(exc).__name__)
            failed, self._pending = self._pending, []
            for pending in failed:
                _settle(pending.future, WriterGone("intake's writer process did not start"))
            return
        self._process = process
        reader = asyncio.create_task(self._read_answers(process))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        self._flush()

    def _flush(self) -> None:
        self._flush_due = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        if self._process is None:  # stopped since these were submitted: they go to the next one
            self._pending[:0] = batch
            self._start_writer_soon()
            return
        self._process.send(batch)

    async def _read_answers(self, process: _WriterProcess) -> None:
        try:
            while True:
                batch, answer = await process.answer()
                self.transactions += answer.transactions
                outcomes = [
                    outcome if isinstance(outcome, Stored) else WriteFailed(f"intake writer: {outcome}")
                    for outcome in answer.outcomes
                ]
                self._settle_batch(batch, outcomes)
        except (EOFError, OSError):
            if not self._closing:
                log.warning("intake's writer process stopped; it is started again for the next delivery")
        finally:
            if self._process is process:
                self._process = None
            gone = WriterGone("intake's writer process stopped")
            for batch in process.in_flight.values():
                for pending in batch:
                    _settle(pending.future, gone)
            process.in_flight.clear()
            if self._pending:
                self._start_writer_soon()
            await process.wait_closed()

    async def close(self) -> None:
        """Finish every delivery submitted, then stop the writer process (if any)."""
        self._closing = True
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await self._release_connection()
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._process is not None:
            self._flush()
            await self._process.stop()
        if self._readers:
            await asyncio.gather(*self._readers, return_exceptions=True)
        unsent, self._pending = self._pending, []  # the writer stopped before they could be sent
        for pending in unsent:
            _settle(pending.future, WriterGone("intake's writer process stopped"))
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watch(self) -> None:
        """Fail the deliveries waiting past their deadline with TimeoutError (the route answers
        503 and Shopify retries). One timer for all of them instead of one `asyncio.timeout` per
        delivery, which cost about as much as parsing it. A write still under way may commit such
        a delivery later; its retry is then acknowledged as a duplicate."""
        now = asyncio.get_running_loop().time()
        waiting = self._waiting
        overdue = list(itertools.takewhile(lambda pending: pending.deadline <= now, waiting))
        for pending in overdue:
            del waiting[pending]
            _settle(pending.future, TimeoutError())
        self._watchdog = asyncio.get_running_loop().call_later(WATCH_EVERY, self._watch) if waiting else None

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            await self._write(batch)
        if self._closing:  # a delivery submitted during shutdown: its drainer tidies up after it
            await self._release_connection()

    async def _release_connection(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()

    async def _write(self, batch: list[_Pending]) -> None:
        """PostgreSQL (and an in-memory SQLite database): the batch on the event loop, through
        the runtime's engine."""
        answers: Sequence[Stored | BaseException]
        try:
            answers = await self._write_once([p.item for p in batch])
            self.transactions += 1
        except asyncio.CancelledError as exc:
            for pending in batch:
                _settle(pending.future, exc)
            raise
        except Exception as exc:
            if retry_alone(exc, len(batch)):
                for pending in batch:
                    await self._write([pending])
                return
            answers = [exc] * len(batch)
        self._settle_batch(batch, answers)

    async def _write_once(self, items: list[Incoming]) -> list[Stored]:
        """One transaction on the drainer's own connection, held from one batch to the next:
        checking a connection out of the pool per batch cost a liveness ping and a reset, each a
        round trip the waiting deliveries waited for. A connection found dead (the server restarted
        since the last batch) is replaced once, as the pool's ping would have; whatever else fails
        is raised, and the next batch starts on a new connection."""
        for attempt in (1, 2):
            conn = self._connection
            if conn is None:
                conn = self._connection = await self._runtime.db.engine.connect()
            try:
                async with conn.begin():
                    return await conn.run_sync(write_batch, items, self._runtime.vault)
            except BaseException as exc:
                self._connection = None
                with contextlib.suppress(Exception):
                    await conn.close()
                # Written again only if the connection was gone: had the commit gone through before
                # that, its rows are found again by their keys and answered as duplicates.
                if attempt == 1 and isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    continue
                raise
        raise AssertionError("unreachable")

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


def _settle(future: asyncio.Future[Stored], outcome: Stored | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        future.cancel()
    elif isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
