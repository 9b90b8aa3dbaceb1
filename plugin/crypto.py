"""Encryption at rest and keyed look-up hashes.

Personal data (e-mail, phone, raw webhook bodies, register extracts) and secrets (access tokens,
provider credentials) are stored encrypted with AES-256-GCM under a key derived from
GALLRA_ENCRYPTION_KEY. E-mail and phone are also stored as a keyed HMAC per shop, so rows can be
found without decrypting and evidence can name a subject without holding the address. Plain
SHA-256 of an e-mail is reversible by dictionary; a keyed hash is not.

Token format: `v2:` + URL-safe base64 of a random 96-bit nonce, the ciphertext and the 128-bit
tag. Random nonces keep NIST SP 800-38D's bound of 2^32 encryptions per key (section 8.3): that
is thousands of days of Gallra's heaviest intake, and a key rotation starts the count over.
Fernet (AES-128-CBC + HMAC) was used before and is still read: tokens without the prefix are
Fernet tokens. It was replaced because a Fernet token cost 15-40 us of Python per value, three
per webhook, against about 4.5 us for a GCM token made in one call into OpenSSL.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Per-shop hash keys kept in memory; past this many shops the cache starts over.
_SHOP_KEY_CACHE = 4096
_PREFIX = "v2:"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """Stored ciphertext could not be decrypted with the configured keys."""


_UNREADABLE = "stored value cannot be decrypted with the configured keys"


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
        self._keys = (key, previous)
        keys = [key] if not previous else [key, previous]
        # Checked as Fernet keys (32 url-safe base64 bytes) for both ciphers: a malformed setting
        # fails here, at start-up, and the old tokens stay readable.
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        self._aead = [AESGCM(_derive(k.encode(), b"gallra at rest v2")) for k in keys]
        self._hash_key = _derive(key.encode(), b"gallra lookup hash v1")
        self._shop_keys: dict[str, bytes] = {}

    def __reduce__(self) -> tuple[type[Vault], tuple[str, str | None]]:
        # Picklable, so that intake's writer process (plugin.intake.writer) gets the same keys,
        # over its private socket, rather than through its command line or environment.
        return (Vault, self._keys)

    def encrypt(self, plaintext: str | bytes | None) -> str | None:
        if plaintext is None:
            return None
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[0].encrypt(nonce, data, None)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt_bytes(self, token: str | None) -> bytes | None:
        if token is None:
            return None
        if not token.startswith(_PREFIX):
            try:
                return self._fernet.decrypt(token.encode())
            except InvalidToken:
                raise DecryptionError(_UNREADABLE) from None
        try:
            raw = base64.urlsafe_b64decode(token[len(_PREFIX) :])
        except (binascii.Error, ValueError):
            raise DecryptionError(_UNREADABLE) from None
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for aead in self._aead:  # the current key, then the one before a rotation
            try:
                return aead.decrypt(nonce, sealed, None)
            except (InvalidTag, ValueError):
                continue
        raise DecryptionError(_UNREADABLE)

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

    def purpose_keys(self, purpose: bytes) -> list[bytes]:
        """Keys for one use other than encryption and look-ups (HKDF info `purpose`): the current
        key's first, then the previous key's during a rotation."""
        return [_derive(k.encode(), purpose) for k in self._keys if k]

    def email_hash(self, shop_domain: str, email: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_email(email) if email else None)

    def phone_hash(self, shop_domain: str, phone: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_phone(phone) if phone else None)
