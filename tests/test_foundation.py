"""The shared foundation: encryption, look-up hashes, the schema on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from plugin.crypto import DecryptionError, Vault
from plugin.db import Database, normalise_url
from plugin.models import Request
from tests.conftest import TEST_ENCRYPTION_KEY


def test_vault_round_trip_and_hashes_differ_per_shop(vault: Vault) -> None:
    token = vault.encrypt("anna@example.se")
    assert token is not None and "anna" not in token
    assert vault.decrypt(token) == "anna@example.se"
    a = vault.email_hash("a.myshopify.com", " Anna@Example.se ")
    assert a == vault.email_hash("a.myshopify.com", "anna@example.se")
    assert a != vault.email_hash("b.myshopify.com", "anna@example.se")


def test_vault_rotation_reads_old_tokens() -> None:
    from cryptography.fernet import Fernet

    new_key = Fernet.generate_key().decode()
    old = Vault(TEST_ENCRYPTION_KEY)
    token = old.encrypt("secret")
    rotated = Vault(new_key, previous=TEST_ENCRYPTION_KEY)
    assert rotated.decrypt(token) == "secret"
    with pytest.raises(DecryptionError):
        Vault(new_key).decrypt(token)


def test_vault_tokens_are_aes_gcm_and_tampering_is_refused(vault: Vault) -> None:
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    token = vault.encrypt(b"anna@example.se")
    assert token is not None and token.startswith("v2:")
    raw = base64.urlsafe_b64decode(token[3:])
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"gallra at rest v2").derive(
        TEST_ENCRYPTION_KEY.encode()
    )
    # The documented layout: 12-byte nonce, then ciphertext and tag, readable by any AES-GCM.
    assert AESGCM(key).decrypt(raw[:12], raw[12:], None) == b"anna@example.se"
    assert vault.encrypt(b"anna@example.se") != token  # a fresh nonce every time
    flipped = bytearray(raw)
    flipped[-1] ^= 1
    for bad in ("v2:" + base64.urlsafe_b64encode(bytes(flipped)).decode(), "v2:%%%", "v2:", "not a token"):
        with pytest.raises(DecryptionError):
            vault.decrypt(bad)


def test_vault_reads_fernet_tokens_written_before_aes_gcm() -> None:
    from cryptography.fernet import Fernet

    legacy = Fernet(TEST_ENCRYPTION_KEY.encode()).encrypt(b"anna@example.se").decode()
    assert Vault(TEST_ENCRYPTION_KEY).decrypt(legacy) == "anna@example.se"
    new_key = Fernet.generate_key().decode()
    assert Vault(new_key, previous=TEST_ENCRYPTION_KEY).decrypt(legacy) == "anna@example.se"


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
