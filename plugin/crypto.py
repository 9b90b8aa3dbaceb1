"""Encryption at rest and keyed look-up hashes.

Personal data (e-mail, phone, raw webhook bodies, register extracts) and secrets (access tokens,
provider credentials) are stored encrypted with AES-256-GCM under a key derived from
GALLRA_ENCRYPTION_KEY. E-mail and phone are also stored as a keyed HMAC per shop, so rows can be
found without decrypting and evidence can name a subject without holding the address. Plain
SHA-256 of an e-mail is reversible by dictionary; a keyed hash is not.

Token format: `v3:<key id>:` + URL-safe base64 of a random 96-bit nonce, the ciphertext and the
128-bit tag. The key id (`key_id`, derived from the key, not secret) says which configured key
sealed the value, so a rotation can find what is still on the previous key with a prefix query.
The associated data is the value's `Cell`: table, column, shop and (where the row has a key that
is fixed when the value is written) the row, so a value copied to another row, column or shop
fails its tag instead of decrypting there. Random nonces keep NIST SP 800-38D's bound of 2^32
encryptions per key (section 8.3): thousands of days of Gallra's heaviest intake, and a key
rotation starts the count over.

Read, never written: `v2:` tokens (the same layout without key id or associated data) and Fernet
tokens (no prefix; AES-128-CBC + HMAC, 15-40 us of Python per value against about 4.5 us for a
GCM token made in one call into OpenSSL). `gallra keys rotate` rewrites them as `v3:`.

Look-up hashes are `<key id>:` + base64 of the HMAC-SHA256 without padding (52 characters). Hashes from
before the key id (64 hex digits of the same HMAC) are still matched: `lookup_hashes` yields every
form a value may be stored under (current key first, then the previous one during a rotation), and
every look-up by hash asks for all of them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Per-shop hash keys kept in memory; past this many shops the cache starts over.
_SHOP_KEY_CACHE = 4096
_PREFIX = "v3:"
_OLD_PREFIX = "v2:"
_NONCE_BYTES = 12
_KEY_ID_BYTES = 4


class DecryptionError(Exception):
    """Stored ciphertext could not be decrypted with the configured keys."""


_UNREADABLE = "stored value cannot be decrypted with the configured keys"


class Cell(NamedTuple):
    """Where an encrypted value is stored, bound to it as GCM associated data. `row` is the row's
    key where one is fixed when the value is written (see `plugin.models` for each table), else
    empty. Table and column names are the schema's; none of the parts holds a NUL, so joining them
    with NULs is unambiguous."""

    table: str
    column: str
    shop: str
    row: str = ""

    def associated_data(self) -> bytes:
        return f"gallra\x00{self.table}\x00{self.column}\x00{self.shop}\x00{self.row}".encode()


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


def key_id(key: str) -> str:
    """A short, public name of a key: enough to tell the current key from the previous one."""
    return _derive(key.encode(), b"gallra key id v1")[:_KEY_ID_BYTES].hex()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" if phone.strip().startswith("+") else "") + digits


class Vault:
    """Encrypts, decrypts and hashes with keys derived from GALLRA_ENCRYPTION_KEY; during a rotation
    GALLRA_ENCRYPTION_KEY_PREVIOUS still decrypts and its look-up hashes are still matched."""

    def __init__(self, key: str, previous: str | None = None) -> None:
        self._keys = (key, previous)
        keys = [key] if not previous or previous == key else [key, previous]
        # Checked as Fernet keys (32 url-safe base64 bytes) for both ciphers: a malformed setting
        # fails here, at start-up, and the old tokens stay readable.
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        self._aead = [AESGCM(_derive(k.encode(), b"gallra at rest v2")) for k in keys]
        self.key_ids = tuple(key_id(k) for k in keys)
        if len(set(self.key_ids)) != len(keys):  # one chance in 2^32: tokens could not tell them apart
            raise ValueError("the new and the previous encryption key have the same key id; make another key")
        self.key_id = self.key_ids[0]
        self._aead_by_id = dict(zip(self.key_ids, self._aead, strict=True))
        self._token_head = f"{_PREFIX}{self.key_id}:"
        self._hash_keys = [_derive(k.encode(), b"gallra lookup hash v1") for k in keys]
        self._shop_keys: dict[tuple[int, str], bytes] = {}

    def __reduce__(self) -> tuple[type[Vault], tuple[str, str | None]]:
        # Picklable, so that intake's writer process (plugin.intake.writer) gets the same keys,
        # over its private socket, rather than through its command line or environment.
        return (Vault, self._keys)

    @property
    def rotating(self) -> bool:
        """Whether a previous key is configured."""
        return len(self.key_ids) > 1

    # --- encryption -------------------------------------------------------------------------------

    def encrypt(self, plaintext: str | bytes | None, cell: Cell) -> str | None:
        if plaintext is None:
            return None
        data = plaintext.encode() if isinstance(plaintext, str) else plaintext
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[0].encrypt(nonce, data, cell.associated_data())
        return self._token_head + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt_bytes(self, token: str | None, cell: Cell) -> bytes | None:
        if token is None:
            return None
        if token.startswith(_PREFIX):
            kid, colon, body = token[len(_PREFIX) :].partition(":")
            aead = self._aead_by_id.get(kid)
            nonce, sealed = _unpack(body) if colon else (b"", b"")
            if aead is None or not nonce:
                raise DecryptionError(_UNREADABLE)
            try:
                return aead.decrypt(nonce, sealed, cell.associated_data())
            except (InvalidTag, ValueError):
                # The key is the right one, so the value was altered or copied here from elsewhere.
                # Names the place, never the value.
                raise DecryptionError(
                    f"stored value in {cell.table}.{cell.column} was not encrypted for this place "
                    "(moved from another row, column or shop, or altered)"
                ) from None
        if token.startswith(_OLD_PREFIX):
            nonce, sealed = _unpack(token[len(_OLD_PREFIX) :])
            for aead in self._aead if nonce else ():  # the current key, then the one before
                try:
                    return aead.decrypt(nonce, sealed, None)
                except (InvalidTag, ValueError):
                    continue
            raise DecryptionError(_UNREADABLE)
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise DecryptionError(_UNREADABLE) from None

    def decrypt(self, token: str | None, cell: Cell) -> str | None:
        data = self.decrypt_bytes(token, cell)
        return None if data is None else data.decode()

    def encrypt_json(self, value: Any, cell: Cell) -> str:
        token = self.encrypt(json.dumps(value, separators=(",", ":"), sort_keys=True), cell)
        assert token is not None
        return token

    def decrypt_json(self, token: str | None, cell: Cell) -> Any:
        text = self.decrypt(token, cell)
        return None if text is None else json.loads(text)

    def is_current(self, token: str | None) -> bool:
        """Whether `token` is sealed by the current key with its cell (no rewrite needed)."""
        return token is None or token.startswith(self._token_head)

    def current_prefix(self) -> str:
        """What every value sealed by the current key begins with (for prefix queries)."""
        return self._token_head

    # --- look-up hashes ---------------------------------------------------------------------------

    def _shop_key(self, index: int, shop_domain: str) -> bytes:
        shop_key = self._shop_keys.get((index, shop_domain))
        if shop_key is None:
            # Derived once per shop: webhook intake hashes two values per request.
            if len(self._shop_keys) >= _SHOP_KEY_CACHE:
                self._shop_keys.clear()
            shop_key = hmac.digest(self._hash_keys[index], shop_domain.encode(), "sha256")
            self._shop_keys[(index, shop_domain)] = shop_key
        return shop_key

    def lookup_hash(self, shop_domain: str, value: str | None) -> str | None:
        """Keyed hash under the current key, different per shop, so one shop's hashes say nothing
        about another's. What is stored; look-ups use `lookup_hashes`."""
        if not value:
            return None
        digest = hmac.digest(self._shop_key(0, shop_domain), value.encode(), "sha256")
        return f"{self.key_id}:{_hash_text(digest)}"

    def lookup_hashes(self, shop_domain: str, value: str | None) -> tuple[str, ...]:
        """Every hash `value` may be stored under: the current key's first, then the previous
        key's, each also in the form written before hashes carried their key id."""
        if not value:
            return ()
        found: list[str] = []
        for index, kid in enumerate(self.key_ids):
            digest = hmac.digest(self._shop_key(index, shop_domain), value.encode(), "sha256")
            found.append(f"{kid}:{_hash_text(digest)}")
            found.append(digest.hex())
        return tuple(found)

    def hash_is_current(self, stored: str | None) -> bool:
        return stored is None or stored.startswith(f"{self.key_id}:")

    def purpose_keys(self, purpose: bytes) -> list[bytes]:
        """Keys for one use other than encryption and look-ups (HKDF info `purpose`): the current
        key's first, then the previous key's during a rotation."""
        return [_derive(k.encode(), purpose) for k in self._keys if k]

    def email_hash(self, shop_domain: str, email: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_email(email) if email else None)

    def phone_hash(self, shop_domain: str, phone: str | None) -> str | None:
        return self.lookup_hash(shop_domain, normalise_phone(phone) if phone else None)

    def email_hashes(self, shop_domain: str, email: str | None) -> tuple[str, ...]:
        return self.lookup_hashes(shop_domain, normalise_email(email) if email else None)

    def phone_hashes(self, shop_domain: str, phone: str | None) -> tuple[str, ...]:
        return self.lookup_hashes(shop_domain, normalise_phone(phone) if phone else None)


def _hash_text(digest: bytes) -> str:
    # Base64 without its padding: 43 characters for 32 bytes, so a hash with its key id fits the
    # 64-character columns; binascii's C encoder, as intake hashes two values per webhook.
    return binascii.b2a_base64(digest, newline=False)[:43].decode("ascii")


def _unpack(body: str) -> tuple[bytes, bytes]:
    """Nonce and sealed bytes of a token's base64 part; empty when it is not base64."""
    try:
        raw = base64.urlsafe_b64decode(body)
    except (binascii.Error, ValueError):
        return b"", b""
    if len(raw) <= _NONCE_BYTES:
        return b"", b""
    return raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
