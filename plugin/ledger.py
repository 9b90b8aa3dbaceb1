"""The ledger: one row per privacy request, its subject, its legal deadline and its state.

It is the source of truth and the work queue. This module creates rows (idempotently: a request
that is already there is never created twice, whichever instance sees it first) and reads them for
the executor, the admin UI and the CLI. E-mail and phone are stored encrypted plus a keyed per-shop
hash for look-up; nothing here logs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from plugin.crypto import Cell, Vault
from plugin.models import Base, Request, Shop, request_cell, utcnow
from plugin.states import RequestStatus

# Shopify: complete the action within 30 days of receiving the request.
RESPONSE_PERIOD = timedelta(days=30)

KINDS = ("data_request", "customer_redact", "shop_redact")
TOPIC_KINDS = {
    "customers/data_request": "data_request",
    "customers/redact": "customer_redact",
    "shop/redact": "shop_redact",
}
OPEN_STATUSES = (
    RequestStatus.RECEIVED,
    RequestStatus.PLANNING,
    RequestStatus.IN_PROGRESS,
    RequestStatus.AWAITING,
    RequestStatus.ON_HOLD,
)

# Business keys are short and readable when they can be; long order lists are digested so the key
# fits its column whatever the payload.
_MAX_READABLE_KEY = 200


def insert_ignoring_conflicts(dialect: str, model: type[Base]) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` for `dialect` ("sqlite" or "postgresql").

    Under concurrency the unique index decides: on PostgreSQL a second insert of the same key waits
    for the first transaction and then does nothing; on SQLite writers are serialised anyway.
    """
    # On the Core table, not the ORM entity: the ORM's bulk-insert bookkeeping costs more per row
    # than the insert itself, and these statements return plain rows anyway.
    table = cast(Table, model.__table__)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def dialect_of(session: AsyncSession | Session) -> str:
    return session.get_bind().dialect.name


def insert_requests_statement(dialect: str) -> Insert:
    """The multi-row insert of requests: pass `NewRequest.row()` dicts; returns the created rows'
    (id, shop_domain, kind, business_key), skipping those whose business key exists."""
    return insert_ignoring_conflicts(dialect, Request).returning(
        Request.id, Request.shop_domain, Request.kind, Request.business_key
    )


# The columns a new request is written with, in the order `NewRequest.values()` gives them. Every
# column with a Python-side default in the model is here, so raw inserts leave nothing unset.
REQUEST_COLUMNS = (
    "shop_domain",
    "kind",
    "business_key",
    "shopify_shop_id",
    "customer_id",
    "email_enc",
    "email_hash",
    "phone_enc",
    "phone_hash",
    "order_ids",
    "data_request_id",
    "received_at",
    "due_at",
    "status",
    "dry_run",
    "attempts",
    "next_attempt_at",
    "updated_at",
)
REQUEST_RETURNING = ("id", "shop_domain", "kind", "business_key")
# PostgreSQL array types the values of REQUEST_COLUMNS travel in (see `unnest_insert_sql`).
REQUEST_PG_TYPES = (
    "text",
    "text",
    "text",
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "text",
    "json",
    "bigint",
    "timestamptz",
    "timestamptz",
    "text",
    "boolean",
    "integer",
    "timestamptz",
    "timestamptz",
)


@lru_cache(maxsize=64)
def unnest_insert_sql(
    table: str, columns: tuple[str, ...], pg_types: tuple[str, ...], returning: tuple[str, ...]
) -> str:
    """PostgreSQL: `INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT DO NOTHING
    RETURNING ...`. One statement text whatever the number of rows, so the driver prepares it once
    per connection (a multi-row VALUES list is a new statement for every batch size). JSON travels
    as text and is cast, so the driver's own JSON codec is not involved."""
    names = [f"c{i}" for i in range(len(columns))]
    arrays = ", ".join(f"${i + 1}::{'text' if kind == 'json' else kind}[]" for i, kind in enumerate(pg_types))
    picks = ", ".join(
        f"{name}::json" if kind == "json" else name for name, kind in zip(names, pg_types, strict=True)
    )
    return (  # identifiers are this module's constants; every value is a bound parameter
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picks} FROM unnest({arrays}) "  # noqa: S608
        f"AS given({', '.join(names)}) ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}"
    )


def orders_key(order_ids: Sequence[int]) -> str:
    joined = ",".join(str(order) for order in sorted(set(order_ids)))
    if len(joined) <= _MAX_READABLE_KEY:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


