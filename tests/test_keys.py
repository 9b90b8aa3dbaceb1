"""Key rotation: look-ups across a rotation (intake dedupe, outbox dedupe, the extract's earlier
requests), `gallra keys rotate` and `status`, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from plugin import evidence, keys
from plugin.app import create_app
from plugin.cli import _assemble
from plugin.crypto import DecryptionError, Vault
from plugin.db import Database
from plugin.documents.store import artifacts_of, read_artifact, replace_artifacts
from plugin.models import (
    ENCRYPTED_COLUMNS,
    AdapterConnection,
    OutboxMessage,
    Request,
    Shop,
    cell_of,
    connection_cell,
    shop_cell,
    utcnow,
)
from plugin.outbox import Outbox
from plugin.pipelines.worker import Worker
from plugin.runtime import Runtime
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET, make_settings, serving
from tests.executor.conftest import fast_config
from tests.executor.doubles import SHOP, FakeSources, Ledger, add_request, add_shop
from tests.intake.conftest import headers_for

OLD = TEST_ENCRYPTION_KEY
NEW = Fernet.generate_key().decode()
# A customer named only by e-mail: the business key holds a keyed hash of it.
REDACT_BY_EMAIL: dict[str, Any] = {
    "shop_id": 954889,
    "shop_domain": SHOP,
    "customer": {"email": "anna@example.se"},
    "orders_to_redact": [299938, 280263],
}


def runtime_of(db: Database, vault: Vault) -> Runtime:
    return Runtime(settings=make_settings(db.url), db=db, vault=vault, http=httpx.AsyncClient(timeout=5.0))


@pytest.fixture
async def runtimes(db: Database) -> AsyncIterator[dict[str, Runtime]]:
    """The same database before a rotation, during it, and after the previous key is removed."""
    built = {
        "before": runtime_of(db, Vault(OLD)),
        "during": runtime_of(db, Vault(NEW, previous=OLD)),
        "after": runtime_of(db, Vault(NEW)),
    }
    yield built
    for runtime in built.values():
        await runtime.http.aclose()


async def deliver(runtime: Runtime, topic: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    async with serving(create_app(runtime)) as client:
        # A fresh webhook id: the same request sent again as a new delivery, not a retry.
        return await client.post(f"/webhooks/{topic}", content=body, headers=headers_for(topic, body))


async def count(db: Database, model: type[Any]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# (A data request is keyed by its documented `data_request.id`, which intake requires: no hash.)
@pytest.mark.parametrize(("topic", "payload"), [("customers/redact", REDACT_BY_EMAIL)])
async def test_a_byte_identical_redelivery_across_a_rotation_is_a_duplicate(
    db: Database, runtimes: dict[str, Runtime], topic: str, payload: dict[str, Any]
) -> None:
    first = await deliver(runtimes["before"], topic, payload)
    assert first.status_code == 200
    again = await deliver(runtimes["during"], topic, payload)
    assert again.status_code == 200, again.text
    assert again.json()["request_id"] == first.json()["request_id"]
    assert await count(db, Request) == 1
    # A different customer is still a new request under the new key.
    other = {**payload, "customer": {"email": "eva@example.se"}}
    assert (await deliver(runtimes["during"], topic, other)).json()["request_id"] != first.json()[
        "request_id"
    ]
    assert await count(db, Request) == 2


async def test_a_redelivery_matches_a_key_hashed_before_hashes_carried_a_key_id(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    vault = runtimes["before"].vault
    legacy = vault.email_hashes(SHOP, "anna@example.se")[1]  # 64 hex digits, as stored until now
    assert len(legacy) == 64
    async with db.transaction() as session:
        session.add(
            Request(
                shop_domain=SHOP,
                kind="customer_redact",
                business_key=f"email:{legacy}|orders:280263,299938",
                due_at=utcnow() + timedelta(days=30),
            )
        )
    answer = await deliver(runtimes["before"], "customers/redact", REDACT_BY_EMAIL)
    assert answer.status_code == 200 and await count(db, Request) == 1


async def test_outbox_dedupe_across_a_rotation(db: Database, runtimes: dict[str, Runtime]) -> None:
    message = {"to": "dpo@carrier.example", "subject": "Begäran {reference}", "body": "Radera {reference}"}
    first = await Outbox(runtimes["before"], SHOP).send(
        **message, dedupe_key="postnord:erase:anna@example.se"
    )
    during = await Outbox(runtimes["during"], SHOP).send(
        **message, dedupe_key="postnord:erase:anna@example.se"
    )
    assert during == first
    assert await count(db, OutboxMessage) == 1
    # A message queued during the rotation carries the new key's hash and is found after it.
    second = await Outbox(runtimes["during"], SHOP).send(
        **message, dedupe_key="postnord:erase:eva@example.se"
    )
    assert await Outbox(runtimes["after"], SHOP).send(
        **message, dedupe_key="postnord:erase:eva@example.se"
    ) == (second)


async def extract_records(runtime: Runtime, request_id: int) -> set[int]:
    async with runtime.db.session() as session:
        docs = {a.kind: a for a in await artifacts_of(session, SHOP, request_id)}
        found = await read_artifact(session, runtime.vault, SHOP, docs["extract_json"].id)
    assert found is not None
    return {record["id"] for record in json.loads(found[1])["gallra_records"]}


async def drain(runtime: Runtime) -> None:
    await Worker(runtime, fast_config(), FakeSources(runtime, Ledger())).drain(limit=40)


async def test_the_extract_lists_earlier_requests_across_a_rotation_and_after_it(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    before, during, after = runtimes["before"], runtimes["during"], runtimes["after"]
    await add_shop(before)
    erased = await add_request(before, "customer_redact", email="anna@example.se", key="erased")
    await add_request(before, "customer_redact", email="eva@example.se", key="someone else", customer_id=8)
    asked = await add_request(during, "data_request", email="Anna@Example.se", key="asked during")
    await drain(during)  # the redactions erase their e-mail and keep its hash (old key)
    assert await extract_records(during, asked) == {erased, asked}

    # Written by an instance still on the old key (a rolling restart), not yet worked on.
    pending = await add_request(before, "customer_redact", email="anna@example.se", key="pending")
    found = await keys.status(db, during.vault)
    assert found.hashes == {"requests.email_hash": 1} and found.orphan_hashes == 2
    rotated = await keys.rotate(db, during.vault)
    # The pending request re-encrypted and re-hashed; the erased one's hash re-keyed from it (the
    # same e-mail); Eva's erased request has no such sibling, and its hash stays as it was.
    assert rotated.finished and rotated.rewritten == 2 and rotated.unreadable == 0
    left = await keys.status(db, during.vault)
    assert left.pending == 0 and left.orphan_hashes == 1
    asked_after = await add_request(after, "data_request", email="anna@example.se", key="asked after")
    await drain(after)
    assert await extract_records(after, asked_after) == {erased, asked, pending, asked_after}


async def seed_everything(runtime: Runtime) -> None:
    """A value in every encrypted column, written under the runtime's key."""
    vault = runtime.vault
    await add_shop(runtime)
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Shop)
            .where(Shop.domain == SHOP)
            .values(
                contact_email_enc=vault.encrypt("owner@shop.se", shop_cell("contact_email_enc", SHOP)),
                access_token_enc=vault.encrypt("shpat_secret", shop_cell("access_token_enc", SHOP)),
                refresh_token_enc=vault.encrypt("shprt_secret", shop_cell("refresh_token_enc", SHOP)),
            )
        )
        session.add(
            AdapterConnection(
                shop_domain=SHOP,
                adapter="klaviyo",
                config_enc=vault.encrypt_json({"api_key": "pk_1"}, connection_cell(SHOP, "klaviyo")),
            )
        )
    for n in range(5):
        request_id = await add_request(runtime, email=f"person{n}@example.se", key=f"k{n}")
        async with runtime.db.transaction() as session:
            await replace_artifacts(session, vault, SHOP, request_id, [("certificate_json", "json", "{}")])
    await Outbox(runtime, SHOP).send(to="dpo@x.example", subject="s", body="b", dedupe_key="d")
    async with runtime.db.transaction() as session:
        message = (await session.execute(select(OutboxMessage))).scalar_one()
        message.note_enc = vault.encrypt("confirmed by Eva", cell_of(message, "note_enc"))
    assert (await deliver(runtime, "customers/redact", REDACT_BY_EMAIL)).status_code == 200


