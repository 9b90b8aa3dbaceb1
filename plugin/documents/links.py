"""Signed, expiring download links for documents sent by e-mail (a register extract ready).

The admin serves documents behind its session token, which an e-mail cannot carry. A link names the
shop, the document and the expiry, signed with a key derived from the encryption key: it opens that
one document until its expiry (never after the document's own), and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

from plugin.settings import Settings

PATH = "/documents/{artifact_id}"


def _key(settings: Settings) -> bytes:
    secret = settings.encryption_key.get_secret_value().encode()
    return hmac.new(secret, b"gallra-download-link-v1", hashlib.sha256).digest()


def _signature(settings: Settings, shop_domain: str, artifact_id: int, expires: int) -> str:
    message = f"{shop_domain}\n{artifact_id}\n{expires}".encode()
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()


def download_link(settings: Settings, shop_domain: str, artifact_id: int, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    query = urlencode(
        {
            "shop": shop_domain,
            "expires": expires,
            "sig": _signature(settings, shop_domain, artifact_id, expires),
        }
    )
    return settings.app_url.rstrip("/") + PATH.format(artifact_id=artifact_id) + "?" + query


def verify_link(
    settings: Settings, shop_domain: str, artifact_id: int, expires: str, signature: str, now: datetime
) -> bool:
    """True when the link was signed by this server and has not expired."""
    if not expires.isdigit():
        return False
    expected = _signature(settings, shop_domain, artifact_id, int(expires))
    return hmac.compare_digest(expected, signature) and datetime.fromtimestamp(int(expires), UTC) > now
