"""Migration 0005 re-chains the unkeyed chains written before it under the key, splitting the
identifiers off, on SQLite and PostgreSQL; a chain already broken is left for verify to report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.migrate import upgrade_async
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, empty_pg_database

SHOP, BROKEN = "old.myshopify.com", "tampered.myshopify.com"
SUBJECT = evidence.subject_ref("a" * 64, None, 4711)
TRACKING = "00370712345678901234"
# Version 1's shape of the evidence table, the one the rows below were written into.
OLD = sa.table(
    "evidence",
    sa.column("shop_domain", sa.String()),
    sa.column("seq", sa.Integer()),
    sa.column("request_id", sa.Integer()),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("kind", sa.String()),
    sa.column("payload", sa.JSON()),
    sa.column("prev_hash", sa.String()),
    sa.column("hash", sa.String()),
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[str]:
    """An empty database of its own (migrated step by step by the test)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/old.db"
        return
    async with empty_pg_database("gallra_mig") as url:
        yield url


def _legacy_rows(shop: str, n: int) -> list[dict[str, object]]:
    rows, prev = [], evidence.GENESIS
    for seq in range(1, n + 1):
        at = datetime(2026, 1, seq, 12, tzinfo=UTC)
        payload = {
            evidence.SUBJECT: SUBJECT,
            "holding": f"shipment:1001:{TRACKING}",
            "label": f"Shipment {TRACKING} of order #1001",
            "system": "postnord",
        }
        digest = evidence.legacy_hash(prev, seq, at, "step_done", 1, payload)
        rows.append(
            {
                "shop_domain": shop,
                "seq": seq,
                "request_id": 1,
                "at": at,
                "kind": "step_done",
                "payload": payload,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return rows


async def test_migration_rechains_unkeyed_chains_under_the_key(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": TEST_SECRET,
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "DATABASE_URL": fresh_url,
    }.items():
        monkeypatch.setenv(name, value)
    await upgrade_async(fresh_url, "0001")
    good, broken = _legacy_rows(SHOP, 3), _legacy_rows(BROKEN, 3)
    broken[1]["payload"] = {"system": "forged"}
    db = Database(fresh_url)
    try:
        async with db.engine.begin() as conn:
            for row in good + broken:
                if db.is_sqlite:  # version 1 stored naive UTC on SQLite (models.UTCDateTime)
                    row["at"] = row["at"].replace(tzinfo=None)  # type: ignore[attr-defined]
                await conn.execute(sa.insert(OLD).values(**row))
        legacy_head = evidence.Anchor(3, str(good[-1]["hash"]))

        await upgrade_async(fresh_url, "head")

        evidence.bind(db, Vault(TEST_ENCRYPTION_KEY))
        async with db.session() as session:
            result = await evidence.verify(session, SHOP, [legacy_head])
            rows = await evidence.entries(session, SHOP)
            tampered = await evidence.verify(session, BROKEN)
        assert (result.ok, result.entries, result.anchors) == (True, 3, 1)
        assert {r.version for r in rows} == {evidence.KEYED}
        assert (
            rows[0].identifiers is not None and rows[0].identifiers["holding"] == f"shipment:1001:{TRACKING}"
        )
        assert TRACKING not in str(rows[0].payload) and "4711" not in str(rows[0].payload)
        assert (tampered.ok, tampered.first_broken_seq) == (False, 2)

        # Reduced afterwards, nothing of the identifiers is left and the chain holds.
        async with db.transaction() as session:
            assert await evidence.reduce_subjects(session, SHOP) == 3
        async with db.engine.connect() as conn:
            raw = str(
                (
                    await conn.execute(sa.text("SELECT * FROM evidence WHERE shop_domain = :s"), {"s": SHOP})
                ).all()
            )
        assert TRACKING not in raw and "4711" not in raw and "a" * 64 not in raw
        async with db.session() as session:
            assert (await evidence.verify(session, SHOP)).ok
    finally:
        await db.dispose()
