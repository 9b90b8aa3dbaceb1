"""One batch of verified deliveries, written in the caller's transaction: each delivery and its
ledger request together, duplicates answered without writing anything.

Duplicates are caught by unique indexes, so concurrent instances agree: by the request's business
key and by `(topic, webhook id)` for the delivery. Within one batch they are caught before the
database sees them. Used by `plugin.intake.store` (PostgreSQL, in the event loop) and by
`plugin.intake.writer` (SQLite, in intake's writer process).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from plugin.crypto import Vault
from plugin.intake.headers import WebhookHeaders
from plugin.intake.payloads import CustomersMerge, parse
from plugin.ledger import (
    REQUEST_COLUMNS,
    REQUEST_PG_TYPES,
    REQUEST_RETURNING,
    NewRequest,
    RequestKey,
    insert_ignoring_conflicts,
    unnest_insert_sql,
)
from plugin.models import CustomerMerge, Delivery, Request, Shop, delivery_cell, utcnow
from plugin.states import MergeState, ShopStatus

log = logging.getLogger("gallra.intake")


@dataclass(frozen=True, slots=True)
class Stored:
    duplicate: bool
    request_id: int | None

    def __reduce__(self) -> tuple[type[Stored], tuple[bool, int | None]]:
        # As its fields: the writer process sends one per delivery (see NewRequest.__reduce__).
        return (Stored, (self.duplicate, self.request_id))


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
        """Encrypt and lay out both rows, just before they are written (`write_batch`): on SQLite
        in intake's writer process, off the event loop that serves every HTTP request."""
        stamp = _sqlite_stamp if sqlite else _aware_stamp
        if self.request is not None:
            self.request_values = self.request.values(vault, stamp, 0 if sqlite else False)
            received = self.request_values[_REQUEST_RECEIVED]  # the same moment (`__post_init__`)
        else:
            received = stamp(self.received_at)
        headers = self.headers
        self.delivery_head = (
            self.shop,
            self.topic,
            headers.webhook_id,
            headers.event_id,
            headers.api_version,
            headers.triggered_at,
            received,
            vault.encrypt(self.body, delivery_cell(self.shop)),
        )

    def __reduce__(self) -> tuple[type[Incoming], tuple[object, ...]]:
        # What the writer process needs, as plain arguments (see NewRequest.__reduce__).
        return (
            Incoming,
            (self.topic, self.shop, self.headers, self.body, self.request, self.uninstall, self.received_at),
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


SHOP_UPDATE = "shop/update"


def mark_details_stale(conn: Connection, shop: str, received_at: datetime) -> None:
    """Record that a `shop/update` delivery says the shop changed. Its details are read again off
    the request path, from the Admin API (`plugin.shopify.details`), not from this body: what
    Gallra stores comes from one reading, and the owner's overrides are applied in one place.
    The latest delivery's time is kept, so a reading that began before it does not clear it."""
    conn.execute(
        update(Shop)
        .where(Shop.domain == shop, Shop.status == ShopStatus.ACTIVE)
        .values(details_stale_at=received_at)
    )


def claim_uninstall(conn: Connection, shop: str, triggered_at: str | None, received_at: datetime) -> None:
    """Record that an `app/uninstalled` delivery claims the shop was uninstalled.

    Nothing else changes here: the shop keeps its status and tokens until the claim is confirmed
    off the request path (`plugin.pipelines.uninstall`: Shopify refusing the shop's token), since
    the delivery may be a replay of one from before a reinstall. Only an installed (active) shop
    row is touched, never created. The earliest unconfirmed claim is kept. A delivery whose
    triggered-at header says it fired before the shop's latest install is ignored at once: the
    header is unsigned, but it can only make Gallra ignore a claim, never act on one.
    """
    statement = (
        update(Shop)
        .where(Shop.domain == shop, Shop.status == ShopStatus.ACTIVE, Shop.uninstall_claimed_at.is_(None))
        .values(uninstall_claimed_at=received_at)
    )
    triggered = _parse_time(triggered_at)
    if triggered is not None:
        statement = statement.where(or_(Shop.installed_at.is_(None), Shop.installed_at <= triggered))
    conn.execute(statement)


CUSTOMERS_MERGE = "customers/merge"


def merge_key(merge: CustomersMerge) -> str:
    """A merge's business key: the same merge under a new webhook id (a replay) is a duplicate."""
    job = merge.admin_graphql_api_job_id or "-"
    return f"{merge.kept_id}<{merge.deleted_id}|{merge.status.strip().lower()}|{job}"[:255]


def record_merge(conn: Connection, shop: str, body: bytes, received_at: datetime) -> None:
    """Record a `customers/merge` delivery for the clocks to apply (`plugin.pipelines.merges`):
    moving a customer's requests is work, and no work happens on the request path. The body was
    parsed before it was accepted; it is parsed again here rather than carried to intake's
    writer process beside the body (merges are rare, deliveries are not)."""
    merge = parse(CUSTOMERS_MERGE, body)
    assert isinstance(merge, CustomersMerge)
    conn.execute(
        insert_ignoring_conflicts(conn.dialect.name, CustomerMerge).values(
            shop_domain=shop,
            business_key=merge_key(merge),
            kept_customer_id=merge.kept_id,
            deleted_customer_id=merge.deleted_id,
            job_id=merge.admin_graphql_api_job_id,
            status=merge.status.strip().lower()[:32],
            state=MergeState.RECEIVED,
            received_at=received_at,
        )
    )


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
    intake's writer process for SQLite, through `AsyncConnection.run_sync` for PostgreSQL) saves a
    loop round trip per driver call, which is most of the cost of a webhook. The two inserts are
    one multi-row statement each, written in the driver's own terms (`_insert_many`).
    """
    sqlite = conn.dialect.name == "sqlite"
    for item in items:
        item.prepare(vault, sqlite)
    answers: list[Stored | None] = [None] * len(items)
    leader_of = _leaders(items)
    leaders = [index for index in range(len(items)) if index not in leader_of]
    if earlier := _stored_under_other_keys(conn, [items[i].request for i in leaders]):
        for index in leaders:
            request = items[index].request
            if request is not None and request.key in earlier:
                answers[index] = Stored(duplicate=True, request_id=earlier[request.key])
        leaders = [index for index in leaders if answers[index] is None]

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
            claim_uninstall(conn, item.shop, item.headers.triggered_at, item.received_at)
        elif item.topic == SHOP_UPDATE:
            mark_details_stale(conn, item.shop, item.received_at)
        elif item.topic == CUSTOMERS_MERGE:
            record_merge(conn, item.shop, item.body, item.received_at)
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
_REQUEST_RECEIVED = REQUEST_COLUMNS.index("received_at")
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

    SQLite goes without RETURNING, which hands back each returned row in a step of its own (a
    call through the sqlite3 module, letting go of the GIL and taking it back, per row). Instead
    the driver's row count and last row id say which ids the rows got: SQLite gives a new
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


def _stored_under_other_keys(conn: Connection, requests: list[NewRequest | None]) -> dict[RequestKey, int]:
    """Requests of the batch already stored under another form of their key (hashed with the
    previous key during a rotation, or before hashes carried their key id): key -> stored id.
    One query, and only for a batch holding a key made of a hash (rare: Shopify's bodies name the
    customer or the data request by id)."""
    wanted = {
        (request.shop_domain, request.kind, other): request.key
        for request in requests
        if request is not None
        for other in request.other_keys
    }
    if not wanted:
        return {}
    statement = select(Request.shop_domain, Request.kind, Request.business_key, Request.id).where(
        or_(
            *(
                and_(Request.shop_domain == shop, Request.kind == kind, Request.business_key == key)
                for shop, kind, key in wanted
            )
        )
    )
    return {wanted[(shop, kind, key)]: request_id for shop, kind, key, request_id in conn.execute(statement)}


def _request_of_webhook(conn: Connection, webhook_key: tuple[str, str]) -> int | None:
    topic, webhook_id = webhook_key
    statement = select(Delivery.request_id).where(Delivery.topic == topic, Delivery.webhook_id == webhook_id)
    return conn.execute(statement).scalar_one_or_none()


def retry_alone(exc: Exception, size: int) -> bool:
    """Whether the deliveries of a batch that failed with `exc` are retried one by one;
    otherwise each of them fails with it (no 2xx)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return False  # the database is unreachable or refusing: the whole batch gets a 503
    if isinstance(exc, SQLAlchemyError):
        return size > 1  # a row the database refuses must not fail its neighbours
    log.error("intake batch failed: %s", type(exc).__name__)  # a bug, not the database
    return False
