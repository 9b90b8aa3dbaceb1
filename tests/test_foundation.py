"""The shared foundation: encryption, look-up hashes, the schema on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from plugin.crypto import Cell, DecryptionError, Vault, key_id
from plugin.db import Database, normalise_url
from plugin.models import Request
from tests.conftest import TEST_ENCRYPTION_KEY

CELL = Cell("requests", "email_enc", "a.myshopify.com", "customer_redact:customer:1|orders:")


def test_vault_round_trip_and_hashes_differ_per_shop(vault: Vault) -> None:
    token = vault.encrypt("anna@example.se", CELL)
    assert token is not None and "anna" not in token
    assert vault.decrypt(token, CELL) == "anna@example.se"
    a = vault.email_hash("a.myshopify.com", " Anna@Example.se ")
    assert a == vault.email_hash("a.myshopify.com", "anna@example.se")
    assert a != vault.email_hash("b.myshopify.com", "anna@example.se")


def test_vault_rotation_reads_old_tokens() -> None:
    from cryptography.fernet import Fernet

    new_key = Fernet.generate_key().decode()
    old = Vault(TEST_ENCRYPTION_KEY)
    token = old.encrypt("secret", CELL)
    rotated = Vault(new_key, previous=TEST_ENCRYPTION_KEY)
    assert rotated.decrypt(token, CELL) == "secret"
    with pytest.raises(DecryptionError):
        Vault(new_key).decrypt(token, CELL)


def _gcm_key() -> bytes:
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"gallra at rest v2").derive(
        TEST_ENCRYPTION_KEY.encode()
    )


def test_vault_tokens_are_aes_gcm_bound_to_their_cell_and_tampering_is_refused(vault: Vault) -> None:
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    token = vault.encrypt(b"anna@example.se", CELL)
    head = f"v3:{key_id(TEST_ENCRYPTION_KEY)}:"
    assert token is not None and token.startswith(head) and vault.is_current(token)
    raw = base64.urlsafe_b64decode(token[len(head) :])
    # The documented layout: 12-byte nonce, then ciphertext and tag, readable by any AES-GCM given
    # the cell as associated data.
    assert AESGCM(_gcm_key()).decrypt(raw[:12], raw[12:], CELL.associated_data()) == b"anna@example.se"
    assert vault.encrypt(b"anna@example.se", CELL) != token  # a fresh nonce every time
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    for bad in (
        head + base64.urlsafe_b64encode(bytes(flipped)).decode(),
        head + "%%%",
        head,
        "v3:",
        "v2:",
        "x",
    ):
        with pytest.raises(DecryptionError):
            vault.decrypt(bad, CELL)


@pytest.mark.parametrize(
    "elsewhere",
    [
        CELL._replace(row="customer_redact:customer:2|orders:"),  # another row
        CELL._replace(column="phone_enc"),  # another column
        CELL._replace(shop="b.myshopify.com"),  # another shop
        CELL._replace(table="outbox"),  # another table
    ],
)
def test_a_value_moved_elsewhere_refuses_to_decrypt_without_naming_it(vault: Vault, elsewhere: Cell) -> None:
    token = vault.encrypt("anna@example.se", CELL)
    assert token is not None
    with pytest.raises(DecryptionError) as refused:
        vault.decrypt(token, elsewhere)
    message = str(refused.value)
    assert "moved" in message and f"{elsewhere.table}.{elsewhere.column}" in message
    assert "anna" not in message and "example" not in message and token not in message


def test_vault_still_reads_v2_tokens_without_associated_data() -> None:
    import base64
    import os

    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    v2 = "v2:" + base64.urlsafe_b64encode(nonce + AESGCM(_gcm_key()).encrypt(nonce, b"eva", None)).decode()
    assert Vault(TEST_ENCRYPTION_KEY).decrypt(v2, CELL) == "eva"
    rotated = Vault(Fernet.generate_key().decode(), previous=TEST_ENCRYPTION_KEY)
    assert rotated.decrypt(v2, CELL) == "eva" and not rotated.is_current(v2)
    with pytest.raises(DecryptionError):
        Vault(Fernet.generate_key().decode()).decrypt(v2, CELL)


def test_lookup_hashes_carry_their_key_id_and_match_under_both_keys_in_a_rotation() -> None:
    from cryptography.fernet import Fernet

    new_key = Fernet.generate_key().decode()
    old, rotated = Vault(TEST_ENCRYPTION_KEY), Vault(new_key, previous=TEST_ENCRYPTION_KEY)
    stored_before = old.email_hash("a.myshopify.com", "anna@example.se")
    assert stored_before is not None and stored_before.startswith(key_id(TEST_ENCRYPTION_KEY) + ":")
    assert len(stored_before) <= 64  # the column's width
    now = rotated.email_hash("a.myshopify.com", "Anna@example.se ")
    assert now is not None and now != stored_before and now.startswith(key_id(new_key) + ":")
    candidates = rotated.email_hashes("a.myshopify.com", "anna@example.se")
    assert candidates[0] == now and stored_before in candidates
    assert rotated.hash_is_current(now) and not rotated.hash_is_current(stored_before)
    # A hash written before hashes carried a key id (64 hex digits of the same HMAC) still matches.
    assert any(len(c) == 64 and all(ch in "0123456789abcdef" for ch in c) for c in candidates)
    assert stored_before not in Vault(new_key).email_hashes("a.myshopify.com", "anna@example.se")


def test_vault_reads_fernet_tokens_written_before_aes_gcm() -> None:
    from cryptography.fernet import Fernet

    legacy = Fernet(TEST_ENCRYPTION_KEY.encode()).encrypt(b"anna@example.se").decode()
    assert Vault(TEST_ENCRYPTION_KEY).decrypt(legacy, CELL) == "anna@example.se"
    new_key = Fernet.generate_key().decode()
    assert Vault(new_key, previous=TEST_ENCRYPTION_KEY).decrypt(legacy, CELL) == "anna@example.se"


def test_normalise_url_picks_async_drivers() -> None:
    assert normalise_url("postgresql://u@h/db").startswith("postgresql+asyncpg://")
    assert normalise_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"


async def test_times_come_back_aware_utc(db: Database) -> None:
    due = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    async with db.transaction() as session:
        session.add(Request(shop_domain="a.myshopify.com", kind="shop_redact", business_key="1", due_at=due))
    async with db.session() as session:
        row = (await session.execute(select(Request))).scalar_one()
    assert row.due_at == due and row.due_at.tzinfo is not None
    assert row.received_at > datetime.now(UTC) - timedelta(minutes=1)
