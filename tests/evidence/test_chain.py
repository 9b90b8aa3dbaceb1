"""The evidence chain: appends link, tampering is found at the first broken entry, reduction
after shop/redact keeps it verifiable, concurrent appends never collide, the CLI reports."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, update
from typer.testing import CliRunner

from plugin import evidence
from plugin.crypto import Vault
from plugin.db import Database
from plugin.models import Evidence, EvidenceHead
from tests.conftest import TEST_ENCRYPTION_KEY

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
        rows = await evidence.entries(session, SHOP)
    assert all(r.identifiers is None and evidence.SUBJECT not in r.payload for r in rows)
    # What is left names the subject by a keyed digest only.
    assert all(set(r.payload[evidence.DIGESTS]) == {evidence.SUBJECT} for r in rows)
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


async def test_identifiers_are_kept_apart_and_bound_to_their_entry(db: Database) -> None:
    await _fill(db, 2)
    async with db.session() as session:
        rows = await evidence.entries(session, SHOP)
    assert rows[0].identifiers == {evidence.SUBJECT: SUBJECT}
    assert evidence.SUBJECT not in rows[0].payload
    assert evidence.readable(rows[0]) == {"i": 0, evidence.SUBJECT: SUBJECT}
    # An identifier changed in place (the chain does not cover the column itself) is found.
    async with db.transaction() as session:
        await session.execute(
            update(Evidence)
            .where(Evidence.shop_domain == SHOP, Evidence.seq == 2)
            .values(identifiers={evidence.SUBJECT: evidence.subject_ref("b" * 64, None, 8)})
        )
    result = await _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "identifiers" in result.reason


async def _recompute_unkeyed(db: Database, shop: str = SHOP) -> None:
    """What someone with database access but not the key can do: re-hash every entry in order."""
    prev = evidence.GENESIS
    async with db.transaction() as session:
        for row in await evidence.entries(session, shop):
            row.prev_hash = prev
            row.version = evidence.LEGACY
            row.hash = evidence.legacy_hash(prev, row.seq, row.at, row.kind, row.request_id, row.payload)
            prev = row.hash


async def test_truncating_and_recomputing_the_chain_is_detected(db: Database) -> None:
    await _fill(db, 5)
    async with db.transaction() as session:
        await session.execute(delete(Evidence).where(Evidence.shop_domain == SHOP, Evidence.seq > 3))
    # Plain truncation: every remaining link holds, the head record does not.
    result = await _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert "entries removed" in result.reason

    # Removing the head record as well, and re-hashing without the key: still found.
    async with db.transaction() as session:
        await session.execute(delete(EvidenceHead).where(EvidenceHead.shop_domain == SHOP))
    result = await _verify(db)
    assert not result.ok and "head record is missing" in result.reason
    await _recompute_unkeyed(db)
    result = await _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 1)
    assert "without the key" in result.reason


async def test_a_head_record_rolled_back_to_an_earlier_entry_is_detected(db: Database) -> None:
    await _fill(db, 5)
    async with db.session() as session:
        third = (await evidence.entries(session, SHOP))[2]
    async with db.transaction() as session:
        await session.execute(delete(Evidence).where(Evidence.shop_domain == SHOP, Evidence.seq > 3))
        await session.execute(
            update(EvidenceHead).where(EvidenceHead.shop_domain == SHOP).values(seq=3, hash=third.hash)
        )
    result = await _verify(db)
    assert not result.ok and "head record does not match its MAC" in result.reason


async def test_certificate_anchors_are_checked(db: Database) -> None:
    await _fill(db, 4)
    async with db.session() as session:
        anchor = evidence.Anchor(*(await evidence.head(session, SHOP) or (0, "")))
        assert (await evidence.verify(session, SHOP, [anchor])).anchors == 1
        forged = evidence.Anchor(anchor.seq, "f" * 64)
        assert not (await evidence.verify(session, SHOP, [forged])).ok
    # The whole log removed with its head record: the certificate kept outside still tells.
    async with db.transaction() as session:
        await session.execute(delete(Evidence).where(Evidence.shop_domain == SHOP))
        await session.execute(delete(EvidenceHead).where(EvidenceHead.shop_domain == SHOP))
    async with db.session() as session:
        assert (await evidence.verify(session, SHOP)).ok
        result = await evidence.verify(session, SHOP, [anchor])
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert "named by a certificate, is missing" in result.reason


async def test_rotation_verifies_under_the_previous_key_and_rechains(db: Database) -> None:
    await _fill(db, 3)
    new_key = Fernet.generate_key().decode()
    rotated = Database(db.url)
    try:
        evidence.bind(rotated, Vault(new_key, TEST_ENCRYPTION_KEY))
        async with rotated.session() as session:
            assert (await evidence.verify(session, SHOP)).ok
        only_new = Database(db.url)
        evidence.bind(only_new, Vault(new_key))
        async with only_new.session() as session:
            assert "not configured" in (await evidence.verify(session, SHOP)).reason
        async with rotated.transaction() as session:
            assert await evidence.rechain(session, SHOP)
        async with only_new.session() as session:
            assert (await evidence.verify(session, SHOP)).ok
        await only_new.dispose()
    finally:
        await rotated.dispose()


async def test_appending_without_keys_is_refused(db: Database) -> None:
    unbound = Database(db.url)
    try:
        async with unbound.transaction() as session:
            with pytest.raises(RuntimeError, match="not bound"):
                await evidence.append(session, SHOP, "x", {})
    finally:
        await unbound.dispose()


async def test_cli_verify_checks_a_certificate_kept_outside(
    sqlite_db: Database, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    from plugin.cli import _assemble

    await _fill(sqlite_db, 4)
    async with sqlite_db.session() as session:
        seq, head_hash = await evidence.head(session, SHOP) or (0, "")
    certificate = Path(str(tmp_path)) / "certificate.json"
    certificate.write_text(
        json.dumps(
            {"document": "certificate_of_erasure", "evidence": {"entries": seq, "head_hash": head_hash}}
        )
    )
    for name, value in {
        "DATABASE_URL": sqlite_db.url,
        "SHOPIFY_API_KEY": "k",
        "SHOPIFY_API_SECRET": "s",
        "GALLRA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    app = _assemble()
    args = ["evidence", "verify", SHOP, "--certificate", str(certificate)]
    ok = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert ok.exit_code == 0 and "1 certificate anchors match" in ok.output
    # The whole log removed, head record and all: only the certificate kept outside tells.
    async with sqlite_db.transaction() as session:
        await session.execute(delete(Evidence).where(Evidence.shop_domain == SHOP))
        await session.execute(delete(EvidenceHead).where(EvidenceHead.shop_domain == SHOP))
    alone = await asyncio.to_thread(CliRunner().invoke, app, ["evidence", "verify", SHOP])
    assert alone.exit_code == 0 and "intact (0 entries)" in alone.output
    broken = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert broken.exit_code == 1 and "named by a certificate, is missing" in broken.output