async def read_everything(db: Database, vault: Vault) -> int:
    """Decrypt every stored value with `vault`; how many there were."""
    read = 0
    async with db.session() as session:
        for model, columns in ENCRYPTED_COLUMNS.items():
            for row in (await session.execute(select(model))).scalars():
                for column in columns:
                    if getattr(row, column) is not None:
                        vault.decrypt_bytes(getattr(row, column), cell_of(row, column))
                        read += 1
    return read


async def test_after_rotate_everything_reads_without_the_previous_key(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    await seed_everything(runtimes["before"])
    during, after = runtimes["during"], runtimes["after"]
    with pytest.raises(DecryptionError):
        await read_everything(db, after.vault)
    found = await keys.status(db, during.vault)
    assert found.pending > 0 and not found.previous_removable
    assert found.values["requests.email_enc"] == 6 and found.hashes["requests.email_hash"] == 6

    async with db.session() as session:
        stamps = {
            "request": await session.scalar(select(Request.updated_at).where(Request.business_key == "k3")),
            "shop": await session.scalar(select(Shop.updated_at)),
        }
    rotated = await keys.rotate(db, during.vault)
    assert rotated.finished and rotated.unreadable == 0 and rotated.changed_meanwhile == 0
    assert (
        await read_everything(db, after.vault) == 20
    )  # 3 shop, 1 connection, 6 requests, 5 documents, 4 outbox, 1 delivery
    found = await keys.status(db, during.vault)
    assert found.pending == 0
    # The intake request keyed by an e-mail hash under the old key may still be redelivered.
    assert found.redelivery_window_open and not found.previous_removable
    later = await keys.status(db, during.vault, now=utcnow() + keys.RETRY_WINDOW + timedelta(minutes=1))
    assert later.previous_removable and later.open_outbox == 1
    again = await keys.rotate(db, during.vault)
    assert again.rewritten == 0 and again.batches == 0  # nothing left: every row is skipped

    # The app works with the previous key gone: hashes re-keyed, tokens and credentials readable.
    async with db.session() as session:
        request = (await session.execute(select(Request).where(Request.business_key == "k3"))).scalar_one()
        shop = (await session.execute(select(Shop))).scalar_one()
    assert request.email_hash == after.vault.email_hash(SHOP, "person3@example.se")
    assert request.updated_at == stamps["request"] and shop.updated_at == stamps["shop"]
    assert after.vault.decrypt(shop.access_token_enc, cell_of(shop, "access_token_enc")) == "shpat_secret"
    assert (await keys.status(db, after.vault, now=later.now)).previous_removable


async def test_rotate_is_resumable_after_an_interruption(db: Database, runtimes: dict[str, Runtime]) -> None:
    await seed_everything(runtimes["before"])
    vault = runtimes["during"].vault
    initial = (await keys.status(db, vault)).pending
    # Interrupted within the requests: one batch of shops (1 row), deliveries (1), requests (2 of 6).
    first = await keys.rotate(db, vault, batch_size=2, max_batches=3)
    assert not first.finished and first.batches == 3 and first.rewritten == 4
    midway = await keys.status(db, vault)
    assert midway.values["requests.email_enc"] == 4 and "shops.access_token_enc" not in midway.values
    assert midway.pending < initial
    with pytest.raises(DecryptionError):
        await read_everything(db, runtimes["after"].vault)
    rest = await keys.rotate(db, vault, batch_size=2)
    assert rest.finished and rest.unreadable == 0
    assert (await keys.status(db, vault)).pending == 0
    await read_everything(db, runtimes["after"].vault)


async def test_rotate_does_not_overwrite_a_concurrent_write(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    before, during = runtimes["before"], runtimes["during"]
    await add_shop(before)
    request_id = await add_request(before, email="anna@example.se", key="k")
    async with db.session() as session:
        rows = list((await session.execute(select(Request))).scalars())
    changes, unreadable = keys.plan(during.vault, Request, rows)
    assert len(changes) == 1 and unreadable == 0
    # Meanwhile the app erases the request's e-mail (its own data) ...
    async with db.transaction() as session:
        await session.execute(update(Request).where(Request.id == request_id).values(email_enc=None))
    async with db.transaction() as session:
        written, missed = await keys.apply(session, Request, changes)
    assert (written, missed) == (0, 1)
    async with db.session() as session:
        assert (await session.get(Request, request_id)).email_enc is None  # type: ignore[union-attr]


async def test_a_value_moved_to_another_row_or_shop_refuses_to_decrypt(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    runtime = runtimes["during"]
    await add_shop(runtime)
    await add_shop(runtime, "other.myshopify.com")
    anna = await add_request(runtime, email="anna@example.se", key="anna")
    eva = await add_request(runtime, email="eva@example.se", key="eva")
    theirs = await add_request(runtime, email="olle@example.se", key="anna", domain="other.myshopify.com")
    async with db.transaction() as session:
        stolen = (await session.get(Request, anna)).email_enc  # type: ignore[union-attr]
        for target in (eva, theirs):
            await session.execute(update(Request).where(Request.id == target).values(email_enc=stolen))
        await session.execute(update(Request).where(Request.id == anna).values(phone_enc=stolen))
    async with db.session() as session:
        rows = {row.id: row for row in (await session.execute(select(Request))).scalars()}
    vault = runtime.vault
    assert vault.decrypt(rows[anna].email_enc, cell_of(rows[anna], "email_enc")) == "anna@example.se"
    for row, column in ((rows[eva], "email_enc"), (rows[theirs], "email_enc"), (rows[anna], "phone_enc")):
        with pytest.raises(DecryptionError) as refused:
            vault.decrypt(getattr(row, column), cell_of(row, column))
        assert f"requests.{column}" in str(refused.value) and "anna" not in str(refused.value)


async def test_keys_commands_rotate_and_say_when_the_previous_key_can_go(
    db: Database, runtimes: dict[str, Runtime], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    before = runtimes["before"]
    await add_shop(before)
    for n in range(3):
        await add_request(before, email=f"person{n}@example.se", key=f"k{n}")
    monkeypatch.chdir(tmp_path)  # no stray .env from the work tree
    for name, value in {
        "SHOPIFY_API_KEY": "client-123",
        "SHOPIFY_API_SECRET": TEST_SECRET,
        "GALLRA_ENCRYPTION_KEY": NEW,
        "GALLRA_ENCRYPTION_KEY_PREVIOUS": OLD,
        "DATABASE_URL": db.url,
        "GALLRA_APP_URL": "https://gallra.example.com/",
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(_assemble(), ["keys", *args])

    status = await asyncio.to_thread(invoke, "status")
    assert status.exit_code == 1 and "requests.email_enc: 3" in status.output
    assert "PREVIOUS is still needed" in status.output
    partial = await asyncio.to_thread(invoke, "rotate", "--batch-size", "1", "--max-batches", "1")
    assert partial.exit_code == 0 and "run again to go on" in partial.output
    assert "requests.email_enc: 2" in partial.output
    done = await asyncio.to_thread(invoke, "rotate")
    assert done.exit_code == 0 and "PREVIOUS can be removed" in done.output
    assert "person" not in done.output + partial.output + status.output
    assert (await asyncio.to_thread(invoke, "status")).exit_code == 0


async def test_rotate_rechains_evidence_so_the_previous_key_can_go(
    db: Database, runtimes: dict[str, Runtime]
) -> None:
    """The evidence chain's MAC key is derived from the encryption key: a chain still under the
    previous key keeps it needed until `rotate` has re-written the chain."""
    await add_shop(runtimes["before"])
    evidence.bind(db, runtimes["before"].vault)
    async with db.transaction() as session:
        await evidence.append(session, SHOP, "policy_changed", {"preset": "SE"})
        await evidence.append(session, SHOP, "policy_changed", {"preset": "FI"})
    during, after = runtimes["during"].vault, runtimes["after"].vault

    found = await keys.status(db, during)
    assert found.evidence_chains == 1 and not found.previous_removable
    evidence.bind(db, after)
    async with db.session() as session:
        assert not (await evidence.verify(session, SHOP)).ok  # the new key alone cannot verify it yet

    rotated = await keys.rotate(db, during)
    assert (rotated.chains_rechained, rotated.chains_unverified) == (1, 0)
    assert (await keys.status(db, during)).evidence_chains == 0
    evidence.bind(db, after)
    async with db.session() as session:
        assert (await evidence.verify(session, SHOP)).ok
    assert (await keys.rotate(db, during)).chains_rechained == 0  # nothing left to re-chain
