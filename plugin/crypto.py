"""Encryption at rest and keyed look-up hashes.

Personal data (e-mail, phone, raw webhook bodies, register extracts) and secrets (access tokens,
provider credentials) are stored as Fernet tokens. E-mail and phone are also stored as a keyed
HMAC per shop, so rows can be found without decrypting and evidence can name a subject without
holding the address. Plain SHA-256 of an e-mail is reversible by dictionary; a keyed hash is not.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Per-shop hash keys kept in memory; past this many shops the cache starts over.
_SHOP_KEY_CACHE = 4096


class DecryptionError(Exception):
    """Stored ciphertext could not be decrypted with the configured keys."""


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" if phone.strip().startswith("+") else "") + digits


class Vault:
    """Encrypts, decrypts and hashes with keys derived from GALLRA_ENCRYPTION_KEY."""

    def __init__(self, key: str, previous: str | None = None) -> None:
        keys = [Fernet(key.encode())]
        if previous:
            keys.append(Fernet(previous.encode()))
        self._fernet = MultiFernet(keys)
        self._hash_key = _derive(key.encode(), b"gallra lookup hash v1")
        self._shop_keys: dict[str, bytes] = {}

    def encrypt(self, plaintext: str | bytes | None) -> str | None:
        if plaintext is None:
            return None
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        return self._fernet.encrypt(data).decode()

    def decrypt_bytes(self, token: str | None) -> bytes | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise DecryptionError("stored value cannot be decrypted with the configured keys") from None

    def decrypt(self, token: str | None) -> str | None:
        data = self.decrypt_bytes(token)
        return None if data is None else data.decode()

    def encrypt_json(self, value: Any) -> str:
        token = self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True))
        assert token is not None
        return token

    def decrypt_json(self, token: str | None) -> Any:
        text = self.decrypt(token)
        return None if text is None else json.loads(text)

    def lookup_hash(self, shop_domain: str, value: str | None) -> str | None:
        """Keyed hash, different per shop, so one shop's hashes say nothing about another's."""
        if not value:
            return None
        shop_key = self._shop_keys.get(shop_domain)
        if shop_key is None:
            # Derived once per shop: webhook intake hashes two values per request.
            if len(self._shop_keys) >= _SHOP_KEY_CACHE:
                self._shop_keys.clear()
            shop_key = hmac.digest(self._hash_key, shop_domain.encode(), "sha256")
            self._shop_keys[shop_domain] = shop_key
        return hmac.digest(shop_key, value.encode(), "sha256").hex()

    def email_hash(self, shop_domain: str, email: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_email(email) if email else None)

    def phone_hash(self, shop_domain: str, phone: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_phone(phone) if phone else None)
