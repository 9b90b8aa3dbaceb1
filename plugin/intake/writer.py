"""Intake's SQLite writer: a process of its own that commits webhook deliveries.

A SQLite file has one writer at a time, and intake has it to itself in this process: the event
loop sends it every delivery that arrived during one turn of the loop as one message, and the
process writes whatever messages are waiting as one transaction (group commit), answers each of
them after the commit, and checkpoints the write-ahead log between transactions.

Why a process and not a thread: a writer thread shares the event loop's GIL. Every call into
sqlite3 lets go of the GIL and must take it back, and while the event loop is busy that waits
for its switch interval (5 ms), several times a transaction; the writer fell behind, and the
event loop then sat idle waiting for its answers, a third of the time under load. The
encryption of the rows (`Incoming.prepare`) is done here too, off the event loop.

The two talk over a private socket pair: length-prefixed pickles of `Batch` (parent to child),
`Answer` (child to parent), the `WriterConfig` first, and None to stop. The process also stops
when its socket closes, so it never outlives its parent.
"""

from __future__ import annotations

import logging
import pickle
import socket
import sqlite3
import struct
import sys
from dataclasses import dataclass
from itertools import islice
from typing import NamedTuple

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from plugin import logs
from plugin.crypto import Vault
from plugin.db import private_sqlite_file, sqlite_pragmas
from plugin.intake.batch import Incoming, Stored, retry_alone, write_batch

log = logging.getLogger("gallra.intake.writer")

# SQLite: the log size in pages at which SQLite checkpoints inside a commit anyway (its default
# is 1000; ours is a backstop only, `_Writer.maybe_checkpoint` does it between transactions).
BACKSTOP_CHECKPOINT_PAGES = 10_000
MMAP_BYTES = 256 * 1024 * 1024
_LENGTH = struct.Struct("!I")
HEADER_BYTES = _LENGTH.size  # before each message: its length
READY = "ready"  # the child's first message, once it has its configuration


@dataclass(frozen=True, slots=True)
class WriterConfig:
    database_url: str
    vault: Vault
    max_batch: int  # deliveries per transaction
    checkpoint_every: int  # deliveries between two checkpoints
    log_level: int


class Batch(NamedTuple):  # a tuple: pickled by C code, unlike a slots dataclass
    id: int
    items: list[Incoming]


class Answer(NamedTuple):
    id: int
    # Per item: what was stored, or the class name of the error that kept it from being stored.
    outcomes: list[Stored | str]
    transactions: int  # committed for this batch (0 when it shared an earlier batch's)


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def unframe_length(header: bytes) -> int:
    (length,) = _LENGTH.unpack(header)
    return int(length)


