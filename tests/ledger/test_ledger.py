"""The ledger's create/find/list functions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from plugin.crypto import Vault
from plugin.db import Database
from plugin.ledger import (
    NewRequest,
    count_requests,
    days_left,
    find_request_id,
    get_request,
    insert_request,
    list_requests,
    local_zone,
    orders_key,
)
from plugin.models import cell_of

A = "alpha.myshopify.com"
B = "beta.myshopify.com"


def redact(shop: str, key: str, **extra: object) -> NewRequest:
    return NewRequest(kind="customer_redact", shop_domain=shop, business_key=key, **extra)  # type: ignore[arg-type]


async def test_insert_is_idempotent_per_shop_kind_and_key(db: Database, vault: Vault) -> None:
    async with db.transaction() as session:
        first = await insert_request(session, vault, redact(A, "customer:1|orders:"))
        again = await insert_request(session, vault, redact(A, "customer:1|orders:"))
        other_shop = await insert_request(session, vault, redact(B, "customer:1|orders:"))
        other_kind = await insert_request(
            session, vault, NewRequest(kind="data_request", shop_domain=A, business_key="customer:1|orders:")
        )
    assert first is not None and again is None
    assert other_shop is not None and other_kind is not None and len({first, other_shop, other_kind}) == 3
    async with db.session() as session:
        assert await find_request_id(session, A, "customer_redact", "customer:1|orders:") == first
        assert await find_request_id(session, A, "customer_redact", "nope") is None


async def test_concurrent_inserts_create_one(db: Database, vault: Vault) -> None:
    async def attempt() -> int | None:
        async with db.transaction() as session:
            return await insert_request(session, vault, redact(A, "same"))

    results = await asyncio.gather(*(attempt() for _ in range(10)))
    assert sum(r is not None for r in results) == 1
    async with db.session() as session:
        assert await count_requests(session, A) == 1


async def test_subject_encrypted_and_hashed(db: Database, vault: Vault) -> None:
    received = datetime(2026, 11, 1, 12, tzinfo=UTC)
    new = redact(
        A,
        "k",
        customer_id=7,
        email="Eva@Example.se",
        phone="+46 70 1",
        order_ids=[3, 1, 3],
        received_at=received,
    )
    async with db.transaction() as session:
        request_id = await insert_request(session, vault, new)
    assert request_id is not None
    async with db.session() as session:
        row = await get_request(session, A, request_id)
    assert row is not None
    assert (
        row.email_enc is not None
        and "Eva" not in row.email_enc
        and vault.decrypt(row.email_enc, cell_of(row, "email_enc")) == "Eva@Example.se"
    )
    assert row.email_hash == vault.email_hash(A, "eva@example.se")
    assert row.phone_hash == vault.phone_hash(A, "+46701")
    assert row.order_ids == [1, 3]
    assert (row.status, row.attempts, row.received_at) == ("received", 0, received)
    assert row.due_at == received + timedelta(days=30)


async def test_get_is_scoped_to_the_shop(db: Database, vault: Vault) -> None:
    async with db.transaction() as session:
        request_id = await insert_request(session, vault, redact(A, "k"))
    assert request_id is not None
    async with db.session() as session:
        assert await get_request(session, A, request_id) is not None
        assert await get_request(session, B, request_id) is None


async def test_list_filters_and_orders_newest_first(db: Database, vault: Vault) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    async with db.transaction() as session:
        for n in range(5):
            await insert_request(session, vault, redact(A, f"a{n}", received_at=start + timedelta(hours=n)))
        await insert_request(session, vault, redact(B, "b0", received_at=start))
        await insert_request(
            session,
            vault,
            NewRequest(
                kind="shop_redact",
                shop_domain=A,
                business_key="shop:1",
                received_at=start - timedelta(hours=1),
            ),
        )
    async with db.session() as session:
        mine = await list_requests(session, A)
        assert [r.business_key for r in mine][:5] == ["a4", "a3", "a2", "a1", "a0"]
        assert {r.shop_domain for r in mine} == {A}
        assert len(await list_requests(session, None)) == 7
        assert [r.kind for r in await list_requests(session, A, kind="shop_redact")] == ["shop_redact"]
        assert len(await list_requests(session, A, status="received", limit=2)) == 2
        assert len(await list_requests(session, A, status=["done", "failed"])) == 0
        assert len(await list_requests(session, A, limit=2, offset=5)) == 1
        assert await count_requests(session, None) == 7


def test_days_left_counts_calendar_days() -> None:
    due = datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert days_left(due, datetime(2026, 11, 1, 23, tzinfo=UTC)) == 30
    assert days_left(due, datetime(2026, 12, 3, tzinfo=UTC)) == -2


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), 1),  # the evening before: one day left
        (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 0),  # due today, hours still to go: 0, not 1
        (datetime(2026, 12, 1, 8, 59, 59, tzinfo=UTC), 0),  # a second before the deadline
        (datetime(2026, 12, 1, 9, 0, 1, tzinfo=UTC), 0),  # a second after: overdue, still its day
        (datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC), 0),
        (datetime(2026, 12, 2, 0, 0, tzinfo=UTC), -1),  # the next day: one day overdue
    ],
)
def test_days_left_at_the_day_boundaries(now: datetime, expected: int) -> None:
    assert days_left(datetime(2026, 12, 1, 9, tzinfo=UTC), now) == expected


def test_days_left_counts_in_the_shops_time_zone() -> None:
    # Due 23:30 UTC on 1 December is 00:30 on 2 December in Stockholm (CET, UTC+1), the date the
    # admin shows; at 22:00 UTC on the 1st it is 23:00 there, so one day is left, not none.
    due = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    now = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    assert days_left(due, now) == 0
    assert days_left(due, now, "Europe/Stockholm") == 1
    # 23:10 UTC is already 2 December in Stockholm: due today there.
    assert days_left(due, datetime(2026, 12, 1, 23, 10, tzinfo=UTC), "Europe/Stockholm") == 0
    # West of UTC: 03:00 UTC on 1 December is still 30 November in New York (UTC-5), where the
    # deadline falls on 1 December: one day left there, none in UTC.
    early = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert days_left(due, early, "America/New_York") == 1 and days_left(due, early) == 0
    # A zone this system does not know counts in UTC rather than failing.
    assert days_left(due, now, "Mars/Olympus") == 0 and local_zone(None).key == "UTC"


def test_orders_key_sorted_and_bounded() -> None:
    assert orders_key([3, 1, 2, 1]) == "1,2,3"
    long = orders_key(list(range(10**6, 10**6 + 100)))
    assert long.startswith("sha256:") and len(long) < 80
    assert long == orders_key(list(reversed(range(10**6, 10**6 + 100))))


def test_unknown_kind_refused(vault: Vault) -> None:
    with pytest.raises(ValueError):
        NewRequest(kind="bogus", shop_domain=A, business_key="x").row(vault)
