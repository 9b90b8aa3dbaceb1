"""The evidence chain: appends link, tampering is found at the first broken entry, reduction
after shop/redact keeps it verifiable, concurrent appends never collide, the CLI reports."""

from __future__ import annotations

import asyncio
import itertools

from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from plugin import evidence
from plugin.db import Database
from plugin.models import Evidence

SHOP = "chain.myshopify.com"
SUBJECT = evidence.subject_ref("a" * 64, None, 7)


async def _fill(db: Database, n: int = 5) -> None:
    for i in range(n):
        async with db.transaction() as session:
            await evidence.append(
                session, SHOP, "step_done", {"i": i, evidence.SUBJECT: SUBJECT}, request_id=1
            )


async def _verify(db: Database, shop: str = SHOP) -> evidence.VerifyResult:
    async with db.session() as session:
        return await evidence.verify(session, shop)


async def test_chain_links_and_verifies(db: Database) -> None:
    await _fill(db)
    async with db.transaction() as session:
        await evidence.append(session, "other.myshopify.com", "x", {})
    result = await _verify(db)
    assert (result.ok, result.entries) == (True, 5)
    async with db.session() as session:
        rows = await evidence.entries(session, SHOP)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == evidence.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))


async def test_altered_payload_is_reported_at_its_entry(db: Database) -> None:
    await _fill(db)
    async with db.transaction() as session:
        await session.execute(
            update(Evidence).where(Evidence.shop_domain == SHOP, Evidence.seq == 3).values(payload={"i": 99})
        )
    result = await _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert "altered" in result.reason


async def test_removed_entry_is_reported(db: Database) -> None:
    await _fill(db)
    async with db.transaction() as session:
        await session.execute(delete(Evidence).where(Evidence.shop_domain == SHOP, Evidence.seq == 2))
    result = await _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)


async def test_reducing_subjects_keeps_the_chain_valid(db: Database) -> None:
    await _fill(db)
    async with db.transaction() as session:
        assert await evidence.reduce_subjects(session, SHOP) == 5
    async with db.session() as session:
        payloads = (
            (await session.execute(select(Evidence.payload).where(Evidence.shop_domain == SHOP)))
            .scalars()
            .all()
        )
    assert all(evidence.SUBJECT not in p and evidence.SUBJECT_DIGEST in p for p in payloads)
    assert (await _verify(db)).ok


async def test_concurrent_appends_get_distinct_sequence_numbers(db: Database) -> None:
    async def one(i: int) -> None:
        async with db.transaction() as session:
            await evidence.append(session, SHOP, "step_done", {"i": i})

    await asyncio.gather(*(one(i) for i in range(20)))
    result = await _verify(db)
    assert (result.ok, result.entries) == (True, 20)


async def test_cli_verify_reports_ok_and_broken(sqlite_db: Database, monkeypatch: object) -> None:
    import pytest

    from plugin.cli import _assemble
    from tests.conftest import TEST_ENCRYPTION_KEY

    await _fill(sqlite_db, 3)
    mp = pytest.MonkeyPatch()
    for name, value in {
        "DATABASE_URL": sqlite_db.url,
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }.items():
        mp.setenv(name, value)
    try:
        app = _assemble()
        ok = await asyncio.to_thread(CliRunner().invoke, app, ["evidence", "verify", SHOP])
        assert ok.exit_code == 0 and "intact (3 entries)" in ok.output
        async with sqlite_db.transaction() as session:
            await session.execute(update(Evidence).where(Evidence.seq == 2).values(kind="forged"))
        broken = await asyncio.to_thread(CliRunner().invoke, app, ["evidence", "verify", SHOP])
        assert broken.exit_code == 1 and "BROKEN at entry 2" in broken.output
    finally:
        mp.undo()