class _Inbox:
    """The child's end of the socket: whole messages, as many as have arrived."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def take(self) -> list[object]:
        """Every message that has arrived, waiting for the first. EOFError when the parent is gone."""
        while True:
            messages = self._complete()
            if messages:
                return messages
            data = self._sock.recv(1 << 20)
            if not data:
                raise EOFError
            self._buffer += data
            try:  # and whatever else is already there, without waiting for it
                while more := self._sock.recv(1 << 20, socket.MSG_DONTWAIT):
                    self._buffer += more
            except BlockingIOError:
                pass

    def _complete(self) -> list[object]:
        messages: list[object] = []
        at = 0
        while len(self._buffer) - at >= _LENGTH.size:
            length = unframe_length(bytes(self._buffer[at : at + _LENGTH.size]))
            end = at + _LENGTH.size + length
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[at + _LENGTH.size : end]))  # noqa: S301  (our parent)
            at = end
        del self._buffer[:at]
        return messages


def writer_engine(database_url: str) -> Engine:
    """The writer's SQLite engine: one connection, kept open (closing a WAL database's last
    connection checkpoints and syncs it, which costs more than a batch). The multi-row inserts
    come in one statement per table and batch size: the statement cache keeps them all."""
    private_sqlite_file(database_url)
    url = make_url(database_url).set(drivername="sqlite+pysqlite")
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        hide_parameters=True,  # as `Database`: no values in logs or error messages
        connect_args={"cached_statements": 1024},
    )
    event.listen(engine, "connect", _writer_pragmas)
    return engine


def _writer_pragmas(dbapi_connection: sqlite3.Connection, record: object) -> None:
    sqlite_pragmas(dbapi_connection, record)
    # Durable before 2xx: with synchronous=NORMAL, SQLite's documentation says "A transaction
    # committed in WAL mode with synchronous=NORMAL might roll back following a power loss or
    # system crash", and Shopify does not resend a webhook it got a 2xx for. FULL syncs the
    # write-ahead log at every commit: one sync per transaction, however many deliveries it holds.
    dbapi_connection.execute("PRAGMA synchronous=FULL")
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
    # Index pages read through a memory map instead of a read() call each: the unique indexes on
    # random keys (webhook ids, hashes) miss SQLite's small page cache.
    dbapi_connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")


class _Writer:
    def __init__(self, config: WriterConfig) -> None:
        self._config = config
        self._engine = writer_engine(config.database_url)
        self._conn: Connection | None = None
        self._since_checkpoint = 0

    def write(self, items: list[Incoming]) -> tuple[list[Stored | str], int]:
        """One answer per item, and the number of transactions committed for them."""
        outcomes: list[Stored | str] = []
        transactions = 0
        for start in range(0, len(items), self._config.max_batch):
            chunk = items[start : start + self._config.max_batch]
            chunk_outcomes, committed = self._write_alone_if_refused(chunk)
            outcomes += chunk_outcomes
            transactions += committed
        return outcomes, transactions

    def _write_alone_if_refused(self, items: list[Incoming]) -> tuple[list[Stored | str], int]:
        try:
            return list(self._write_once(items)), 1
        except Exception as exc:
            if retry_alone(exc, len(items)):
                outcomes: list[Stored | str] = []
                transactions = 0
                for item in items:
                    alone, committed = self._write_alone_if_refused([item])
                    outcomes += alone
                    transactions += committed
                return outcomes, transactions
            log.warning("intake write failed: %s", type(exc).__name__)  # the class only, no values
            return [type(exc).__name__] * len(items), 0

    def _write_once(self, items: list[Incoming]) -> list[Stored]:
        if self._conn is None:
            # Held across transactions: checking a connection out and resetting it costs per batch.
            self._conn = self._engine.connect()
        conn = self._conn
        try:
            with conn.begin():
                return write_batch(conn, items, self._config.vault)
        except BaseException:
            # Whatever went wrong, the next batch starts on a fresh connection.
            self._conn = None
            conn.close()
            raise

    def maybe_checkpoint(self, written: int) -> None:
        """Every `checkpoint_every` deliveries, copy the write-ahead log into the database file,
        after the batch's callers have their answers.

        The writer's own checkpoint copies every frame (nobody else appends meanwhile), so its next
        transaction starts the log over from the beginning. A checkpoint from another connection
        never caught up with a writer that keeps committing: the log only restarted when it hit
        SQLite's automatic checkpoint inside a commit, 40 MB later, stalling that batch for tens of
        milliseconds (the benchmark's p99). Committed rows are durable in the log either way."""
        self._since_checkpoint += written
        if self._since_checkpoint < self._config.checkpoint_every or self._conn is None:
            return
        self._since_checkpoint = 0
        try:
            self._conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
            self._conn.commit()
        except SQLAlchemyError as exc:
            # The automatic checkpoint (at a higher threshold) still bounds the log.
            log.warning("intake checkpoint failed: %s", type(exc).__name__)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._engine.dispose()


def serve(sock: socket.socket) -> None:
    """The writer process's loop: take every batch waiting, write them together, answer each."""
    inbox = _Inbox(sock)
    first, *rest = inbox.take()
    if not isinstance(first, WriterConfig):
        raise TypeError("the first message to intake's writer must be its WriterConfig")
    logs.configure(first.log_level)
    log.debug("intake's writer process started")
    writer = _Writer(first)
    sock.sendall(frame(READY))
    waiting: list[object] = rest
    try:
        while True:
            messages = waiting or inbox.take()
            waiting = []
            batches = _until_stop(messages)
            if batches:
                _answer(sock, writer, batches)
            if len(batches) < len(messages):  # None: the parent asked us to stop
                return
    except EOFError:
        return  # the parent is gone (or closed its end): nothing left to answer
    finally:
        writer.close()


def _until_stop(messages: list[object]) -> list[Batch]:
    batches: list[Batch] = []
    for message in messages:
        if message is None:
            break
        if not isinstance(message, Batch):
            raise TypeError(f"unexpected message for intake's writer: {type(message).__name__}")
        batches.append(message)
    return batches


def _answer(sock: socket.socket, writer: _Writer, batches: list[Batch]) -> None:
    items = [item for batch in batches for item in batch.items]
    outcomes, transactions = writer.write(items)
    replies = bytearray()
    taken = iter(outcomes)
    for index, batch in enumerate(batches):
        mine = list(islice(taken, len(batch.items)))
        replies += frame(Answer(batch.id, mine, transactions if index == 0 else 0))
    sock.sendall(replies)
    writer.maybe_checkpoint(len(items))


def main(argv: list[str]) -> None:
    """`python -m plugin.intake.writer FD`: serve the socket inherited as file descriptor FD."""
    with socket.socket(fileno=int(argv[1])) as sock:
        serve(sock)


if __name__ == "__main__":
    # Through the module as imported, not `__main__`: the parent's pickles name its classes
    # (plugin.intake.writer.WriterConfig), which `__main__`'s copies are not.
    from plugin.intake import writer

    writer.main(sys.argv)