# (shop domain, kind, business key): what makes a request unique.
RequestKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class NewRequest:
    """A privacy request as intake hands it to the ledger. `email`/`phone` are plaintext here only."""

    kind: str
    shop_domain: str
    business_key: str
    shopify_shop_id: int | None = None
    customer_id: int | None = None
    email: str | None = None
    phone: str | None = None
    order_ids: list[int] = field(default_factory=list)
    data_request_id: int | None = None
    received_at: datetime = field(default_factory=utcnow)
    # The business keys the same request has when stored under the previous key, or before look-up
    # hashes carried their key id (a key that holds a keyed hash): intake's dedupe looks for them.
    other_keys: tuple[str, ...] = ()

    @property
    def key(self) -> RequestKey:
        return (self.shop_domain, self.kind, self.business_key)

    def __reduce__(self) -> tuple[type[NewRequest], tuple[object, ...]]:
        # Pickled as its fields (intake sends requests to its writer process): the generic
        # state of a frozen slots dataclass goes through Python code, several times slower.
        return (
            NewRequest,
            (
                self.kind,
                self.shop_domain,
                self.business_key,
                self.shopify_shop_id,
                self.customer_id,
                self.email,
                self.phone,
                self.order_ids,
                self.data_request_id,
                self.received_at,
                self.other_keys,
            ),
        )

    def cell(self, column: str) -> Cell:
        return request_cell(column, self.shop_domain, self.kind, self.business_key)

    def values(self, vault: Vault, stamp: Callable[[datetime], object], false: object) -> tuple[object, ...]:
        """The row in `REQUEST_COLUMNS` order for a raw insert; `stamp` turns an aware datetime into
        what the driver stores for it (as the column type would), `false` is the driver's false."""
        if self.kind not in KINDS and self.kind != "sweep":
            raise ValueError(f"unknown request kind {self.kind!r}")
        received = stamp(self.received_at)
        shop = self.shop_domain
        email, phone = self.email, self.phone
        return (
            shop,
            self.kind,
            self.business_key,
            self.shopify_shop_id,
            self.customer_id,
            vault.encrypt(email, self.cell("email_enc")) if email is not None else None,
            vault.email_hash(shop, email) if email else None,
            vault.encrypt(phone, self.cell("phone_enc")) if phone is not None else None,
            vault.phone_hash(shop, phone) if phone else None,
            # What json.dumps writes for a list of ints, without its encoder machinery.
            "[" + ", ".join(str(order) for order in sorted(set(self.order_ids))) + "]",
            self.data_request_id,
            received,
            stamp(self.received_at + RESPONSE_PERIOD),
            RequestStatus.RECEIVED.value,
            false,
            0,
            received,
            received,
        )

    def row(self, vault: Vault) -> dict[str, Any]:
        if self.kind not in KINDS and self.kind != "sweep":
            raise ValueError(f"unknown request kind {self.kind!r}")
        return {
            "shop_domain": self.shop_domain,
            "kind": self.kind,
            "business_key": self.business_key,
            "shopify_shop_id": self.shopify_shop_id,
            "customer_id": self.customer_id,
            "email_enc": vault.encrypt(self.email, self.cell("email_enc")),
            "email_hash": vault.email_hash(self.shop_domain, self.email),
            "phone_enc": vault.encrypt(self.phone, self.cell("phone_enc")),
            "phone_hash": vault.phone_hash(self.shop_domain, self.phone),
            "order_ids": sorted(set(self.order_ids)),
            "data_request_id": self.data_request_id,
            "received_at": self.received_at,
            "due_at": self.received_at + RESPONSE_PERIOD,
            "status": RequestStatus.RECEIVED,
            "attempts": 0,
            "next_attempt_at": self.received_at,
        }


async def insert_request(session: AsyncSession, vault: Vault, new: NewRequest) -> int | None:
    """Create the request; its id, or None if one with the same business key already exists."""
    rows = await session.execute(insert_requests_statement(dialect_of(session)), [new.row(vault)])
    return next((request_id for request_id, *_ in rows), None)


async def find_request_id(
    session: AsyncSession, shop_domain: str, kind: str, business_key: str
) -> int | None:
    statement = select(Request.id).where(
        Request.shop_domain == shop_domain, Request.kind == kind, Request.business_key == business_key
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def get_request(session: AsyncSession, shop_domain: str, request_id: int) -> Request | None:
    statement = select(Request).where(Request.shop_domain == shop_domain, Request.id == request_id)
    return (await session.execute(statement)).scalar_one_or_none()


async def list_requests(
    session: AsyncSession,
    shop_domain: str | None,
    *,
    status: str | Sequence[str] | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Request]:
    """Newest first. `shop_domain=None` lists every shop: for the operator's CLI only; anything a
    shop owner sees passes their shop."""
    statement = select(Request)
    if shop_domain is not None:
        statement = statement.where(Request.shop_domain == shop_domain)
    if isinstance(status, str):
        statement = statement.where(Request.status == status)
    elif status is not None:
        statement = statement.where(Request.status.in_(list(status)))
    if kind is not None:
        statement = statement.where(Request.kind == kind)
    statement = statement.order_by(Request.received_at.desc(), Request.id.desc()).limit(limit).offset(offset)
    return list((await session.execute(statement)).scalars())


async def load_shop(session: AsyncSession, domain: str) -> Shop | None:
    """The shop with this `*.myshopify.com` domain, None when it is not installed here."""
    return await session.scalar(select(Shop).where(Shop.domain == domain))


async def count_requests(session: AsyncSession, shop_domain: str | None) -> int:
    statement = select(func.count()).select_from(Request)
    if shop_domain is not None:
        statement = statement.where(Request.shop_domain == shop_domain)
    return int((await session.execute(statement)).scalar_one())


def local_zone(timezone: str | None) -> ZoneInfo:
    """The shop's IANA time zone (`Shop.timezone`), UTC when it has none or this system's tz
    database does not know it: a count in UTC beats no count."""
    try:
        return ZoneInfo(timezone) if timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def days_left(due_at: datetime, now: datetime, timezone: str | None = None) -> int:
    """Days left to a request's deadline: the calendar days from today to the due date, both read
    in the shop's time zone (`timezone`, see `local_zone`), the same dates the admin shows.

    Due today is 0, due tomorrow 1, due yesterday -1 (negative: that many days overdue), however
    many hours are left within the day. Whether a request is overdue is the instant itself
    (`due_at < now`): late on its due day a request is overdue with 0 days left. The admin, the
    CLI, the deadline clock and its e-mails all count with this function, so they agree.
    """
    zone = local_zone(timezone)
    return (due_at.astimezone(zone).date() - now.astimezone(zone).date()).days
